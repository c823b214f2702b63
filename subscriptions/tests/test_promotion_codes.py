"""Promotion codes: Checkout accepts them (a setting), and every amount shown is the real one.

Stripe is faked at the HTTP level with recorded shapes; events are signed and
posted to the real endpoint; emails go through a real SMTP server.
"""

import time

import pytest
from django.test import Client

from subscriptions.models import Membership
from subscriptions.sessions import EPOCH_KEY, SESSION_KEY
from subscriptions.tests import stripe_objects
from subscriptions.tests.factories import make_stripe_member
from subscriptions.tests.signup_flow import sign_up

pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-12-03 11:00Z")]

Status = Membership.Status
SUB = "sub_1SbTrial0000000000000001"
DISCOUNT = "di_1SbPromo20Off000000000001"
FORM = {"email": "newcomer@example.com", "name": "Newcomer", "time_zone": "UTC"}


def discounted(fake_stripe, status: str = "active", amount_due: int = 3680, **changes) -> dict:
    """Stripe's subscription carrying a promotion code's discount, and its preview."""
    sub = fake_stripe.set_subscription(
        stripe_objects.subscription(status, discounts=[DISCOUNT], **changes)
    )
    fake_stripe.previews[SUB] = stripe_objects.upcoming_invoice(
        sub, amount_due=amount_due, total=amount_due, subtotal=4600, discounts=[DISCOUNT]
    )
    return sub


def browser(reader) -> Client:
    client = Client()
    session = client.session
    session[SESSION_KEY] = reader.pk
    session[EPOCH_KEY] = reader.session_epoch
    session.save()
    return client


@pytest.mark.parametrize("allowed", [True, False])
def test_checkout_accepts_promotion_codes_only_when_the_setting_says_so(
    allowed, client, fake_stripe, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.ALLOW_PROMOTION_CODES = allowed
    assert sign_up(client, FORM, mailoutbox, django_capture_on_commit_callbacks).status_code == 303
    [session] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert session.get("allow_promotion_codes") == ("true" if allowed else None)


def test_the_account_and_the_emails_name_the_discounted_charge(webhooks, fake_stripe, smtp_server):
    reader = make_stripe_member(Status.INCOMPLETE, email="ada@example.com", time_zone="UTC")
    trial = discounted(fake_stripe, "trialing")
    webhooks.post("customer.subscription.created", trial)

    membership = Membership.objects.get(subscriber=reader)
    assert (membership.amount, membership.next_charge_amount) == (4600, 3680)
    [welcome] = smtp_server.received()
    assert "your card is then charged $36.80 for the year" in " ".join(welcome.text.split())

    trial["trial_end"] = int(time.time()) + 3 * 86400
    webhooks.post("customer.subscription.trial_will_end", trial)
    reminder = smtp_server.received()[-1]
    assert "$36.80 will be charged" in str(reminder.message["Subject"])

    page = browser(reader).get("/account/").content.decode()
    assert "<dt>First charge</dt><dd>$36.80 on" in page
    assert "the next charge is <strong>$36.80</strong> instead of $46" in page


def test_a_subscription_without_a_discount_costs_no_preview(webhooks, fake_stripe):
    reader = make_stripe_member(Status.INCOMPLETE)
    webhooks.post(
        "customer.subscription.updated",
        fake_stripe.set_subscription(stripe_objects.subscription("active")),
    )
    assert fake_stripe.requests("POST", "/v1/invoices/create_preview") == []
    assert Membership.objects.get(subscriber=reader).charge_amount == 4600


def test_a_once_only_code_used_up_and_a_stale_event_end_at_stripes_amount(webhooks, fake_stripe):
    reader = make_stripe_member(Status.INCOMPLETE)
    with_code = discounted(fake_stripe)
    webhooks.post("customer.subscription.updated", with_code, event_id="evt_code")
    webhooks.post("customer.subscription.updated", with_code, event_id="evt_code")
    assert Membership.objects.get(subscriber=reader).charge_amount == 3680
    assert len(fake_stripe.requests("POST", "/v1/invoices/create_preview")) == 1

    # The code was for the first year only: Stripe dropped the discount. A
    # stale copy that still carries it arrives after; Stripe's state wins.
    fake_stripe.set_subscription(stripe_objects.subscription("active"))
    del fake_stripe.previews[SUB]
    webhooks.post("customer.subscription.updated", stripe_objects.subscription("active"))
    webhooks.post("customer.subscription.updated", with_code)

    membership = Membership.objects.get(subscriber=reader)
    assert membership.next_charge_amount is None and membership.charge_amount == 4600
