"""Billing backends: who answers the billing calls of subscriptions.stripe_api.

One is chosen once, by dotted path (stripe_api.backend): Stripe itself, or
none at all; the keyless demo brings its own (demo_checkout.billing). Each
implements stripe_api.BillingBackend, the calls the service makes: it takes
the parameters Stripe's API takes and returns the SDK's objects, so the code
that calls them cannot tell which one answered.
"""

import functools
from collections.abc import Iterator
from typing import NoReturn

import stripe
from django.conf import settings
from stripe.params import (
    CustomerBalanceTransactionCreateParams,
    CustomerCreateParams,
    CustomerUpdateParams,
    InvoiceCreatePreviewParams,
    SubscriptionListParams,
    SubscriptionUpdateParams,
)
from stripe.params.billing_portal import SessionCreateParams as PortalSessionParams
from stripe.params.checkout import SessionCreateParams as CheckoutSessionParams

from subscriptions import stripe_api
from subscriptions.stripe_api import BillingUnavailable


class StripeBilling(stripe_api.BillingBackend):
    """Stripe's API through the official SDK (stripe_api.client)."""

    def livemode(self) -> bool | None:
        """The mode Stripe writes in the key: sk_live_, rk_live_ or sk_test_, rk_test_."""
        key = settings.STRIPE_SECRET_KEY or ""
        if key.startswith(("sk_live_", "rk_live_")):
            return True
        if key.startswith(("sk_test_", "rk_test_")):
            return False
        return None

    def price_id(self) -> str:
        """STRIPE_PRICE_ID, else the price found once by its lookup key."""
        if settings.STRIPE_PRICE_ID:
            return settings.STRIPE_PRICE_ID
        return _looked_up_price_id(
            settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, stripe_api.PRICE_LOOKUP_KEY
        )

    def create_customer(self, params: CustomerCreateParams, *, key: str) -> str:
        client = stripe_api.client()
        return client.v1.customers.create(params=params, options={"idempotency_key": key}).id

    def update_customer(self, customer_id: str, params: CustomerUpdateParams, *, key: str) -> None:
        stripe_api.client().v1.customers.update(
            customer_id, params=params, options={"idempotency_key": key}
        )

    def create_checkout_session(
        self, params: CheckoutSessionParams, *, key: str
    ) -> stripe.checkout.Session:
        client = stripe_api.client()
        return client.v1.checkout.sessions.create(params=params, options={"idempotency_key": key})

    def retrieve_checkout_session(self, session_id: str) -> stripe.checkout.Session:
        return stripe_api.client().v1.checkout.sessions.retrieve(session_id)

    def retrieve_subscription(self, subscription_id: str) -> stripe.Subscription:
        return stripe_api.client().v1.subscriptions.retrieve(subscription_id)

    def retrieve_invoice(self, invoice_id: str) -> stripe.Invoice:
        return stripe_api.client().v1.invoices.retrieve(invoice_id)

    def cancel_subscription(self, subscription_id: str, *, key: str) -> None:
        stripe_api.client().v1.subscriptions.cancel(
            subscription_id, options={"idempotency_key": key}
        )

    def latest_subscription(self, customer_id: str) -> stripe.Subscription | None:
        subscriptions = stripe_api.client().v1.subscriptions.list(
            params={"customer": customer_id, "status": "all", "limit": 1}
        )
        return subscriptions.data[0] if subscriptions.data else None

    def preview_invoice(self, params: InvoiceCreatePreviewParams) -> stripe.Invoice:
        return stripe_api.client().v1.invoices.create_preview(params=params)

    def update_subscription(
        self, subscription_id: str, params: SubscriptionUpdateParams, *, key: str
    ) -> stripe.Subscription:
        return stripe_api.client().v1.subscriptions.update(
            subscription_id, params=params, options={"idempotency_key": key}
        )

    def list_subscriptions(self, params: SubscriptionListParams) -> Iterator[stripe.Subscription]:
        return stripe_api.client().v1.subscriptions.list(params=params).auto_paging_iter()

    def draft_invoices(self, subscription_id: str) -> list[stripe.Invoice]:
        invoices = stripe_api.client().v1.invoices.list(
            params={"subscription": subscription_id, "status": "draft", "limit": 100}
        )
        return list(invoices.data)

    def finalize_invoice(self, invoice_id: str, *, key: str) -> stripe.Invoice:
        return stripe_api.client().v1.invoices.finalize_invoice(
            invoice_id, params={"auto_advance": True}, options={"idempotency_key": key}
        )

    def create_portal_session(self, params: PortalSessionParams) -> str:
        return stripe_api.client().v1.billing_portal.sessions.create(params=params).url

    def team_price_id(self) -> str:
        return _looked_up_price_id(
            settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, stripe_api.TEAM_PRICE_LOOKUP_KEY
        )

    def cancel_subscription_prorated(self, subscription_id: str, *, key: str) -> None:
        stripe_api.client().v1.subscriptions.cancel(
            subscription_id,
            params={"prorate": True, "invoice_now": True},
            options={"idempotency_key": key},
        )

    def create_balance_transaction(
        self, customer_id: str, params: CustomerBalanceTransactionCreateParams, *, key: str
    ) -> str:
        transactions = stripe_api.client().v1.customers.balance_transactions
        return transactions.create(customer_id, params=params, options={"idempotency_key": key}).id

    def customer_balance(self, customer_id: str) -> int:
        return stripe_api.client().v1.customers.retrieve(customer_id).balance or 0

    def retrieve_charge(self, charge_id: str) -> stripe.Charge:
        return stripe_api.client().v1.charges.retrieve(charge_id)

    def retrieve_payment_method(self, payment_method_id: str) -> stripe.PaymentMethod:
        return stripe_api.client().v1.payment_methods.retrieve(payment_method_id)


@functools.cache
def _looked_up_price_id(api_key: str, api_base: str | None, lookup_key: str) -> str:
    prices = stripe_api.client().v1.prices.list(
        params={"lookup_keys": [lookup_key], "active": True}
    )
    if not prices.data:
        raise BillingUnavailable(
            f"No active Stripe price with lookup key {lookup_key!r}: "
            "run `python manage.py setup_stripe` or set STRIPE_PRICE_ID."
        )
    return prices.data[0].id


class UnavailableBilling(stripe_api.BillingBackend):
    """No Stripe key and not the demo: every call says billing is not configured."""

    configured = False

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise BillingUnavailable("STRIPE_SECRET_KEY is not set.")

    price_id = _refuse
    create_customer = _refuse
    update_customer = _refuse
    create_checkout_session = _refuse
    retrieve_checkout_session = _refuse
    retrieve_subscription = _refuse
    retrieve_invoice = _refuse
    cancel_subscription = _refuse
    latest_subscription = _refuse
    preview_invoice = _refuse
    update_subscription = _refuse
    draft_invoices = _refuse
    list_subscriptions = _refuse
    finalize_invoice = _refuse
    create_portal_session = _refuse
    create_balance_transaction = _refuse
    team_price_id = _refuse
    cancel_subscription_prorated = _refuse
    customer_balance = _refuse
    retrieve_charge = _refuse
    retrieve_payment_method = _refuse
