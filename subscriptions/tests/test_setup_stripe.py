"""python manage.py setup_stripe: the product and the $46/year price, idempotent."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from subscriptions.tests import stripe_objects


def run() -> str:
    out = StringIO()
    call_command("setup_stripe", stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_creates_the_product_and_price_once(fake_stripe):
    price_id = run()

    assert price_id.startswith("price_test")
    [product] = fake_stripe.requests("POST", "/v1/products")
    assert product["id"] == "morning-briefing"
    assert product["name"] == "The Morning Briefing"
    assert product["_idempotency_key"]
    [price, team_price] = fake_stripe.requests("POST", "/v1/prices")
    assert price["unit_amount"] == "4600"
    assert price["currency"] == "usd"
    assert price["recurring[interval]"] == "year"
    assert price["lookup_key"] == "morning-briefing-annual-usd"
    assert price["product"] == "morning-briefing"
    # The team plan's seat: $46, and 20% off every seat from 5 (volume tiers).
    assert team_price["lookup_key"] == "morning-briefing-team-annual-usd"
    assert (team_price["billing_scheme"], team_price["tiers_mode"]) == ("tiered", "volume")
    assert (team_price["tiers[0][up_to]"], team_price["tiers[0][unit_amount]"]) == ("4", "4600")
    assert (team_price["tiers[1][up_to]"], team_price["tiers[1][unit_amount]"]) == ("inf", "3680")

    # A second run finds the prices by their lookup keys and creates nothing.
    assert run() == price_id
    assert len(fake_stripe.requests("POST", "/v1/prices")) == 2
    assert len(fake_stripe.requests("POST", "/v1/products")) == 1
    [lookup, *_] = fake_stripe.requests("GET", "/v1/prices")
    assert lookup["lookup_keys[0]"] == "morning-briefing-annual-usd"


def test_reuses_an_existing_product(fake_stripe):
    fake_stripe.products["morning-briefing"] = stripe_objects.load("product")
    run()
    assert fake_stripe.requests("POST", "/v1/products") == []


def test_needs_a_key(settings):
    settings.STRIPE_SECRET_KEY = None
    with pytest.raises(CommandError, match="STRIPE_SECRET_KEY"):
        run()
