"""The demo's local Stripe keeps the customer's email in step with the reader's."""

import pytest

from demo_checkout import local_stripe
from subscriptions import stripe_api

pytestmark = pytest.mark.django_db


def test_the_local_customer_gets_the_new_email(settings):
    settings.BILLING_BACKEND = "demo_checkout.billing.LocalBilling"
    customer_id = stripe_api.create_customer(email="ada@example.com", name="Ada", subscriber_id=1)

    stripe_api.update_customer_email(customer_id, "ada@example.org")

    assert local_stripe.retrieve_customer(customer_id)["email"] == "ada@example.org"
