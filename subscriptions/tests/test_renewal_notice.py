"""The renewal notice: RENEWAL_NOTICE_DAYS before each yearly charge, once, never when cancelling.

Stripe is faked at the HTTP level with recorded shapes; invoice.upcoming is
signed and posted to the real endpoint; emails go through a real SMTP server.
"""

import datetime
import time

import pytest
from django.utils import timezone

from subscriptions import tasks
from subscriptions.models import Membership, ReaderEmail, StripeEvent
from subscriptions.tests import stripe_objects
from subscriptions.tests.factories import make_stripe_member

pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-12-03 11:00Z")]

Status = Membership.Status
SUB = "sub_1SbTrial0000000000000001"
DAY = 86400


@pytest.fixture
def reader():
    return make_stripe_member(
        Status.INCOMPLETE, email="ada@example.com", name="Ada", time_zone="Europe/Paris"
    )


def renewing_in(fake_stripe, days: float, **changes) -> dict:
    """Stripe's copy of an active yearly subscription that renews in `days`."""
    sub = stripe_objects.subscription("active", **changes)
    sub["items"]["data"][0]["current_period_end"] = int(time.time() + days * DAY)
    return fake_stripe.set_subscription(sub)


def synced(webhooks, sub: dict) -> None:
    assert webhooks.post("customer.subscription.updated", sub).status_code == 200


def hourly_check(django_capture_on_commit_callbacks) -> dict:
    with django_capture_on_commit_callbacks(execute=True):
        return tasks.billing_lifecycle()


def notices(smtp_server) -> list:
    return [m for m in smtp_server.received() if "renews on" in str(m.message["Subject"])]


def test_the_hourly_check_sends_one_notice_with_the_date_the_amount_and_a_cancel_link(
    webhooks, fake_stripe, reader, smtp_server, django_capture_on_commit_callbacks, client
):
    sub = renewing_in(fake_stripe, 15)
    synced(webhooks, sub)

    assert hourly_check(django_capture_on_commit_callbacks)["renewal_notices"] == 1
    assert hourly_check(django_capture_on_commit_callbacks)["renewal_notices"] == 0

    [notice] = notices(smtp_server)
    renews = datetime.datetime.fromtimestamp(
        sub["items"]["data"][0]["current_period_end"], tz=datetime.UTC
    )
    assert str(notice.message["Subject"]) == (
        f"Your membership renews on {renews.day} December: $46 will be charged"
    )
    assert f"renews on Friday {renews.day} December 2026 (Europe/Paris time)" in notice.text
    assert "your card will be charged $46 for another year" in notice.text
    assert "Cancel in two clicks" in notice.text
    assert "http://127.0.0.1:8000/billing/renewal/" in notice.text
    # The amount is Stripe's preview of the renewal invoice, asked once.
    [preview] = fake_stripe.requests("POST", "/v1/invoices/create_preview")
    assert preview["subscription"] == SUB


def test_invoice_upcoming_sends_it_and_repeats_of_any_kind_send_nothing_more(
    webhooks, fake_stripe, reader, smtp_server, django_capture_on_commit_callbacks
):
    sub = renewing_in(fake_stripe, 14)
    upcoming = stripe_objects.upcoming_invoice(sub)

    first = webhooks.post("invoice.upcoming", upcoming, event_id="evt_upcoming_1")
    duplicate = webhooks.post("invoice.upcoming", upcoming, event_id="evt_upcoming_1")
    another = webhooks.post("invoice.upcoming", upcoming)
    assert (first.status_code, duplicate.status_code, another.status_code) == (200, 200, 200)
    hourly_check(django_capture_on_commit_callbacks)

    assert len(notices(smtp_server)) == 1
    assert StripeEvent.objects.get(event_id="evt_upcoming_1").note == "renewal notice queued"
    assert ReaderEmail.objects.filter(kind=ReaderEmail.Kind.RENEWAL_NOTICE).count() == 1


def test_an_upcoming_event_whose_copy_is_stale_is_decided_on_stripes_state(
    webhooks, fake_stripe, reader, smtp_server, django_capture_on_commit_callbacks
):
    # The event was rendered while the subscription would renew; by the time
    # it arrives the reader has cancelled (the updated event came first).
    sub = renewing_in(fake_stripe, 15)
    upcoming = stripe_objects.upcoming_invoice(sub)
    sub["cancel_at_period_end"] = True
    synced(webhooks, sub)

    response = webhooks.post("invoice.upcoming", upcoming)
    hourly_check(django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert notices(smtp_server) == []
    assert fake_stripe.requests("POST", "/v1/invoices/create_preview") == []
    event = StripeEvent.objects.get(type="invoice.upcoming")
    assert event.note == "no renewal notice: set to cancel: nothing will be charged"


def test_an_early_upcoming_event_waits_for_the_notice_period(
    webhooks, fake_stripe, reader, smtp_server, django_capture_on_commit_callbacks, clock, settings
):
    # Stripe's own advance notice is set to 30 days in the dashboard.
    sub = renewing_in(fake_stripe, 30)
    webhooks.post("invoice.upcoming", stripe_objects.upcoming_invoice(sub))
    hourly_check(django_capture_on_commit_callbacks)
    assert notices(smtp_server) == []

    clock.shift(datetime.timedelta(days=30 - settings.RENEWAL_NOTICE_DAYS, hours=1))
    hourly_check(django_capture_on_commit_callbacks)

    assert len(notices(smtp_server)) == 1


def test_never_for_a_subscription_set_to_cancel_nor_a_trial(
    webhooks, fake_stripe, reader, smtp_server, django_capture_on_commit_callbacks
):
    synced(webhooks, renewing_in(fake_stripe, 10, cancel_at_period_end=True))
    hourly_check(django_capture_on_commit_callbacks)
    assert ReaderEmail.objects.filter(kind=ReaderEmail.Kind.RENEWAL_NOTICE).count() == 0

    # A trial's first charge is the trial reminder's to name, not this notice's.
    trial = fake_stripe.set_subscription(stripe_objects.subscription("trialing"))
    trial["trial_end"] = trial["items"]["data"][0]["current_period_end"] = int(time.time()) + DAY
    synced(webhooks, trial)
    webhooks.post("invoice.upcoming", stripe_objects.upcoming_invoice(trial))
    hourly_check(django_capture_on_commit_callbacks)

    assert ReaderEmail.objects.filter(kind=ReaderEmail.Kind.RENEWAL_NOTICE).count() == 0


def test_each_renewal_has_its_own_notice(
    webhooks, fake_stripe, reader, smtp_server, django_capture_on_commit_callbacks, clock
):
    sub = renewing_in(fake_stripe, 15)
    synced(webhooks, sub)
    hourly_check(django_capture_on_commit_callbacks)

    # A year on, the next renewal comes round.
    clock.shift(datetime.timedelta(days=365))
    item = sub["items"]["data"][0]
    item["current_period_end"] += 365 * DAY
    synced(webhooks, sub)
    hourly_check(django_capture_on_commit_callbacks)

    assert len(notices(smtp_server)) == 2


def test_a_discounted_renewal_names_what_will_really_be_charged(
    webhooks, fake_stripe, reader, smtp_server, django_capture_on_commit_callbacks
):
    sub = renewing_in(fake_stripe, 15)
    fake_stripe.previews[SUB] = stripe_objects.upcoming_invoice(
        sub, amount_due=3680, subtotal=4600, total=3680
    )
    synced(webhooks, sub)
    hourly_check(django_capture_on_commit_callbacks)

    [notice] = notices(smtp_server)
    assert "$36.80 will be charged" in str(notice.message["Subject"])
    assert "charged $36.80 (the $46 price with your discount)" in notice.text


def test_stripe_down_during_the_check_tries_again_next_hour(
    webhooks, fake_stripe, reader, smtp_server, django_capture_on_commit_callbacks
):
    synced(webhooks, renewing_in(fake_stripe, 15))
    fake_stripe.fail_next = 10  # the SDK retries twice: every try of this run fails
    assert hourly_check(django_capture_on_commit_callbacks)["renewal_notices"] == 0
    fake_stripe.fail_next = 0
    assert hourly_check(django_capture_on_commit_callbacks)["renewal_notices"] == 1


def test_cancel_in_two_clicks_from_the_notice(
    webhooks, fake_stripe, reader, smtp_server, django_capture_on_commit_callbacks, client
):
    synced(webhooks, renewing_in(fake_stripe, 15))
    hourly_check(django_capture_on_commit_callbacks)
    [notice] = notices(smtp_server)
    link = next(w for w in notice.text.split() if "/billing/renewal/" in w)
    path = link.removeprefix("http://127.0.0.1:8000")

    # Click one: the link (a mail scanner's GET changes nothing).
    opened = client.get(path, follow=True)
    assert opened.status_code == 200
    assert opened.redirect_chain[-1][0] == "/billing/renewal/"
    assert b"Cancel my renewal" in opened.content
    assert not Membership.objects.get(subscriber=reader).cancel_at_period_end
    # Click two: the button.
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/billing/renewal/", {"renewal": "cancel"}, follow=True)

    membership = Membership.objects.get(subscriber=reader)
    assert membership.cancel_at_period_end
    assert membership.is_entitled  # the digest continues until the period ends
    [update] = fake_stripe.requests("POST", f"/v1/subscriptions/{SUB}")
    assert update["cancel_at_period_end"] == "true" and update["_idempotency_key"]
    assert b"Your renewal is cancelled" in done.content
    assert b"Keep my membership" in done.content


def test_a_forged_renewal_link_changes_nothing(client, reader, fake_stripe):
    response = client.get(f"/billing/renewal/{reader.pk}-forged/")
    assert response.status_code == 400
    assert client.post("/billing/renewal/", {"renewal": "cancel"}).status_code == 400
    assert len(fake_stripe.mock.calls) == 0


def test_a_notice_is_skipped_once_the_renewal_is_past(reader):
    # Reading the mirror only: a membership whose period ended is not "due".
    Membership.objects.filter(subscriber=reader).update(
        status=Status.ACTIVE, current_period_end=timezone.now() - datetime.timedelta(hours=1)
    )
    from subscriptions.actions.lifecycle import renewals_due_notice

    assert renewals_due_notice() == []
