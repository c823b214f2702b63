"""Passwordless sign-in by emailed link, and the account page."""

import re
import time

import pytest
from django.test import Client

from subscriptions import signin
from subscriptions.models import Membership, Subscriber
from subscriptions.sessions import EPOCH_KEY, SESSION_KEY
from subscriptions.tests.factories import make_stripe_member, make_subscriber
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


@pytest.fixture
def request_link(client, mailoutbox, django_capture_on_commit_callbacks):
    def request(email: str):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/signin/", {"email": email})
        return response

    return request


def link_in(mail) -> str:
    found = re.search(r"http://127\.0\.0\.1:8000(/signin/[^/\s]+/)", mail.body)
    assert found is not None, mail.body
    return found.group(1)


def test_known_and_unknown_addresses_get_the_same_answer(request_link, mailoutbox):
    make_subscriber("ada@example.com")

    known = request_link("ADA@example.com")
    unknown = request_link("nobody@example.com")

    assert known.status_code == unknown.status_code == 200
    assert known.content == unknown.content
    [mail] = mailoutbox
    assert mail.to == ["ada@example.com"]
    assert "works once, for 15 minutes" in mail.body


def test_opening_the_link_does_not_sign_in_pressing_the_button_does(
    client, request_link, mailoutbox
):
    reader = make_subscriber("ada@example.com")
    request_link("ada@example.com")
    link = link_in(mailoutbox[0])

    # A mail scanner (or the reader) opens the link: a button, no sign-in.
    scanner = Client()
    page = scanner.get(link, follow=True)
    assert page.status_code == 200
    assert "Sign me in" in page.content.decode()
    assert SESSION_KEY not in scanner.session

    response = client.post(link)
    assert response.status_code == 303
    assert response["Location"] == "/account/"
    assert client.session[SESSION_KEY] == reader.pk

    # A link works once.
    assert Client().post(link).status_code == 400


@pytest.mark.faults
def test_a_new_link_makes_older_ones_useless_once_used(request_link, mailoutbox):
    make_subscriber("ada@example.com")
    request_link("ada@example.com")
    request_link("ada@example.com")
    first, second = link_in(mailoutbox[0]), link_in(mailoutbox[1])

    assert Client().post(second).status_code == 303
    assert Client().post(first).status_code == 400


@pytest.mark.faults
def test_an_expired_or_forged_link_is_refused(monkeypatch):
    reader = make_subscriber("ada@example.com")
    token = signin.make_token(reader)
    # The link is checked against the clock: move it past the link's life.
    real_time = time.time
    monkeypatch.setattr(
        time, "time", lambda: real_time() + signin.link_max_age().total_seconds() + 1
    )
    assert Client().post(f"/signin/{token}/").status_code == 400
    monkeypatch.undo()

    assert Client().post(f"/signin/{token}x/").status_code == 400
    assert Client().post(f"/signin/{token}/").status_code == 303


@pytest.mark.faults
def test_sign_in_requests_are_rate_limited_per_ip(client):
    for _ in range(20):
        client.post("/signin/", {"email": "someone@example.com"})
    assert client.post("/signin/", {"email": "someone@example.com"}).status_code == 429


def signed_in(reader: Subscriber) -> Client:
    client = Client()
    session = client.session
    session[SESSION_KEY] = reader.pk
    session[EPOCH_KEY] = reader.session_epoch
    session.save()
    return client


def test_the_account_needs_sign_in(client):
    response = client.get("/account/")
    assert response.status_code == 302
    assert response["Location"] == "/signin/"


def test_the_account_shows_plan_status_and_first_charge_of_a_trial():
    reader = make_stripe_member(
        Membership.Status.TRIALING,
        email="ada@example.com",
    )
    Membership.objects.filter(subscriber=reader).update(
        amount=4600, trial_end="2026-12-13T10:00:00Z", current_period_end="2026-12-13T10:00:00Z"
    )

    content = signed_in(reader).get("/account/").content.decode()

    assert "Annual, $46 a year" in content
    assert "Free trial until 13 December 2026" in content
    assert "$46 on 13 December 2026" in content
    assert "Manage billing" in content
    assert "Unsubscribe from the emails" in content


def test_the_account_shows_the_next_charge_of_an_active_membership():
    reader = make_stripe_member(Membership.Status.ACTIVE)
    Membership.objects.filter(subscriber=reader).update(
        amount=4600, current_period_end="2027-11-29T10:00:00Z"
    )
    content = signed_in(reader).get("/account/").content.decode()
    assert "Next charge" in content and "$46 on 29 November 2027" in content


def test_a_complimentary_membership_shows_as_such():
    reader = make_subscriber(
        membership=Membership.Status.INCOMPLETE,
        membership_fields={"complimentary": True, "complimentary_until": "2027-01-31T00:00:00Z"},
    )
    content = signed_in(reader).get("/account/").content.decode()
    assert "Complimentary, until 31 January 2027" in content
    assert "Yes, each weekday morning." in content


def test_manage_billing_opens_a_customer_portal_session(fake_stripe):
    reader = make_stripe_member(Membership.Status.ACTIVE, customer_id="cus_T4kQ8Zr2mXv1Ab")

    response = signed_in(reader).post("/account/billing/")

    assert response.status_code == 303
    assert response["Location"].startswith("https://billing.stripe.com/p/session/")
    [params] = fake_stripe.requests("POST", "/v1/billing_portal/sessions")
    assert params["customer"] == "cus_T4kQ8Zr2mXv1Ab"
    assert params["return_url"] == "http://127.0.0.1:8000/account/"


def test_unsubscribe_and_resubscribe_from_the_account():
    reader = make_stripe_member(Membership.Status.ACTIVE)
    client = signed_in(reader)

    client.post("/account/email/", {"action": "unsubscribe"})
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.UNSUBSCRIBED
    assert not reader.is_entitled

    client.post("/account/email/", {"action": "resubscribe"})
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.ACTIVE
    assert reader.is_entitled


def test_a_bounced_address_cannot_be_resubscribed_from_the_form():
    reader = make_stripe_member(
        Membership.Status.ACTIVE, email_status=Subscriber.EmailStatus.BOUNCED
    )
    signed_in(reader).post("/account/email/", {"action": "resubscribe"})
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.BOUNCED


@pytest.mark.faults
def test_account_forms_need_the_csrf_token():
    reader = make_stripe_member(Membership.Status.ACTIVE)
    client = Client(enforce_csrf_checks=True)
    session = client.session
    session[SESSION_KEY] = reader.pk
    session.save()

    assert client.post("/account/email/", {"action": "unsubscribe"}).status_code == 403
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.ACTIVE


def test_the_account_page_saves_the_digest_settings_after_validating_them():
    reader = make_stripe_member(Membership.Status.ACTIVE)
    client = signed_in(reader)
    settings_ = {
        "time_zone": "Asia/Tokyo",
        "send_time": "07:30",
        "pause_until": "",
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "format": "full",
        "sections": "all",
    }

    client.post("/account/preferences/", {**settings_, "time_zone": "Atlantis/Capital"})
    client.post("/account/preferences/", {**settings_, "send_time": "03:00"})
    reader.refresh_from_db()
    assert (reader.time_zone, f"{reader.send_time:%H:%M}") == ("America/New_York", "06:00")

    client.post("/account/preferences/", settings_)
    reader.refresh_from_db()
    assert (reader.time_zone, f"{reader.send_time:%H:%M}") == ("Asia/Tokyo", "07:30")


def test_sign_out():
    reader = make_stripe_member(Membership.Status.ACTIVE)
    client = signed_in(reader)
    client.post("/signout/")
    assert client.get("/account/").status_code == 302
