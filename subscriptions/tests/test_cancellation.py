"""Cancelling and coming back: the digest runs to the period's end, one way back, one win-back.

Stripe is faked at the HTTP level with recorded shapes; events are signed and
posted to the real endpoint; emails go through a real SMTP server.
"""

import datetime
import time

import pytest
from django.test import Client

from subscriptions import tasks
from subscriptions.models import Membership, ReaderEmail, Subscriber
from subscriptions.sessions import EPOCH_KEY, SESSION_KEY
from subscriptions.tests import stripe_objects
from subscriptions.tests.factories import make_stripe_member

pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-12-03 11:00Z")]

Status = Membership.Status
SUB = "sub_1SbTrial0000000000000001"
DAY = 86400


@pytest.fixture
def reader():
    return make_stripe_member(
        Status.INCOMPLETE, email="ada@example.com", name="Ada", time_zone="Asia/Tokyo"
    )


def signed_in(reader: Subscriber) -> Client:
    browser = Client(enforce_csrf_checks=False)
    session = browser.session
    session[SESSION_KEY] = reader.pk
    session[EPOCH_KEY] = reader.session_epoch
    session.save()
    return browser


def active(fake_stripe, **changes) -> dict:
    return fake_stripe.set_subscription(stripe_objects.subscription("active", **changes))


def ended(fake_stripe) -> dict:
    sub = stripe_objects.subscription("canceled", cancel_at_period_end=True)
    return fake_stripe.set_subscription(sub)


def subjects(smtp_server) -> list[str]:
    return [" ".join(str(m.message["Subject"]).split()) for m in smtp_server.received()]


def hourly_check(capture) -> dict:
    with capture(execute=True):
        return tasks.billing_lifecycle()


def test_cancelled_in_the_portal_the_digest_runs_to_the_end_and_the_account_says_so(
    webhooks, fake_stripe, reader
):
    webhooks.post("customer.subscription.updated", active(fake_stripe))
    cancelling = active(fake_stripe, cancel_at_period_end=True)
    webhooks.post("customer.subscription.updated", cancelling)

    membership = Membership.objects.get(subscriber=reader)
    assert membership.cancel_at_period_end and reader.is_entitled
    page = signed_in(reader).get("/account/").content.decode()
    assert membership.current_period_end is not None
    end = membership.current_period_end.astimezone(datetime.timezone(datetime.timedelta(hours=9)))
    assert "Your membership is cancelled. The morning briefing continues until" in page
    assert f"{end.day} {end:%B %Y}</strong> (Asia/Tokyo time)" in page
    assert "Keep my membership" in page


def test_keep_my_membership_from_the_account(webhooks, fake_stripe, reader):
    webhooks.post("customer.subscription.updated", active(fake_stripe, cancel_at_period_end=True))
    browser = signed_in(reader)

    page = browser.post("/account/renewal/", {"renewal": "keep"}, follow=True)

    assert not Membership.objects.get(subscriber=reader).cancel_at_period_end
    assert "Your membership will renew as before." in page.content.decode()
    [update] = fake_stripe.requests("POST", f"/v1/subscriptions/{SUB}")
    assert update["cancel_at_period_end"] == "false"
    assert "Cancel my renewal" in page.content.decode()


def test_the_renewal_form_needs_sign_in_and_csrf(reader, fake_stripe):
    assert Client().post("/account/renewal/", {"renewal": "cancel"}).status_code == 302
    strict = Client(enforce_csrf_checks=True)
    session = strict.session
    session[SESSION_KEY] = reader.pk
    session[EPOCH_KEY] = reader.session_epoch
    session.save()
    assert strict.post("/account/renewal/", {"renewal": "cancel"}).status_code == 403
    assert len(fake_stripe.mock.calls) == 0


def test_stripe_down_when_cancelling_changes_nothing_and_says_so(webhooks, fake_stripe, reader):
    webhooks.post("customer.subscription.updated", active(fake_stripe))
    fake_stripe.fail_next = 10
    page = signed_in(reader).post("/account/renewal/", {"renewal": "cancel"}, follow=True)
    assert "nothing changed" in page.content.decode()
    assert not Membership.objects.get(subscriber=reader).cancel_at_period_end


def test_the_end_is_told_once_with_a_one_click_way_back_without_a_trial(
    webhooks, fake_stripe, reader, smtp_server, settings
):
    settings.ONE_TRIAL_PER_READER = False  # even then: a way back is no second trial
    webhooks.post("customer.subscription.updated", active(fake_stripe))
    gone = ended(fake_stripe)
    # Duplicated and out of order: the deletion twice, then a stale "active" copy.
    webhooks.post("customer.subscription.deleted", gone, event_id="evt_deleted_1")
    webhooks.post("customer.subscription.deleted", gone, event_id="evt_deleted_1")
    webhooks.post("customer.subscription.deleted", gone)
    webhooks.post("customer.subscription.updated", stripe_objects.subscription("active"))

    membership = Membership.objects.get(subscriber=reader)
    assert membership.status == Status.CANCELED and not reader.is_entitled
    assert membership.ended_at is not None
    ended_mails = [m for m in smtp_server.received() if "has ended" in str(m.message["Subject"])]
    assert len(ended_mails) == 1
    text = ended_mails[0].text
    assert "no second free trial" in text
    link = next(w for w in text.split() if "/billing/rejoin/" in w)

    browser = Client()
    response = browser.get(link.removeprefix("http://127.0.0.1:8000"))

    assert response.status_code == 303
    assert response["Location"].startswith("https://checkout.stripe.com/c/pay/")
    assert response["Referrer-Policy"] == "no-referrer"
    [session] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert session["customer"] == "cus_T4kQ8Zr2mXv1Ab"
    assert "subscription_data[trial_period_days]" not in session
    # The success page will recognise this browser's checkout; nobody is signed in.
    assert browser.session["checkout_session_id"] == response["Location"].rsplit("/", 1)[1]
    assert browser.get("/account/").status_code == 302


def test_a_rejoin_link_for_a_member_or_forged_starts_nothing(webhooks, fake_stripe, reader):
    from subscriptions.billing_links import rejoin_url

    webhooks.post("customer.subscription.updated", active(fake_stripe))
    calls = len(fake_stripe.mock.calls)
    member = Client().get(rejoin_url(reader).removeprefix("http://127.0.0.1:8000"))
    forged = Client().get(f"/billing/rejoin/{reader.pk}-forged/")

    assert member.status_code == 200 and b"already have a membership" in member.content
    assert forged.status_code == 400
    assert len(fake_stripe.mock.calls) == calls


def test_win_back_is_off_by_default(
    webhooks, fake_stripe, reader, smtp_server, clock, django_capture_on_commit_callbacks
):
    webhooks.post("customer.subscription.updated", active(fake_stripe))
    webhooks.post("customer.subscription.deleted", ended(fake_stripe))
    for _ in range(40):
        clock.shift(datetime.timedelta(days=1))
        hourly_check(django_capture_on_commit_callbacks)
    assert not ReaderEmail.objects.filter(kind=ReaderEmail.Kind.WIN_BACK).exists()


def test_one_win_back_email_n_days_after_the_end_never_repeated(
    webhooks, fake_stripe, reader, smtp_server, clock, settings, django_capture_on_commit_callbacks
):
    settings.WIN_BACK_DAYS = 10
    webhooks.post("customer.subscription.updated", active(fake_stripe))
    webhooks.post("customer.subscription.deleted", ended(fake_stripe))

    clock.shift(datetime.timedelta(days=9, hours=23))
    assert hourly_check(django_capture_on_commit_callbacks)["win_backs"] == 0
    clock.shift(datetime.timedelta(hours=2))
    assert hourly_check(django_capture_on_commit_callbacks)["win_backs"] == 1
    assert hourly_check(django_capture_on_commit_callbacks)["win_backs"] == 0

    [win_back] = [m for m in smtp_server.received() if "Come back" in str(m.message["Subject"])]
    assert "/billing/rejoin/" in win_back.text
    assert "the only such email" in win_back.text

    # They come back and leave again: the win-back is never repeated.
    second = stripe_objects.subscription("active", id="sub_1SbSecond000000000000001")
    fake_stripe.set_subscription(second)
    webhooks.post("customer.subscription.created", second)
    gone = {**second, "status": "canceled", "ended_at": int(time.time())}
    fake_stripe.set_subscription(gone)
    webhooks.post("customer.subscription.deleted", gone)
    clock.shift(datetime.timedelta(days=10, hours=1))
    assert hourly_check(django_capture_on_commit_callbacks)["win_backs"] == 0
    assert ReaderEmail.objects.filter(kind=ReaderEmail.Kind.WIN_BACK).count() == 1


def test_no_win_back_for_an_unsubscribed_reader_or_one_who_came_back(
    webhooks, fake_stripe, reader, clock, settings, django_capture_on_commit_callbacks
):
    settings.WIN_BACK_DAYS = 3
    other = make_stripe_member(
        Status.INCOMPLETE,
        email="bo@example.com",
        customer_id="cus_Other000000001",
        subscription_id="sub_Other00000000000000001",
    )
    webhooks.post("customer.subscription.updated", active(fake_stripe))
    webhooks.post("customer.subscription.deleted", ended(fake_stripe))
    theirs = stripe_objects.subscription(
        "canceled", id="sub_Other00000000000000001", customer="cus_Other000000001"
    )
    fake_stripe.set_subscription({**theirs, "status": "active"})
    webhooks.post("customer.subscription.updated", {**theirs, "status": "active"})
    fake_stripe.set_subscription(theirs)
    webhooks.post("customer.subscription.deleted", theirs)
    Subscriber.objects.filter(pk=reader.pk).update(email_status="unsubscribed")
    # Bo came back (a new live subscription mirrored) before the win-back day.
    Membership.objects.filter(subscriber=other).update(status=Status.ACTIVE)

    clock.shift(datetime.timedelta(days=3, hours=1))

    assert hourly_check(django_capture_on_commit_callbacks)["win_backs"] == 0
