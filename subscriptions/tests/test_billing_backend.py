"""One billing backend answers every billing call, chosen by BILLING_BACKEND or the keys."""

import pytest

from subscriptions import billing, stripe_api
from testing.commands import PRODUCTION, run_manage


def test_with_a_stripe_key_stripe_answers(settings):
    assert settings.STRIPE_SECRET_KEY  # the readers' test settings
    assert type(stripe_api.backend()) is billing.StripeBilling
    assert stripe_api.billing_configured()
    assert not stripe_api.uses_local_checkout()
    assert stripe_api.webhook_secret() == settings.STRIPE_WEBHOOK_SECRET
    assert stripe_api.price_id() == settings.STRIPE_PRICE_ID


def test_the_backend_is_made_once_and_follows_the_settings_it_depends_on(settings):
    first = stripe_api.backend()
    assert stripe_api.backend() is first

    settings.STRIPE_SECRET_KEY = None
    settings.DEBUG = False
    assert type(stripe_api.backend()) is billing.UnavailableBilling

    settings.BILLING_BACKEND = "subscriptions.billing.StripeBilling"
    assert type(stripe_api.backend()) is billing.StripeBilling


def test_without_a_key_outside_the_demo_every_call_says_billing_is_unavailable(settings):
    settings.STRIPE_SECRET_KEY = None
    settings.DEBUG = False

    assert not stripe_api.billing_configured()
    assert not stripe_api.uses_local_checkout()
    for call in [
        stripe_api.price_id,
        lambda: stripe_api.create_customer(email="ada@example.com", name="", subscriber_id=1),
        lambda: stripe_api.retrieve_subscription("sub_1"),
        lambda: stripe_api.latest_subscription("cus_1"),
        lambda: stripe_api.create_portal_session("cus_1", "http://127.0.0.1:8000/account/"),
    ]:
        with pytest.raises(stripe_api.BillingUnavailable):
            call()


def test_the_stripe_signature_scheme_is_stripes():
    # A known answer: HMAC-SHA256 of "<timestamp>.<body>" under the secret, in
    # hex, as Stripe documents for checking a signature by hand.
    header = stripe_api.signature_header('{"id": "evt_1"}', "whsec_test_secret", 1700000000)
    assert header == (
        "t=1700000000,v1=33aa1568c6627d0d2d42556693c208077ca8f8b437ac8d9d6ebb6c2c650033eb"
    )


def test_a_billing_backend_that_names_no_class_stops_the_service(settings):
    # An advanced setting (config/settings), checked when the app starts.
    from django.apps import apps

    assert settings.BILLING_BACKEND is None  # the keys choose
    settings.BILLING_BACKEND = "subscriptions.billing.Nope"
    with pytest.raises(ImportError, match='does not define a "Nope"'):
        apps.get_app_config("subscriptions").ready()


def test_the_billing_backend_is_not_chosen_by_the_environment():
    result = run_manage("check", **PRODUCTION, BILLING_BACKEND="subscriptions.billing.Nope")
    assert result.returncode != 0
    assert "BILLING_BACKEND is no longer read from the environment" in result.stderr
