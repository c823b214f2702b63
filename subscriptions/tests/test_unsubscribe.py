"""One-click unsubscribe from the link and the List-Unsubscribe header."""

import base64
import re

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils.crypto import salted_hmac

from newsletter.tests.factories import make_article
from subscriptions.models import Subscriber
from subscriptions.tests.factories import make_subscriber
from subscriptions.unsubscribe import TOKENS, make_token
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


@pytest.fixture
def reader():
    return make_subscriber("reader@example.com")


@pytest.fixture
def csrf_client():
    # Like a mail provider: no cookies, no CSRF token, and checks enforced.
    return Client(enforce_csrf_checks=True)


def status_of(subscriber: Subscriber) -> str:
    subscriber.refresh_from_db()
    return subscriber.email_status


def test_get_shows_a_confirmation_and_changes_nothing(client, reader):
    response = client.get(f"/unsubscribe/{make_token(reader)}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "reader@example.com" in page
    assert '<form method="post"' in page
    assert "carry on until you" in page  # billing is not touched
    assert status_of(reader) == Subscriber.EmailStatus.ACTIVE


def test_one_click_post_without_cookies_or_csrf_token_unsubscribes(csrf_client, reader):
    response = csrf_client.post(
        f"/unsubscribe/{make_token(reader)}/",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert status_of(reader) == Subscriber.EmailStatus.UNSUBSCRIBED
    page = response.content.decode()
    assert "Your membership is not cancelled" in page
    assert 'href="/account/"' in page
    assert reader.membership.status == "active"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # altered signature
        lambda token: "1" + token,  # another reader's id, same signature
        lambda token: token.split("-")[0],  # no signature
        lambda token: token.split("-")[0] + "-",  # empty signature
        lambda token: "forged-abcdef",
    ],
)
@pytest.mark.faults
def test_forged_or_altered_tokens_are_refused(csrf_client, reader, mangle):
    make_subscriber("other@example.com")
    token = mangle(make_token(reader))

    response = csrf_client.post(f"/unsubscribe/{token}/")

    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    assert set(Subscriber.objects.values_list("email_status", flat=True)) == {"active"}


def test_unsubscribing_twice_is_harmless_and_resubscribing_works(csrf_client, reader):
    url = f"/unsubscribe/{make_token(reader)}/"
    csrf_client.post(url)
    csrf_client.post(url)
    assert status_of(reader) == Subscriber.EmailStatus.UNSUBSCRIBED

    response = csrf_client.post(url, {"action": "resubscribe"})
    assert "again from the next weekday morning" in response.content.decode()
    assert status_of(reader) == Subscriber.EmailStatus.ACTIVE


def test_a_bounced_address_stays_suppressed(csrf_client):
    bounced = make_subscriber(email_status=Subscriber.EmailStatus.BOUNCED)
    url = f"/unsubscribe/{make_token(bounced)}/"

    csrf_client.post(url)
    assert status_of(bounced) == Subscriber.EmailStatus.BOUNCED
    response = csrf_client.post(url, {"action": "resubscribe"})
    assert "cannot send" in response.content.decode()
    assert status_of(bounced) == Subscriber.EmailStatus.BOUNCED


def test_other_methods_are_not_allowed(csrf_client, reader):
    assert csrf_client.put(f"/unsubscribe/{make_token(reader)}/").status_code == 405


def test_the_header_link_in_a_received_digest_unsubscribes_its_reader(
    smtp_server, csrf_client, reader, settings
):
    make_subscriber("bystander@example.com")
    make_article()
    call_command("send_digest", "--sync", "--date", "2026-11-30")
    mail = next(m for m in smtp_server.received() if m.rcpt_tos == [reader.email])
    found = re.match(r"<([^>]+)>", mail.message["List-Unsubscribe"].strip())
    assert found is not None
    https_link = found.group(1)
    path = https_link.removeprefix(settings.SITE_URL)

    # What Gmail's "Unsubscribe" button does (RFC 8058).
    response = csrf_client.post(
        path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert status_of(reader) == Subscriber.EmailStatus.UNSUBSCRIBED
    assert Subscriber.objects.get(email="bystander@example.com").email_status == "active"
    # The next edition does not go to them.
    assert reader not in Subscriber.objects.entitled()


def test_links_signed_with_a_previous_secret_key_still_work(csrf_client, reader, settings):
    old_token = make_token(reader)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-after-rotation-0123456789abcdefghij"

    assert make_token(reader) != old_token
    csrf_client.post(f"/unsubscribe/{old_token}/")
    assert status_of(reader) == Subscriber.EmailStatus.UNSUBSCRIBED


def test_tokens_are_the_salted_hmacs_links_already_sent_carry(reader, settings):
    # The signature is computed with a key derived once per salt and secret;
    # it must stay Django's salted_hmac, or every link in the emails already
    # in readers' inboxes would stop working.
    for secret in (settings.SECRET_KEY, "another-secret-with-ünïcode"):
        settings.SECRET_KEY = secret
        digest = salted_hmac(TOKENS.salt, str(reader.pk), secret=secret, algorithm="sha256")
        signature = base64.urlsafe_b64encode(digest.digest()[:16]).decode().rstrip("=")
        assert make_token(reader) == f"{reader.pk}-{signature}"
