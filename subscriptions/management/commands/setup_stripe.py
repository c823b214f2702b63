"""Create (or find) the Stripe product, the $46/year price and the team seat price.

Safe to run again."""

import stripe
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from subscriptions import stripe_api, teams


class Command(BaseCommand):
    help = "Create or find the product and its $46/year USD price at Stripe; print the price id."

    def handle(self, *args: str, **options: object) -> None:
        if not settings.STRIPE_SECRET_KEY:
            raise CommandError("Set STRIPE_SECRET_KEY (a test key, sk_test_...) first.")
        client = stripe_api.client()
        try:
            price_id = self.ensure_price(client)
            team_price_id = self.ensure_team_price(client)
        except stripe.StripeError as error:
            raise CommandError(f"Stripe said: {error.user_message or error}") from error
        self.stdout.write(price_id)
        self.stderr.write(f"The team plan's seat price: {team_price_id}.")
        if settings.STRIPE_PRICE_ID and price_id != settings.STRIPE_PRICE_ID:
            self.stderr.write(
                f"Note: STRIPE_PRICE_ID is set to {settings.STRIPE_PRICE_ID}, "
                f"not this price; signups use STRIPE_PRICE_ID."
            )

    def ensure_price(self, client: stripe.StripeClient) -> str:
        prices = client.v1.prices.list(
            params={"lookup_keys": [stripe_api.PRICE_LOOKUP_KEY], "active": True}
        )
        if prices.data:
            price = prices.data[0]
            self.stderr.write(f"Found the price by lookup key {stripe_api.PRICE_LOOKUP_KEY}.")
            return price.id
        product_id = self.ensure_product(client)
        price = client.v1.prices.create(
            params={
                "product": product_id,
                "unit_amount": stripe_api.PRICE_CENTS,
                "currency": stripe_api.PRICE_CURRENCY,
                "recurring": {"interval": "year"},
                "lookup_key": stripe_api.PRICE_LOOKUP_KEY,
                "nickname": "Annual, $46",
            },
            options={
                "idempotency_key": stripe_api.idempotency_key(
                    "price", product_id, stripe_api.PRICE_CENTS
                )
            },
        )
        self.stderr.write(f"Created the $46/year price on product {product_id}.")
        return price.id

    def ensure_team_price(self, client: stripe.StripeClient) -> str:
        """The per-seat yearly price with volume tiers (TEAM_VOLUME_DISCOUNT_*)."""
        prices = client.v1.prices.list(
            params={"lookup_keys": [stripe_api.TEAM_PRICE_LOOKUP_KEY], "active": True}
        )
        if prices.data:
            return prices.data[0].id
        product_id = self.ensure_product(client)
        tiers = teams.price_tiers()
        price = client.v1.prices.create(
            params={
                "product": product_id,
                "currency": stripe_api.PRICE_CURRENCY,
                "recurring": {"interval": "year"},
                "billing_scheme": "tiered",
                "tiers_mode": "volume",
                "tiers": [
                    {"up_to": tier["up_to"], "unit_amount": int(tier["unit_amount"])}  # type: ignore[typeddict-item]
                    for tier in tiers
                ],
                "lookup_key": stripe_api.TEAM_PRICE_LOOKUP_KEY,
                "nickname": "Team seat, annual",
            },
            options={
                "idempotency_key": stripe_api.idempotency_key("team-price", product_id, tiers)
            },
        )
        self.stderr.write(f"Created the team seat price on product {product_id}.")
        return price.id

    def ensure_product(self, client: stripe.StripeClient) -> str:
        try:
            return client.v1.products.retrieve(stripe_api.PRODUCT_ID).id
        except stripe.InvalidRequestError as error:
            if error.code != "resource_missing":
                raise
        product = client.v1.products.create(
            params={
                "id": stripe_api.PRODUCT_ID,
                "name": settings.NEWSLETTER_NAME,
                "description": "The weekday morning briefing, by email.",
            },
            options={"idempotency_key": stripe_api.idempotency_key("product")},
        )
        return product.id
