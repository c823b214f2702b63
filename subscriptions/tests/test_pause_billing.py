"""Pausing billing and the digest for 1 to 3 months (pause_collection), resuming by itself.

Stripe is faked at the HTTP level with recorded shapes; events are signed and
posted to the real endpoint.
"""

import datetime

import pytest
from django.test import Client

from subscriptions import tasks
from subscriptions.actions.lifecycle import months_later
from subscriptions.models import Membership, ReaderEmail, Subscriber
from subscriptions.sessions import EPOCH_KEY, SESSION_KEY
from subscriptions.tests import stripe_objects
from subscriptions.tests.factories import make_stripe_member

pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-12-03 11:00Z")]

Status = Membership.Status
SUB = "sub_1SbTrial0000000000000001"


@pytest.fixture
def reader(webhooks, fake_stripe):
    reader = make_stripe_member(Status.INCOMPLETE, email="ada@example.com", time_zone="UTC")
    webhooks.post(
        "customer.subscription.updated",
        fake_stripe.set_subscription(stripe_objects.subscription("active")),
    )
    return reader


def browser(reader: Subscriber) -> Client:
    client = Client()
    session = client.session
    session[SESSION_KEY] = reader.pk
    session[EPOCH_KEY] = reader.session_epoch
    session.save()
    return client


def membership(reader) -> Membership:
    return Membership.objects.get(subscriber=reader)


def test_months_later_keeps_the_day_or_takes_the_months_last():
    start = datetime.datetime(2026, 11, 30, 11, tzinfo=datetime.UTC)
    assert months_later(start, 1) == datetime.datetime(2026, 12, 30, 11, tzinfo=datetime.UTC)
    assert months_later(start, 3) == datetime.datetime(2027, 2, 28, 11, tzinfo=datetime.UTC)


def test_a_two_month_pause_stops_billing_and_the_digest_then_both_resume_by_themselves(
    reader, fake_stripe, webhooks, clock
):
    client = browser(reader)
    page = client.post("/account/pause-billing/", {"months": "2"}, follow=True).content.decode()

    [update] = fake_stripe.requests("POST", f"/v1/subscriptions/{SUB}")
    resumes = datetime.datetime(2027, 2, 3, 11, tzinfo=datetime.UTC)
    assert update["pause_collection[behavior]"] == "keep_as_draft"
    assert int(update["pause_collection[resumes_at]"]) == int(resumes.timestamp())
    assert membership(reader).pause_resumes_at == resumes
    assert not reader.is_entitled  # no digest while paused
    assert "no briefing and no charge" in page
    assert "3 February 2027, 11:00</strong> (UTC time)" in page
    assert "Resume now" in page

    # The same event twice, and a stale copy from before the pause: Stripe's state wins.
    paused = fake_stripe.subscriptions[SUB]
    webhooks.post("customer.subscription.updated", paused, event_id="evt_paused")
    webhooks.post("customer.subscription.updated", paused, event_id="evt_paused")
    webhooks.post("customer.subscription.updated", stripe_objects.subscription("active"))
    assert membership(reader).pause_resumes_at == resumes

    # The pause ends: the digest resumes by the clock, before any event.
    clock.move_to(resumes + datetime.timedelta(minutes=1))
    assert reader.is_entitled


def test_a_charge_due_during_the_pause_is_collected_when_it_ends(reader, fake_stripe, webhooks):
    browser(reader).post("/account/pause-billing/", {"months": "1"})
    # The renewal fell in the pause: Stripe kept its invoice as a draft.
    draft = fake_stripe.set_invoice(
        stripe_objects.invoice(id="in_1SbPausedDraft00000001", status="draft", auto_advance=False)
    )
    # Stripe resumes collection at resumes_at and says so; the event comes twice.
    fake_stripe.subscriptions[SUB]["pause_collection"] = None
    resumed = fake_stripe.subscriptions[SUB]
    webhooks.post("customer.subscription.updated", resumed, event_id="evt_resumed")
    webhooks.post("customer.subscription.updated", resumed, event_id="evt_resumed")
    webhooks.post("customer.subscription.updated", resumed)

    assert membership(reader).pause_resumes_at is None
    assert reader.is_entitled
    [finalize] = fake_stripe.requests("POST", f"/v1/invoices/{draft['id']}/finalize")
    assert finalize["auto_advance"] == "true"
    assert fake_stripe.invoices[draft["id"]]["status"] == "open"


def test_resume_now_from_the_account(reader, fake_stripe):
    client = browser(reader)
    client.post("/account/pause-billing/", {"months": "3"})
    page = client.post("/account/pause-billing/", {"action": "resume"}, follow=True)

    *_, resume = fake_stripe.requests("POST", f"/v1/subscriptions/{SUB}")
    assert resume["pause_collection"] == ""
    assert membership(reader).pause_resumes_at is None
    assert reader.is_entitled
    assert "billing and the briefing have resumed" in page.content.decode()


def test_only_one_to_three_months_of_an_active_uncancelled_membership(
    reader, fake_stripe, webhooks
):
    client = browser(reader)
    for months in ("0", "4", "x"):
        page = client.post("/account/pause-billing/", {"months": months}, follow=True)
        assert "Choose a pause of 1, 2 or 3 months." in page.content.decode()
    webhooks.post(
        "customer.subscription.updated",
        fake_stripe.set_subscription(
            stripe_objects.subscription("active", cancel_at_period_end=True)
        ),
    )
    page = client.post("/account/pause-billing/", {"months": "1"}, follow=True)
    assert "there is no billing left to pause" in page.content.decode()
    assert fake_stripe.requests("POST", f"/v1/subscriptions/{SUB}") == []


def test_no_renewal_notice_while_paused(reader, fake_stripe, django_capture_on_commit_callbacks):
    item = fake_stripe.subscriptions[SUB]["items"]["data"][0]
    item["current_period_end"] = int((datetime.datetime.now(datetime.UTC)).timestamp()) + 10 * 86400
    browser(reader).post("/account/pause-billing/", {"months": "1"})
    with django_capture_on_commit_callbacks(execute=True):
        tasks.billing_lifecycle()
    assert not ReaderEmail.objects.filter(kind=ReaderEmail.Kind.RENEWAL_NOTICE).exists()


def test_a_lost_resume_event_is_found_by_reconciliation(reader, fake_stripe, clock):
    browser(reader).post("/account/pause-billing/", {"months": "1"})
    clock.shift(datetime.timedelta(days=40))
    fake_stripe.subscriptions[SUB]["pause_collection"] = None  # Stripe resumed; no event came

    tasks.reconcile_memberships()

    assert membership(reader).pause_resumes_at is None


def test_the_digest_pause_is_explained_apart(reader):
    page = browser(reader).get("/account/").content.decode()
    assert "Pause billing and the briefing" in page
    assert "To stop only the emails for a few days and leave billing alone" in page
