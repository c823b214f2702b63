"""The demo outbox: every email written to disk and readable in the browser."""

import pytest
from django.core.mail import EmailMultiAlternatives, mailers


@pytest.fixture
def outbox_dir(tmp_path, settings):
    directory = tmp_path / "outbox"
    settings.OUTBOX_DIR = directory
    settings.MAILERS = {
        "default": {"BACKEND": "config.outbox.OutboxBackend", "OPTIONS": {"directory": directory}}
    }
    return directory


def send_sample(subject="Hello <there>"):
    message = EmailMultiAlternatives(
        subject, "Plain words.", "from@example.com", ["to@example.com"]
    )
    message.attach_alternative("<p onclick='x()'>Rich words.</p>", "text/html")
    message.send()


def test_each_message_becomes_one_eml_file(outbox_dir):
    with mailers.default as connection:
        sent = connection.send_messages(
            [
                EmailMultiAlternatives(f"Message {n}", "Body", to=[f"r{n}@example.com"])
                for n in range(3)
            ]
        )

    assert sent == 3
    files = sorted(outbox_dir.glob("*.eml"))
    assert len(files) == 3
    assert all(b"Subject: Message" in f.read_bytes() for f in files)


@pytest.mark.django_db
def test_outbox_page_lists_and_shows_messages_with_debug_on(client, outbox_dir, settings):
    settings.DEBUG = True
    send_sample()

    listing = client.get("/outbox/")
    assert listing.status_code == 200
    assert "Hello &lt;there&gt;" in listing.content.decode()

    name = next(outbox_dir.glob("*.eml")).name
    page = client.get(f"/outbox/{name}/").content.decode()
    assert "Plain words." in page
    # The HTML part is shown inert: escaped into a sandboxed iframe's srcdoc.
    assert 'sandbox srcdoc="&lt;p onclick=&#x27;x()&#x27;&gt;Rich words.' in page


@pytest.mark.django_db
def test_outbox_is_hidden_without_debug(client, outbox_dir, settings):
    settings.DEBUG = False
    send_sample()
    name = next(outbox_dir.glob("*.eml")).name

    assert client.get("/outbox/").status_code == 404
    assert client.get(f"/outbox/{name}/").status_code == 404


@pytest.mark.django_db
def test_outbox_serves_only_its_own_files(client, outbox_dir, settings):
    settings.DEBUG = True
    send_sample()
    assert client.get("/outbox/..%2F..%2Fsettings.py/").status_code == 404
    assert client.get("/outbox/nothing.eml/").status_code == 404
