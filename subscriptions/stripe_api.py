"""Every billing call this service makes, in one place.

The rest of the code never builds a client or talks HTTP: it calls these
functions and reads the Stripe SDK's objects they return, by attribute.
Each call goes to the billing backend (subscriptions.billing), a class
named by a dotted path as mail backends are, loaded at start-up and made
once: BILLING_BACKEND if set, else the one the keys call for. With
STRIPE_SECRET_KEY it is StripeBilling, the official SDK's `StripeClient`
(honouring STRIPE_API_BASE, so tests and a local Stripe server can stand in
for Stripe's servers). With DEBUG on and no key it is the keyless demo's
labelled local test checkout, settings.LOCAL_CHECKOUT_BACKEND: an app of its
own, which this module names only through that setting and never imports.
Otherwise it is UnavailableBilling, and billing says it is not configured.
"""

import datetime
import functools
import hashlib
import json
from collections.abc import Iterator

import stripe
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string
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

PRODUCT_ID = "morning-briefing"  # our own product id at Stripe, so setup is idempotent
PRICE_LOOKUP_KEY = "morning-briefing-annual-usd"
# The team plan's per-seat yearly price, with volume tiers (subscriptions.teams).
TEAM_PRICE_LOOKUP_KEY = "morning-briefing-team-annual-usd"
PRICE_CENTS = 4600
PRICE_CURRENCY = "usd"
WEBHOOK_TOLERANCE_SECONDS = 300  # Stripe's own default: older signatures are replays
# The API version the pinned SDK speaks (stripe==16.1.0); the code reads that
# version's object shapes, so events rendered in any other version are refused.
API_VERSION: str = stripe._api_version._ApiVersion.CURRENT

STRIPE_BACKEND = "subscriptions.billing.StripeBilling"
UNAVAILABLE_BACKEND = "subscriptions.billing.UnavailableBilling"

StripeError = stripe.StripeError
SignatureVerificationError = stripe.SignatureVerificationError
InvalidRequestError = stripe.InvalidRequestError


class BillingUnavailable(Exception):
    """No Stripe key and not a development demo: signups cannot start."""


# --- The backend ---------------------------------------------------------------------


class BillingBackend:
    """The calls the service makes to its billing provider: what each backend implements.

    Here, beside the calls, so that the backends (subscriptions.billing, the
    demo's) depend on this module and this one names them only by dotted path.
    """

    configured = True  # signups can start
    local_checkout = False  # the keyless demo's stand-in, not Stripe

    def webhook_secret(self) -> str | None:
        """The secret events at /stripe/webhook/ are signed with."""
        return settings.STRIPE_WEBHOOK_SECRET

    def livemode(self) -> bool | None:
        """Whether the objects this backend reads are Stripe's live mode, or None if unknown."""
        return None

    def price_id(self) -> str:
        raise NotImplementedError

    def create_customer(self, params: CustomerCreateParams, *, key: str) -> str:
        """Create a customer; returns its id."""
        raise NotImplementedError

    def update_customer(self, customer_id: str, params: CustomerUpdateParams, *, key: str) -> None:
        raise NotImplementedError

    def create_checkout_session(
        self, params: CheckoutSessionParams, *, key: str
    ) -> stripe.checkout.Session:
        raise NotImplementedError

    def retrieve_checkout_session(self, session_id: str) -> stripe.checkout.Session:
        raise NotImplementedError

    def retrieve_subscription(self, subscription_id: str) -> stripe.Subscription:
        raise NotImplementedError

    def retrieve_invoice(self, invoice_id: str) -> stripe.Invoice:
        raise NotImplementedError

    def cancel_subscription(self, subscription_id: str, *, key: str) -> None:
        """Cancel now, without proration."""
        raise NotImplementedError

    def latest_subscription(self, customer_id: str) -> stripe.Subscription | None:
        """The customer's most recent subscription in any status, or None."""
        raise NotImplementedError

    def preview_invoice(self, params: InvoiceCreatePreviewParams) -> stripe.Invoice:
        """The invoice Stripe would issue next (POST /v1/invoices/create_preview)."""
        raise NotImplementedError

    def update_subscription(
        self, subscription_id: str, params: SubscriptionUpdateParams, *, key: str
    ) -> stripe.Subscription:
        raise NotImplementedError

    def draft_invoices(self, subscription_id: str) -> list[stripe.Invoice]:
        """The subscription's invoices still in draft."""
        raise NotImplementedError

    def list_subscriptions(self, params: SubscriptionListParams) -> Iterator[stripe.Subscription]:
        """Every subscription the parameters select, page after page."""
        raise NotImplementedError

    def finalize_invoice(self, invoice_id: str, *, key: str) -> stripe.Invoice:
        """Finalize a draft and let Stripe collect it (auto_advance on)."""
        raise NotImplementedError

    def create_portal_session(self, params: PortalSessionParams) -> str:
        """A Customer Portal session; returns its URL."""
        raise NotImplementedError

    def team_price_id(self) -> str:
        """The team plan's per-seat price (volume tiers)."""
        raise NotImplementedError

    def cancel_subscription_prorated(self, subscription_id: str, *, key: str) -> None:
        """Cancel now, crediting the unused time (prorated) to the customer's balance."""
        raise NotImplementedError

    def create_balance_transaction(
        self, customer_id: str, params: CustomerBalanceTransactionCreateParams, *, key: str
    ) -> str:
        """A credit (negative) or debit on the customer's balance; returns its id."""
        raise NotImplementedError

    def customer_balance(self, customer_id: str) -> int:
        """The customer's balance in cents: negative is credit the next invoices use."""
        raise NotImplementedError

    def retrieve_charge(self, charge_id: str) -> stripe.Charge:
        raise NotImplementedError

    def retrieve_payment_method(self, payment_method_id: str) -> stripe.PaymentMethod:
        raise NotImplementedError


def backend_path() -> str:
    """The dotted path of the billing backend: BILLING_BACKEND, else the keys' choice."""
    if settings.BILLING_BACKEND:
        return settings.BILLING_BACKEND
    if settings.STRIPE_SECRET_KEY:
        return STRIPE_BACKEND
    if settings.DEBUG:
        return settings.LOCAL_CHECKOUT_BACKEND
    return UNAVAILABLE_BACKEND


def backend_class() -> type[BillingBackend]:
    """The billing backend's class; SubscriptionsConfig.ready loads it at start-up."""
    return import_string(backend_path())


@functools.cache
def backend() -> BillingBackend:
    """The billing backend (a BillingBackend, from subscriptions.billing or the demo), made once."""
    return backend_class()()


@receiver(setting_changed)
def _forget_backend(*, setting: str, **kwargs: object) -> None:
    # Tests switch between Stripe, the demo and no billing by changing these.
    if setting in {"BILLING_BACKEND", "LOCAL_CHECKOUT_BACKEND", "STRIPE_SECRET_KEY", "DEBUG"}:
        backend.cache_clear()


def uses_local_checkout() -> bool:
    """True in the keyless demo: Stripe is played by the local test checkout."""
    return backend().local_checkout


def billing_configured() -> bool:
    """Stripe keys are set, or this is the keyless demo."""
    return backend().configured


# --- Stripe itself -------------------------------------------------------------------


@functools.cache
def _client(api_key: str, api_base: str | None) -> stripe.StripeClient:
    # Retries are safe: every write we make carries an idempotency key.
    if api_base:
        return stripe.StripeClient(api_key, base_addresses={"api": api_base}, max_network_retries=2)
    return stripe.StripeClient(api_key, max_network_retries=2)


def client() -> stripe.StripeClient:
    """The SDK's client for STRIPE_SECRET_KEY (StripeBilling's, and setup_stripe's)."""
    if not settings.STRIPE_SECRET_KEY:
        raise BillingUnavailable("STRIPE_SECRET_KEY is not set.")
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)


def idempotency_key(*parts: object) -> str:
    """A stable key for one intended write: the same intent, the same key."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return f"briefing-{digest[:40]}"


# --- Webhooks ------------------------------------------------------------------------


def webhook_secret() -> str | None:
    return backend().webhook_secret()


def livemode() -> bool | None:
    """Whether the configured key reads Stripe's live mode (None: unknown, the demo, no key)."""
    return backend().livemode()


def signature_header(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send with `payload` (default: signed now).

    For whoever plays Stripe's side: the demo's local test checkout and the tests.
    """
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)


def verify_webhook(payload: bytes, signature: str | None) -> dict:
    """Check the Stripe-Signature header against the raw body; return the parsed event.

    Raises SignatureVerificationError for a missing, forged or stale
    signature and ValueError for a body that is not a JSON event.
    """
    secret = webhook_secret()
    stripe.WebhookSignature.verify_header(
        payload, signature, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
    )
    data = json.loads(payload)
    if (
        not isinstance(data, dict)
        or data.get("object") != "event"
        or not isinstance(data.get("id"), str)
        or not data["id"]
    ):
        raise ValueError("The body is not a Stripe event.")
    return data


def event_from_payload(payload: dict) -> stripe.Event:
    """The SDK's Event for a stored payload: data.object is a typed SDK object."""
    return stripe.Event.construct_from(payload, settings.STRIPE_SECRET_KEY)


# --- Calls, each answered by the backend ---------------------------------------------


def price_id() -> str:
    """The $46/year price."""
    return backend().price_id()


def create_customer(*, email: str, name: str, subscriber_id: int) -> str:
    """Create the reader's Stripe customer; the key makes a repeat return the same one."""
    params: CustomerCreateParams = {
        "email": email,
        "metadata": {"subscriber_id": str(subscriber_id)},
    }
    if name:
        params["name"] = name
    return backend().create_customer(params, key=idempotency_key("customer", subscriber_id))


def create_team_customer(*, email: str, name: str, team_id: int) -> str:
    """A team's own Stripe customer (its invoices go to the organisation, not a reader)."""
    params: CustomerCreateParams = {
        "email": email,
        "name": name,
        "metadata": {"team_id": str(team_id)},
    }
    return backend().create_customer(params, key=idempotency_key("team-customer", team_id))


def update_customer_email(customer_id: str, email: str) -> None:
    """Set the Stripe customer's email (receipts and the Portal go there)."""
    backend().update_customer(
        customer_id, {"email": email}, key=idempotency_key("customer-email", customer_id, email)
    )


def create_checkout_session(params: CheckoutSessionParams, key: str) -> stripe.checkout.Session:
    return backend().create_checkout_session(params, key=key)


def retrieve_checkout_session(session_id: str) -> stripe.checkout.Session:
    return backend().retrieve_checkout_session(session_id)


def retrieve_subscription(subscription_id: str) -> stripe.Subscription:
    return backend().retrieve_subscription(subscription_id)


def retrieve_invoice(invoice_id: str) -> stripe.Invoice:
    """Stripe's current copy of an invoice: amounts and links come from here, not events."""
    return backend().retrieve_invoice(invoice_id)


def cancel_subscription(subscription_id: str) -> None:
    """Cancel now, without proration: used for a duplicate signup still in its trial."""
    backend().cancel_subscription(subscription_id, key=idempotency_key("cancel", subscription_id))


def latest_subscription(customer_id: str) -> stripe.Subscription | None:
    """The customer's most recent subscription in any status, or None."""
    return backend().latest_subscription(customer_id)


IMPORTED_STATUSES = ("trialing", "active", "past_due")


def live_subscriptions(price: str | None) -> Iterator[stripe.Subscription]:
    """Every trialing, active or past_due subscription (on `price`, or any), customers expanded."""
    params: SubscriptionListParams = {"limit": 100, "expand": ["data.customer"]}
    if price is not None:
        params["price"] = price
    for subscription in backend().list_subscriptions(params):
        if subscription.status in IMPORTED_STATUSES:
            yield subscription


def preview_renewal(subscription_id: str) -> stripe.Invoice:
    """The invoice Stripe would issue at the subscription's next renewal, not yet created.

    What the next charge really is: the price with any promotion code's
    discount and any tax applied, as Stripe computes it.
    """
    params: InvoiceCreatePreviewParams = {"subscription": subscription_id}
    return backend().preview_invoice(params)


def set_cancel_at_period_end(subscription_id: str, cancel: bool) -> stripe.Subscription:
    """Cancel at the end of the period (True), or keep the subscription after all (False)."""
    params: SubscriptionUpdateParams = {"cancel_at_period_end": cancel}
    key = idempotency_key("cancel-at-period-end", subscription_id, cancel, _today())
    return backend().update_subscription(subscription_id, params, key=key)


# Invoices made while billing is paused stay drafts (not charged) until the
# pause ends; then they are finalized and Stripe collects them.
PAUSE_BEHAVIOR = "keep_as_draft"


def pause_collection(
    subscription_id: str, resumes_at: datetime.datetime | None
) -> stripe.Subscription:
    """Pause collecting payment until `resumes_at` (Stripe resumes by itself); None: resume now."""
    params: SubscriptionUpdateParams = {
        "pause_collection": ""
        if resumes_at is None
        else {"behavior": PAUSE_BEHAVIOR, "resumes_at": int(resumes_at.timestamp())}
    }
    key = idempotency_key("pause-collection", subscription_id, params, _today())
    return backend().update_subscription(subscription_id, params, key=key)


def collect_paused_invoices(subscription_id: str) -> list[str]:
    """Finalize the drafts a pause left behind, so Stripe charges them; returns their ids.

    Only drafts of this subscription that Stripe would not advance by itself
    (auto_advance off: the pause's); finalizing one twice is refused by
    Stripe, and the key makes a retry return the first answer.
    """
    finalized = []
    for invoice in backend().draft_invoices(subscription_id):
        if invoice.auto_advance:
            continue
        backend().finalize_invoice(invoice.id, key=idempotency_key("finalize", invoice.id))
        finalized.append(invoice.id)
    return finalized


def _today() -> str:
    # Part of idempotency keys of writes a reader may repeat on another day
    # (cancel, keep, cancel again): Stripe keeps keys for 24 hours.
    return datetime.datetime.now(tz=datetime.UTC).date().isoformat()


def create_portal_session(customer_id: str, return_url: str) -> str:
    """A Customer Portal session for the reader; returns its URL."""
    return backend().create_portal_session({"customer": customer_id, "return_url": return_url})


# --- Teams: a per-seat price, quantities, a seat holder's own plan ------------------


def team_price_id() -> str:
    return backend().team_price_id()


def set_subscription_quantity(
    subscription_id: str, quantity: int, *, prorate: bool
) -> stripe.Subscription:
    """Change the seats of a team's subscription (its one item's quantity).

    With `prorate` Stripe invoices the added seats for the rest of the year
    at once; without, the new quantity is billed from the next renewal.
    """
    item = subscription_item(backend().retrieve_subscription(subscription_id))
    if item is None:
        raise ValueError(f"Subscription {subscription_id} has no item to change.")
    params: SubscriptionUpdateParams = {
        "items": [{"id": item.id, "quantity": quantity}],
        "proration_behavior": "always_invoice" if prorate else "none",
    }
    key = idempotency_key("quantity", subscription_id, quantity, prorate, _today())
    return backend().update_subscription(subscription_id, params, key=key)


def cancel_subscription_prorated(subscription_id: str) -> None:
    """Cancel a reader's own plan now; the unused part is credited to their balance."""
    backend().cancel_subscription_prorated(
        subscription_id, key=idempotency_key("cancel-prorated", subscription_id)
    )


def subscription_quantity(subscription: stripe.Subscription) -> int:
    item = subscription_item(subscription)
    return int(item.quantity or 0) if item is not None else 0


# --- Referral rewards: credit on the customer balance --------------------------------


def credit_balance(customer_id: str, amount: int, description: str, *, key_parts: tuple) -> str:
    """Credit `amount` cents to the customer's balance (Stripe applies it to the next
    invoices, before charging the card); returns the balance transaction's id.

    `key_parts` name the one intended write (a reward's id), so a retry
    returns the first credit instead of making a second.
    """
    params: CustomerBalanceTransactionCreateParams = {
        "amount": -amount,
        "currency": PRICE_CURRENCY,
        "description": description,
    }
    return backend().create_balance_transaction(
        customer_id, params, key=idempotency_key("balance-credit", *key_parts)
    )


def debit_balance(customer_id: str, amount: int, description: str, *, key_parts: tuple) -> str:
    """Take `amount` cents of credit back from the customer's balance; returns the id."""
    params: CustomerBalanceTransactionCreateParams = {
        "amount": amount,
        "currency": PRICE_CURRENCY,
        "description": description,
    }
    return backend().create_balance_transaction(
        customer_id, params, key=idempotency_key("balance-debit", *key_parts)
    )


def unused_credit(customer_id: str) -> int:
    """The credit still on the customer's balance, in cents (0 when it owes or is even)."""
    return max(0, -backend().customer_balance(customer_id))


def retrieve_charge(charge_id: str) -> stripe.Charge:
    return backend().retrieve_charge(charge_id)


def card_fingerprint(payment_method: object) -> str | None:
    """The card fingerprint of a payment method (an id or an expanded object), or None.

    Stripe gives one card the same fingerprint on every customer of an
    account: the way to tell one person's card behind two addresses.
    """
    payment_method_id = expandable_id(payment_method)
    if payment_method_id is None:
        return None
    method = backend().retrieve_payment_method(payment_method_id)
    card = getattr(method, "card", None)
    fingerprint = getattr(card, "fingerprint", None) if card is not None else None
    return fingerprint if isinstance(fingerprint, str) and fingerprint else None


# Reading the 2025+ object shapes (API version pinned by the SDK, see
# stripe._api_version): the billing period lives on each subscription item,
# and an invoice names its subscription under parent.subscription_details.


def expandable_id(value: object) -> str | None:
    """The id of a field Stripe may send as an id or as an expanded object."""
    if value is None or isinstance(value, str):
        return value
    object_id = getattr(value, "id", None)
    if not isinstance(object_id, str):
        raise TypeError(f"Expected a Stripe id or object, got {type(value).__name__}")
    return object_id


def subscription_item(subscription: stripe.Subscription) -> stripe.SubscriptionItem | None:
    items = subscription.items.data  # the API field, no longer shadowed by dict.items
    return items[0] if items else None


def subscription_period_end(subscription: stripe.Subscription) -> int | None:
    item = subscription_item(subscription)
    return item.current_period_end if item is not None else None


def subscription_amount(subscription: stripe.Subscription) -> int | None:
    item = subscription_item(subscription)
    return item.price.unit_amount if item is not None else None


def pause_resumes_at(subscription: stripe.Subscription) -> datetime.datetime | None:
    """When paused collection resumes (pause_collection.resumes_at); None if not paused.

    A pause without an end (set at Stripe by staff) reads as PAUSED_INDEFINITELY.
    """
    pause = getattr(subscription, "pause_collection", None)
    if pause is None:
        return None
    return from_timestamp(getattr(pause, "resumes_at", None)) or PAUSED_INDEFINITELY


PAUSED_INDEFINITELY = datetime.datetime(9999, 12, 31, tzinfo=datetime.UTC)


def invoice_subscription_id(invoice: stripe.Invoice) -> str | None:
    parent = getattr(invoice, "parent", None)
    if parent is None or parent.type != "subscription_details":
        return None
    return expandable_id(parent.subscription_details.subscription)


def from_timestamp(value: object) -> datetime.datetime | None:
    """A Stripe timestamp (Unix seconds) as an aware UTC datetime; None if absent."""
    if not isinstance(value, int):
        return None
    return datetime.datetime.fromtimestamp(value, tz=datetime.UTC)
