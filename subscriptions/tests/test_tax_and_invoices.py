"""Stripe Tax and tax ids (settings, off by default), and the account's link to invoices."""

import pytest
from django.test import Client

from subscriptions.models import Membership
from subscriptions.sessions import EPOCH_KEY, SESSION_KEY
from subscriptions.tests.factories import make_stripe_member
from subscriptions.tests.signup_flow import sign_up

pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-12-03 11:00Z")]

FORM = {"email": "newcomer@example.com", "name": "Newcomer", "time_zone": "UTC"}
GIFT = {
    "buyer_email": "giver@example.com",
    "recipient_email": "lucky@example.com",
    "deliver_on": "2026-12-03",
}
TAX_FIELDS = (
    "automatic_tax[enabled]",
    "tax_id_collection[enabled]",
    "customer_update[address]",
    "customer_update[name]",
)


def test_off_by_default_checkouts_ask_no_tax(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    sign_up(client, FORM, mailoutbox, django_capture_on_commit_callbacks)
    client.post("/gift/", GIFT)
    for session in fake_stripe.requests("POST", "/v1/checkout/sessions"):
        assert not any(field in session for field in TAX_FIELDS)


def test_with_the_settings_checkout_computes_tax_and_takes_tax_ids(
    client, fake_stripe, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.STRIPE_AUTOMATIC_TAX = True
    settings.STRIPE_TAX_ID_COLLECTION = True
    sign_up(client, FORM, mailoutbox, django_capture_on_commit_callbacks)
    Client().post("/gift/", GIFT)

    membership_session, gift_session = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert membership_session["automatic_tax[enabled]"] == "true"
    assert membership_session["tax_id_collection[enabled]"] == "true"
    # The reader's existing customer is allowed to take the address and name.
    assert membership_session["customer_update[address]"] == "auto"
    assert membership_session["customer_update[name]"] == "auto"
    assert gift_session["automatic_tax[enabled]"] == "true"
    assert "customer_update[address]" not in gift_session  # no customer: nothing to update


def test_the_account_links_the_invoices_in_the_portal(fake_stripe):
    reader = make_stripe_member(Membership.Status.CANCELED)  # history matters after the end too
    client = Client()
    session = client.session
    session[SESSION_KEY] = reader.pk
    session[EPOCH_KEY] = reader.session_epoch
    session.save()

    page = client.get("/account/").content.decode()
    assert "See my invoices" in page
    response = client.post("/account/billing/")
    assert response.status_code == 303
    [portal] = fake_stripe.requests("POST", "/v1/billing_portal/sessions")
    assert portal["customer"] == "cus_T4kQ8Zr2mXv1Ab"
