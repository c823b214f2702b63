"""A reader's membership through Stripe's events, ending in the right state and emails.

Stripe is faked at the HTTP level; events are signed and posted to the real
endpoint; reader emails go through a real SMTP server.
"""

import datetime
import re
import time
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from subscriptions.models import Membership, ReaderEmail, Subscriber
from subscriptions.tests import stripe_objects
from subscriptions.tests.factories import make_stripe_member, make_subscriber
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

Status = Membership.Status


@pytest.fixture
def reader():
    return make_stripe_member(
        Status.INCOMPLETE, email="ada@example.com", name="Ada", time_zone="Europe/Paris"
    )


def state(reader: Subscriber) -> str:
    return Membership.objects.get(subscriber=reader).status


def subjects(smtp_server) -> list[str]:
    return [subject(mail) for mail in smtp_server.received()]


def subject(mail) -> str:
    return " ".join(str(mail.message["Subject"]).split())


def start_trial(webhooks, fake_stripe) -> dict:
    sub = fake_stripe.set_subscription(stripe_objects.subscription("trialing"))
    session = stripe_objects.load("checkout_session_completed")
    fake_stripe.sessions[session["id"]] = session
    assert webhooks.post("checkout.session.completed", session).status_code == 200
    assert webhooks.post("customer.subscription.created", sub).status_code == 200
    return sub


def test_trial_then_active(webhooks, fake_stripe, reader, smtp_server):
    sub = start_trial(webhooks, fake_stripe)

    membership = Membership.objects.get(subscriber=reader)
    assert membership.status == Status.TRIALING
    assert membership.stripe_subscription_id == sub["id"]
    assert membership.trial_end is not None and membership.current_period_end is not None
    assert int(membership.trial_end.timestamp()) == sub["trial_end"]
    assert (
        int(membership.current_period_end.timestamp())
        == (sub["items"]["data"][0]["current_period_end"])
    )
    assert membership.amount == 4600
    assert reader.is_entitled

    [welcome] = smtp_server.received()
    assert welcome.rcpt_tos == ["ada@example.com"]
    assert subject(welcome).startswith("Welcome to The Morning Briefing")
    assert "Your first briefing arrives on" in welcome.text
    # The reader's own morning, in their own zone, named.
    assert f"at 06:00, {reader.time_zone} time" in welcome.text
    assert "$46" in welcome.text and "Nothing has been charged" in welcome.text
    assert "Your first briefing arrives on" in welcome.html

    # Three days before the end Stripe warns us; we warn the reader, once.
    trial_sub = fake_stripe.subscriptions[sub["id"]]
    trial_sub["trial_end"] = int(time.time()) + 3 * 86400
    webhooks.post("customer.subscription.trial_will_end", trial_sub)
    webhooks.post("customer.subscription.trial_will_end", trial_sub)
    reminder = smtp_server.received()[1]
    trial_end = datetime.datetime.fromtimestamp(trial_sub["trial_end"], tz=datetime.UTC)
    paris_date = timezone.localtime(trial_end, timezone=ZoneInfo("Europe/Paris"))
    assert f"{paris_date.day} {paris_date:%B}" in subject(reminder)
    assert "$46 will be charged" in subject(reminder)
    assert "your card will be charged $46" in reminder.text
    assert "http://127.0.0.1:8000/account/" in reminder.text
    assert "Cancel before" in reminder.text

    # The trial ends, the card is charged.
    fake_stripe.set_subscription(stripe_objects.subscription("active"))
    webhooks.post("customer.subscription.updated", fake_stripe.subscriptions[sub["id"]])
    paid = fake_stripe.set_invoice(stripe_objects.invoice(status="paid", amount_paid=4600))
    webhooks.post("invoice.paid", paid)

    assert state(reader) == Status.ACTIVE
    assert reader.is_entitled
    assert len(smtp_server.received()) == 2  # no more mail: Stripe sends the receipt


@pytest.mark.faults
def test_trial_cancelled_ends_the_membership_and_says_so(
    webhooks, fake_stripe, reader, smtp_server
):
    sub = start_trial(webhooks, fake_stripe)

    # The reader cancels in the portal: the trial runs to its end...
    cancelling = stripe_objects.subscription("trialing", cancel_at_period_end=True)
    cancelling["trial_end"] = sub["trial_end"]
    fake_stripe.set_subscription(cancelling)
    webhooks.post("customer.subscription.updated", cancelling)
    membership = Membership.objects.get(subscriber=reader)
    assert membership.status == Status.TRIALING and membership.cancel_at_period_end
    assert reader.is_entitled
    # ... with no "you will be charged" reminder, since nothing will be.
    webhooks.post("customer.subscription.trial_will_end", cancelling)

    # ... and then it ends.
    ended = fake_stripe.set_subscription(stripe_objects.subscription("canceled"))
    webhooks.post("customer.subscription.deleted", ended)

    assert state(reader) == Status.CANCELED
    assert not reader.is_entitled
    assert subjects(smtp_server) == [
        subjects(smtp_server)[0],
        "Your membership of The Morning Briefing has ended",
    ]
    assert "Nothing more will be charged" in smtp_server.received()[1].text


@pytest.mark.faults
def test_payment_failed_then_recovered(webhooks, fake_stripe, reader, smtp_server, settings):
    start_trial(webhooks, fake_stripe)
    fake_stripe.set_subscription(stripe_objects.subscription("past_due"))
    failed_invoice = fake_stripe.set_invoice(stripe_objects.invoice())

    webhooks.post("customer.subscription.updated", stripe_objects.subscription("past_due"))
    webhooks.post("invoice.payment_failed", failed_invoice)
    webhooks.post("invoice.payment_failed", {**failed_invoice, "attempt_count": 2})

    membership = Membership.objects.get(subscriber=reader)
    assert membership.status == Status.PAST_DUE
    assert membership.past_due_since is not None
    assert reader.is_entitled  # within the grace period
    failed_mails = [m for m in smtp_server.received() if "didn't go through" in subject(m)]
    assert len(failed_mails) == 1  # once per invoice, not per retry
    assert failed_invoice["hosted_invoice_url"] in failed_mails[0].text
    assert f"{settings.PAST_DUE_GRACE_DAYS} days" in failed_mails[0].text

    # The reader needs to confirm with their bank: told once, with the link.
    webhooks.post("invoice.payment_action_required", failed_invoice)
    action = smtp_server.received()[-1]
    assert "confirm" in subject(action)
    assert failed_invoice["hosted_invoice_url"] in action.text

    fake_stripe.set_subscription(stripe_objects.subscription("active"))
    webhooks.post("invoice.paid", fake_stripe.set_invoice({**failed_invoice, "status": "paid"}))

    membership.refresh_from_db()
    assert membership.status == Status.ACTIVE
    assert membership.past_due_since is None
    assert reader.is_entitled
    assert len(smtp_server.received()) == 3  # welcome, failed, action required


@pytest.mark.faults
def test_payment_failed_then_ended(webhooks, fake_stripe, reader, smtp_server, settings):
    start_trial(webhooks, fake_stripe)
    fake_stripe.set_subscription(stripe_objects.subscription("past_due"))
    webhooks.post("invoice.payment_failed", fake_stripe.set_invoice(stripe_objects.invoice()))

    # Past the grace period the digest stops, before Stripe gives up.
    Membership.objects.filter(subscriber=reader).update(
        past_due_since=timezone.now() - datetime.timedelta(days=settings.PAST_DUE_GRACE_DAYS + 1)
    )
    assert not reader.is_entitled

    fake_stripe.set_subscription(stripe_objects.subscription("unpaid"))
    webhooks.post("customer.subscription.updated", stripe_objects.subscription("unpaid"))

    assert state(reader) == Status.UNPAID
    assert not reader.is_entitled
    ended = smtp_server.received()[-1]
    assert "has ended" in subject(ended)
    assert "could not be collected" in ended.text


@pytest.mark.faults
def test_events_out_of_order_end_in_stripes_latest_state(
    webhooks, fake_stripe, reader, smtp_server
):
    # Stripe's current state: active (the trial already ended).
    fake_stripe.set_subscription(stripe_objects.subscription("active"))

    # updated arrives first, then the stale created (it carries "trialing").
    webhooks.post("customer.subscription.updated", stripe_objects.subscription("active"))
    webhooks.post("customer.subscription.created", stripe_objects.subscription("trialing"))

    assert state(reader) == Status.ACTIVE
    assert len(smtp_server.received()) == 1  # one welcome


@pytest.mark.faults
def test_nothing_revives_a_deleted_subscription(webhooks, fake_stripe, reader, smtp_server):
    start_trial(webhooks, fake_stripe)
    fake_stripe.set_subscription(stripe_objects.subscription("canceled"))
    webhooks.post("customer.subscription.deleted", stripe_objects.subscription("canceled"))
    assert state(reader) == Status.CANCELED

    # A stale read (a replica, a cache) says trialing: it must not win.
    fake_stripe.set_subscription(stripe_objects.subscription("trialing"))
    webhooks.post("customer.subscription.updated", stripe_objects.subscription("trialing"))

    assert state(reader) == Status.CANCELED
    assert not reader.is_entitled


@pytest.mark.faults
def test_an_old_subscription_does_not_replace_the_live_one(webhooks, fake_stripe, reader):
    start_trial(webhooks, fake_stripe)
    old = fake_stripe.set_subscription(stripe_objects.subscription("canceled", id="sub_old"))

    webhooks.post("customer.subscription.deleted", old)

    membership = Membership.objects.get(subscriber=reader)
    assert membership.stripe_subscription_id == "sub_1SbTrial0000000000000001"
    assert membership.status == Status.TRIALING


def test_a_reader_who_comes_back_gets_the_new_subscription(webhooks, fake_stripe, reader):
    start_trial(webhooks, fake_stripe)
    fake_stripe.set_subscription(stripe_objects.subscription("canceled"))
    webhooks.post("customer.subscription.deleted", stripe_objects.subscription("canceled"))

    again = fake_stripe.set_subscription(stripe_objects.subscription("active", id="sub_again"))
    webhooks.post("customer.subscription.created", again)

    membership = Membership.objects.get(subscriber=reader)
    assert (membership.stripe_subscription_id, membership.status) == ("sub_again", Status.ACTIVE)
    assert ReaderEmail.objects.filter(kind=ReaderEmail.Kind.WELCOME).count() == 2


@pytest.mark.faults
def test_a_trial_without_card_that_ends_is_cancelled_without_a_charge(
    webhooks, fake_stripe, reader, smtp_server
):
    no_card = stripe_objects.subscription("trialing", default_payment_method=None)
    fake_stripe.set_subscription(no_card)
    webhooks.post("customer.subscription.created", no_card)
    no_card["trial_end"] = int(time.time()) + 3 * 86400
    webhooks.post("customer.subscription.trial_will_end", no_card)

    reminder = smtp_server.received()[-1]
    assert "will be charged" not in subject(reminder)
    assert "nothing will be charged" in reminder.text

    fake_stripe.set_subscription(
        stripe_objects.subscription("canceled", default_payment_method=None)
    )
    webhooks.post("customer.subscription.deleted", fake_stripe.subscriptions[no_card["id"]])
    assert state(reader) == Status.CANCELED


@pytest.mark.parametrize(
    ("zone", "now", "first"),
    [
        ("America/New_York", "2026-11-30T10:00:00+00:00", "2026-11-30"),  # Monday 05:00: today
        ("America/New_York", "2026-11-30T12:00:00+00:00", "2026-12-01"),  # 07:00: tomorrow
        ("America/New_York", "2026-12-04T12:00:00+00:00", "2026-12-07"),  # Friday: Monday
        ("America/New_York", "2026-12-05T12:00:00+00:00", "2026-12-07"),  # Saturday: Monday
        # Monday 12:00 UTC is 21:00 in Tokyo: Tuesday 06:00 there, not New York's.
        ("Asia/Tokyo", "2026-11-30T12:00:00+00:00", "2026-12-01"),
        # Friday 22:00 UTC is already Saturday in Tokyo: Monday.
        ("Asia/Tokyo", "2026-12-04T22:00:00+00:00", "2026-12-07"),
    ],
)
def test_the_first_digest_is_the_next_weekday_morning_where_the_reader_lives(zone, now, first):
    from subscriptions.emails import first_digest_at

    reader = make_subscriber(time_zone=zone)
    at = first_digest_at(reader, datetime.datetime.fromisoformat(now))
    assert at.date().isoformat() == first
    assert (at.hour, at.minute, str(at.tzinfo)) == (6, 0, zone)


@pytest.mark.faults
def test_a_second_checkout_finished_in_another_tab_is_cancelled_before_it_charges(
    webhooks, fake_stripe, reader
):
    start_trial(webhooks, fake_stripe)
    twin = fake_stripe.set_subscription(stripe_objects.subscription("trialing", id="sub_twin"))
    fake_stripe.mock.add(
        "DELETE",
        f"{stripe_objects.API_BASE}/v1/subscriptions/sub_twin",
        json={**twin, "status": "canceled"},
    )

    webhooks.post("customer.subscription.created", twin)

    membership = Membership.objects.get(subscriber=reader)
    assert membership.stripe_subscription_id == "sub_1SbTrial0000000000000001"
    assert fake_stripe.count("DELETE", r"/v1/subscriptions/sub_twin") == 1
    assert ReaderEmail.objects.filter(kind=ReaderEmail.Kind.WELCOME).count() == 1


@pytest.mark.django_db
def test_reader_emails_have_message_ids_on_the_sites_domain_and_subjects_that_read_well(settings):
    from django.template.loader import render_to_string

    from subscriptions import emails

    settings.SITE_URL = "https://news.example.com"
    reader = make_subscriber("reader@example.com")
    message = emails.sign_in_link(reader).message()
    assert re.fullmatch(r"<[^<>@\s]+@news\.example\.com>", message["Message-ID"])
    # A name that starts with "The" reads well in each ("Your The Briefing payment" did not).
    subjects = {
        name: render_to_string(f"emails/{name}_subject.txt", {"newsletter_name": "The Briefing"})
        for name in ["payment_failed", "payment_action_required", "membership_ended"]
    }
    assert {name: subject.strip() for name, subject in subjects.items()} == {
        "payment_failed": "Your payment to The Briefing didn't go through",
        "payment_action_required": "Your bank needs you to confirm your payment to The Briefing",
        "membership_ended": "Your membership of The Briefing has ended",
    }
