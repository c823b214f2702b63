"""A reader changes their address from the account page, confirmed by a link to the new one."""

import re

import pytest
from django.test import Client

from delivery.deliverability.verp import parse_verp
from subscriptions.models import Subscriber
from subscriptions.sessions import SESSION_KEY
from subscriptions.tests.factories import make_stripe_member, make_subscriber
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


def signed_in(subscriber: Subscriber) -> Client:
    client = Client()
    session = client.session
    session[SESSION_KEY] = subscriber.pk
    session.save()
    return client


def ask(client: Client, new: str, capture, **extra):
    with capture(execute=True):
        return client.post("/account/address/", {"email": new, **extra}, follow=True)


def link_in(mail) -> str:
    found = re.search(r"http://127\.0\.0\.1:8000(/account/address/[^/\s]+/)", mail.body)
    assert found is not None, mail.body
    return found.group(1)


def test_the_new_address_gets_a_link_and_nothing_changes_before_it_is_opened(
    mailoutbox, django_capture_on_commit_callbacks
):
    reader = make_stripe_member(email="ada@example.com")
    client = signed_in(reader)

    page = ask(client, "ada@example.org", django_capture_on_commit_callbacks)

    assert "We sent a link to ada@example.org" in page.content.decode()
    [mail] = mailoutbox
    assert mail.to == ["ada@example.org"]
    assert "Confirm your new address" in mail.subject
    reader.refresh_from_db()
    assert reader.email == "ada@example.com"


@pytest.fixture
def production_mail(smtp_server, settings):
    """Production's SMTP backend (VERP envelope senders) with a bounce domain, to a real server."""
    settings.BOUNCE_DOMAIN = "bounces.briefing.example"
    settings.MAILERS = {
        "default": {
            "BACKEND": "delivery.wire.backend.SigningSMTPBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": smtp_server.port, "timeout": 10},
        }
    }
    return smtp_server


def test_the_link_to_an_unconfirmed_address_carries_nothing_of_the_readers(
    production_mail, django_capture_on_commit_callbacks
):
    reader = make_stripe_member(email="ada@example.com", name="Ada Lovelace")
    assert reader.greeting_name == "Ada Lovelace"  # her other emails greet her so
    client = signed_in(reader)

    ask(client, "ada@exmaple.org", django_capture_on_commit_callbacks)  # a typo

    [mail] = production_mail.received()
    assert mail.rcpt_tos == ["ada@exmaple.org"]
    # A bounce from the mistyped domain goes to the plain return address, not
    # to the reader's VERP address, which would mark ada@example.com bounced.
    assert mail.mail_from == "briefing@localhost"
    assert parse_verp(mail.mail_from) is None
    assert "List-Unsubscribe" not in mail.raw_headers
    for content in (mail.raw_headers, mail.text, mail.html):
        assert "ada@example.com" not in content
        assert "Lovelace" not in content
    # The one link is the one that confirms: no preferences or account link.
    for body in (mail.text, mail.html):
        links = set(re.findall(r"https?://[^\s\"<>]+", body))
        assert len(links) == 1, links
        assert links.pop().startswith("http://127.0.0.1:8000/account/address/")
    # And it still works.
    [link] = re.findall(r"http://127\.0\.0\.1:8000(/account/address/[^/\s]+/)", mail.text)
    client.get(link)
    client.post("/account/address/confirm/")
    reader.refresh_from_db()
    assert reader.email == "ada@exmaple.org"


def test_opening_the_link_and_pressing_the_button_moves_the_reader_and_stripe(
    mailoutbox, django_capture_on_commit_callbacks, fake_stripe
):
    reader = make_stripe_member(email="ada@example.com", customer_id="cus_T4kQ8Zr2mXv1Ab")
    client = signed_in(reader)
    ask(client, "ada@example.org", django_capture_on_commit_callbacks)
    link = link_in(mailoutbox[0])

    # The link (a scanner may open it) only shows the button.
    confirm = client.get(link, follow=True)
    assert "Use ada@example.org" in confirm.content.decode()
    reader.refresh_from_db()
    assert reader.email == "ada@example.com"

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/account/address/confirm/", follow=True)

    assert "Your address is now ada@example.org." in done.content.decode()
    reader.refresh_from_db()
    assert reader.email == "ada@example.org"
    [update] = fake_stripe.requests("POST", "/v1/customers/cus_T4kQ8Zr2mXv1Ab")
    assert update["email"] == "ada@example.org"

    # The link works once, and says so when opened again.
    again = Client().get(link, follow=True)
    assert again.status_code == 410
    assert "This link was used already" in again.content.decode()


def test_a_link_opened_in_another_browser_works_without_signing_in(
    mailoutbox, django_capture_on_commit_callbacks, fake_stripe
):
    reader = make_subscriber(email="ada@example.com", membership=None)
    ask(signed_in(reader), "ada@example.org", django_capture_on_commit_callbacks)
    phone = Client()
    phone.get(link_in(mailoutbox[0]))

    page = phone.post("/account/address/confirm/")

    assert "Your address is changed" in page.content.decode()
    reader.refresh_from_db()
    assert reader.email == "ada@example.org"
    assert not fake_stripe.requests("POST", "/v1/customers/cus_T4kQ8Zr2mXv1Ab")


def test_an_address_of_another_reader_is_refused_at_the_link(
    mailoutbox, django_capture_on_commit_callbacks
):
    reader = make_subscriber(email="ada@example.com")
    client = signed_in(reader)
    ask(client, "eve@example.org", django_capture_on_commit_callbacks)
    make_subscriber(email="eve@example.org")  # took it in the meantime
    client.get(link_in(mailoutbox[0]))

    page = client.post("/account/address/confirm/")

    assert page.status_code == 409
    assert "belongs to another membership" in page.content.decode()
    reader.refresh_from_db()
    assert reader.email == "ada@example.com"


def test_a_typo_in_the_new_address_is_questioned_on_the_account_page(
    mailoutbox, django_capture_on_commit_callbacks
):
    client = signed_in(make_subscriber(email="ada@example.com"))

    page = ask(client, "ada@gmial.con", django_capture_on_commit_callbacks)

    assert page.status_code == 400
    assert "Did you mean ada@gmail.com?" in page.content.decode()
    assert not mailoutbox


def test_the_same_address_is_not_a_change(mailoutbox, django_capture_on_commit_callbacks):
    client = signed_in(make_subscriber(email="ada@example.com"))

    page = ask(client, "ada@example.com", django_capture_on_commit_callbacks)

    assert "That is your address already." in page.content.decode()
    assert not mailoutbox


def test_a_new_address_clears_the_old_one_s_bounce(mailoutbox, django_capture_on_commit_callbacks):
    reader = make_subscriber(email="ada@example.com", email_status=Subscriber.EmailStatus.BOUNCED)
    client = signed_in(reader)
    ask(client, "ada@example.org", django_capture_on_commit_callbacks)
    client.get(link_in(mailoutbox[0]))

    client.post("/account/address/confirm/")

    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.ACTIVE
