"""The keyless demo's billing backend: every call answered by the local test checkout."""

from collections.abc import Iterator

import stripe
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

from demo_checkout import local_stripe
from subscriptions.stripe_api import BillingBackend


class LocalBilling(BillingBackend):
    """Stripe played locally (demo_checkout.local_stripe): nothing leaves this machine."""

    local_checkout = True

    def webhook_secret(self) -> str:
        # The local checkout signs its events with its own secret, never Stripe's.
        return local_stripe.WEBHOOK_SECRET

    def price_id(self) -> str:
        return local_stripe.PRICE_ID

    def create_customer(self, params: CustomerCreateParams, *, key: str) -> str:
        return local_stripe.create_customer(params)

    def update_customer(self, customer_id: str, params: CustomerUpdateParams, *, key: str) -> None:
        local_stripe.update_customer(customer_id, params)

    def create_checkout_session(
        self, params: CheckoutSessionParams, *, key: str
    ) -> stripe.checkout.Session:
        return local_stripe.create_checkout_session(params)

    def retrieve_checkout_session(self, session_id: str) -> stripe.checkout.Session:
        return local_stripe.retrieve_checkout_session(session_id)

    def retrieve_subscription(self, subscription_id: str) -> stripe.Subscription:
        return local_stripe.retrieve_subscription(subscription_id)

    def retrieve_invoice(self, invoice_id: str) -> stripe.Invoice:
        return local_stripe.retrieve_invoice(invoice_id)

    def cancel_subscription(self, subscription_id: str, *, key: str) -> None:
        local_stripe.cancel_subscription(subscription_id)

    def latest_subscription(self, customer_id: str) -> stripe.Subscription | None:
        return local_stripe.latest_subscription(customer_id)

    def preview_invoice(self, params: InvoiceCreatePreviewParams) -> stripe.Invoice:
        return local_stripe.preview_invoice(params)

    def update_subscription(
        self, subscription_id: str, params: SubscriptionUpdateParams, *, key: str
    ) -> stripe.Subscription:
        return local_stripe.update_subscription(subscription_id, params)

    def list_subscriptions(self, params: SubscriptionListParams) -> Iterator[stripe.Subscription]:
        return iter(local_stripe.list_subscriptions(params))

    def draft_invoices(self, subscription_id: str) -> list[stripe.Invoice]:
        return local_stripe.draft_invoices(subscription_id)

    def finalize_invoice(self, invoice_id: str, *, key: str) -> stripe.Invoice:
        return local_stripe.finalize_invoice(invoice_id)

    def create_portal_session(self, params: PortalSessionParams) -> str:
        return local_stripe.create_portal_session(params)

    def create_balance_transaction(
        self, customer_id: str, params: CustomerBalanceTransactionCreateParams, *, key: str
    ) -> str:
        return local_stripe.create_balance_transaction(customer_id, dict(params))

    def customer_balance(self, customer_id: str) -> int:
        return local_stripe.customer_balance(customer_id)

    def retrieve_charge(self, charge_id: str) -> stripe.Charge:
        return local_stripe.retrieve_charge(charge_id)

    def retrieve_payment_method(self, payment_method_id: str) -> stripe.PaymentMethod:
        return local_stripe.retrieve_payment_method(payment_method_id)

    def team_price_id(self) -> str:
        return local_stripe.TEAM_PRICE_ID

    def cancel_subscription_prorated(self, subscription_id: str, *, key: str) -> None:
        # Nothing is charged locally, so there is nothing to credit back.
        local_stripe.cancel_subscription(subscription_id)
