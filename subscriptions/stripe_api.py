"""Every call this service makes to Stripe, in one place.

The rest of the code never builds a client or talks HTTP: it calls these
functions, which use the official SDK's `StripeClient` (honouring
STRIPE_API_BASE, so tests and a local Stripe server can stand in for Stripe's
servers) and return the SDK's objects, read by attribute.

Without STRIPE_SECRET_KEY, in DEBUG only, the same functions are answered by
demo_checkout.local_stripe, the demo's labelled test checkout. Without a key
and without DEBUG, billing is unavailable and says so.
"""

import functools
import hashlib
import json

import stripe
from django.conf import settings

PRODUCT_ID = "morning-briefing"  # our own product id at Stripe, so setup is idempotent
PRICE_LOOKUP_KEY = "morning-briefing-annual-usd"
PRICE_CENTS = 4600
PRICE_CURRENCY = "usd"
WEBHOOK_TOLERANCE_SECONDS = 300  # Stripe's own default: older signatures are replays

StripeError = stripe.StripeError
SignatureVerificationError = stripe.SignatureVerificationError
InvalidRequestError = stripe.InvalidRequestError


class BillingUnavailable(Exception):
    """No Stripe key and not a development demo: signups cannot start."""


def uses_local_checkout() -> bool:
    """True in the keyless demo: Stripe is simulated by local_stripe."""
    return not settings.STRIPE_SECRET_KEY and settings.DEBUG


def billing_configured() -> bool:
    """Stripe keys are set, or this is the keyless demo."""
    return bool(settings.STRIPE_SECRET_KEY) or uses_local_checkout()


def _require_configured() -> None:
    if not settings.STRIPE_SECRET_KEY and not settings.DEBUG:
        raise BillingUnavailable("STRIPE_SECRET_KEY is not set.")


@functools.cache
def _client(api_key: str, api_base: str | None) -> stripe.StripeClient:
    base_addresses = {"api": api_base} if api_base else None
    # Retries are safe: every write we make carries an idempotency key.
    return stripe.StripeClient(api_key, base_addresses=base_addresses, max_network_retries=2)


def client() -> stripe.StripeClient:
    _require_configured()
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)


def _local():
    # Imported lazily: the demo backend is never loaded when Stripe is configured.
    from demo_checkout import local_stripe

    return local_stripe


def idempotency_key(*parts: object) -> str:
    """A stable key for one intended write: the same intent, the same key."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return f"briefing-{digest[:40]}"


def webhook_secret() -> str | None:
    if settings.STRIPE_WEBHOOK_SECRET:
        return settings.STRIPE_WEBHOOK_SECRET
    if uses_local_checkout():
        return _local().WEBHOOK_SECRET
    return None


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
    if not isinstance(data, dict) or data.get("object") != "event" or not data.get("id"):
        raise ValueError("The body is not a Stripe event.")
    return data


def event_from_payload(payload: dict) -> stripe.Event:
    """The SDK's Event for a stored payload: data.object is a typed SDK object."""
    return stripe.Event.construct_from(payload, settings.STRIPE_SECRET_KEY)


@functools.cache
def _looked_up_price_id(api_key: str, api_base: str | None) -> str:
    prices = client().v1.prices.list(params={"lookup_keys": [PRICE_LOOKUP_KEY], "active": True})
    if not prices.data:
        raise BillingUnavailable(
            f"No active Stripe price with lookup key {PRICE_LOOKUP_KEY!r}: "
            "run `python manage.py setup_stripe` or set STRIPE_PRICE_ID."
        )
    return prices.data[0].id


def price_id() -> str:
    """The $46/year price: STRIPE_PRICE_ID, else found once by its lookup key."""
    if settings.STRIPE_PRICE_ID:
        return settings.STRIPE_PRICE_ID
    if uses_local_checkout():
        return _local().PRICE_ID
    _require_configured()
    return _looked_up_price_id(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)


def create_customer(*, email: str, name: str, subscriber_id: int) -> str:
    """Create the reader's Stripe customer; the key makes a repeat return the same one."""
    params = {"email": email, "metadata": {"subscriber_id": str(subscriber_id)}}
    if name:
        params["name"] = name
    key = idempotency_key("customer", subscriber_id)
    if uses_local_checkout():
        return _local().create_customer(params)
    return client().v1.customers.create(params=params, options={"idempotency_key": key}).id


def create_checkout_session(params: dict, key: str) -> stripe.checkout.Session:
    if uses_local_checkout():
        return _local().create_checkout_session(params)
    return client().v1.checkout.sessions.create(params=params, options={"idempotency_key": key})


def retrieve_checkout_session(session_id: str) -> stripe.checkout.Session:
    if uses_local_checkout():
        return _local().retrieve("checkout.session", session_id)
    return client().v1.checkout.sessions.retrieve(session_id)


def retrieve_subscription(subscription_id: str) -> stripe.Subscription:
    if uses_local_checkout():
        return _local().retrieve("subscription", subscription_id)
    return client().v1.subscriptions.retrieve(subscription_id)


def cancel_subscription(subscription_id: str) -> None:
    """Cancel now, without proration: used for a duplicate signup still in its trial."""
    if uses_local_checkout():
        _local().cancel_subscription(subscription_id)
        return
    client().v1.subscriptions.cancel(
        subscription_id, options={"idempotency_key": idempotency_key("cancel", subscription_id)}
    )


def latest_subscription(customer_id: str) -> stripe.Subscription | None:
    """The customer's most recent subscription in any status, or None."""
    if uses_local_checkout():
        return _local().latest_subscription(customer_id)
    subscriptions = client().v1.subscriptions.list(
        params={"customer": customer_id, "status": "all", "limit": 1}
    )
    return subscriptions.data[0] if subscriptions.data else None


def create_portal_session(customer_id: str, return_url: str) -> str:
    """A Customer Portal session for the reader; returns its URL."""
    params = {"customer": customer_id, "return_url": return_url}
    if uses_local_checkout():
        return _local().create_portal_session(params)
    return client().v1.billing_portal.sessions.create(params=params).url


# Reading the 2025+ object shapes (API version pinned by the SDK, see
# stripe._api_version): the billing period lives on each subscription item,
# and an invoice names its subscription under parent.subscription_details.


def expandable_id(value: object) -> str | None:
    """The id of a field Stripe may send as an id or as an expanded object."""
    if value is None or isinstance(value, str):
        return value
    return value.id


def subscription_item(subscription: stripe.Subscription) -> stripe.SubscriptionItem | None:
    items = subscription.items.data  # the API field, no longer shadowed by dict.items
    return items[0] if items else None


def subscription_period_end(subscription: stripe.Subscription) -> int | None:
    item = subscription_item(subscription)
    return item.current_period_end if item is not None else None


def subscription_amount(subscription: stripe.Subscription) -> int | None:
    item = subscription_item(subscription)
    return item.price.unit_amount if item is not None else None


def invoice_subscription_id(invoice: stripe.Invoice) -> str | None:
    parent = getattr(invoice, "parent", None)
    if parent is None or parent.type != "subscription_details":
        return None
    return expandable_id(parent.subscription_details.subscription)
