"""The demo's local test checkout: a stand-in for Stripe when no key is set.

Only used with DEBUG on and no STRIPE_SECRET_KEY, through the billing
backend demo_checkout.billing.LocalBilling. It keeps customers, Checkout
Sessions and subscriptions as JSON in Stripe's own shapes
(LocalStripeObject rows) and returns them as the SDK's objects. What Stripe
would do on its side (complete a checkout, end a trial, fail a card) is done
by the functions at the bottom, which then send the same events Stripe
would, signed with WEBHOOK_SECRET, through the same webhook code
(subscriptions.webhooks.receive). No card is ever charged.
"""

import json
import secrets

import stripe
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from stripe.params import (
    CustomerCreateParams,
    CustomerUpdateParams,
    InvoiceCreatePreviewParams,
    SubscriptionListParams,
    SubscriptionUpdateParams,
)
from stripe.params.billing_portal import SessionCreateParams as PortalSessionParams
from stripe.params.checkout import SessionCreateParams as CheckoutSessionParams

from demo_checkout.models import LocalStripeObject
from subscriptions import stripe_api, teams, webhooks
from subscriptions.stripe_api import PRICE_CENTS, PRICE_CURRENCY

WEBHOOK_SECRET = "whsec_local_test_checkout"  # noqa: S105 - the demo's own, never Stripe's
PRICE_ID = "price_local_annual_usd"
TEAM_PRICE_ID = "price_local_team_annual_usd"


def _line(params: dict) -> tuple[str, int]:
    """The checkout's one line: its price and quantity."""
    line = params.get("line_items", [{}])[0]
    return line.get("price", PRICE_ID), int(line.get("quantity", 1))


def _unit_amount(price_id: str, quantity: int) -> int:
    """The team price is tiered (every seat at the tier the quantity reaches)."""
    return teams.seat_price(quantity) if price_id == TEAM_PRICE_ID else PRICE_CENTS


def _id(prefix: str) -> str:
    return f"{prefix}_local_{secrets.token_hex(10)}"


def _now() -> int:
    return int(timezone.now().timestamp())


def _save(data: dict) -> dict:
    LocalStripeObject.objects.update_or_create(
        id=data["id"], defaults={"object": data["object"], "data": data}
    )
    return data


def _load(object_type: str, object_id: str) -> dict:
    row = LocalStripeObject.objects.filter(id=object_id, object=object_type).first()
    if row is None:
        raise stripe.InvalidRequestError(
            f"No such {object_type}: '{object_id}' (local test checkout)",
            "id",
            code="resource_missing",
        )
    return row.data


def retrieve_checkout_session(session_id: str) -> stripe.checkout.Session:
    return stripe.checkout.Session.construct_from(_load("checkout.session", session_id), None)


def retrieve_subscription(subscription_id: str) -> stripe.Subscription:
    return stripe.Subscription.construct_from(_load("subscription", subscription_id), None)


def retrieve_invoice(invoice_id: str) -> stripe.Invoice:
    return stripe.Invoice.construct_from(_load("invoice", invoice_id), None)


def create_customer(params: CustomerCreateParams) -> str:
    customer = {"id": _id("cus"), "object": "customer", "created": _now(), **params}
    return _save(customer)["id"]


def update_customer(customer_id: str, params: CustomerUpdateParams) -> None:
    customer = _load("customer", customer_id)
    customer.update(params)
    _save(customer)


def retrieve_customer(customer_id: str) -> dict:
    """The stored customer, as Stripe would show it (for tests and the test portal)."""
    return _load("customer", customer_id)


def create_checkout_session(params: CheckoutSessionParams) -> stripe.checkout.Session:
    session_id = _id("cs_test")
    price_id, quantity = _line(dict(params))
    data = {
        "id": session_id,
        "object": "checkout.session",
        "mode": params["mode"],
        "status": "open",
        "payment_status": "unpaid",
        "customer": params.get("customer"),
        "customer_email": params.get("customer_email"),
        "amount_total": _unit_amount(price_id, quantity) * quantity,
        "line_items": [{"price": price_id, "quantity": quantity}],
        "client_reference_id": params.get("client_reference_id"),
        "metadata": params.get("metadata", {}),
        "subscription": None,
        "success_url": params["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id),
        "cancel_url": params["cancel_url"],
        "url": settings.SITE_URL + reverse("demo_checkout:checkout", args=[session_id]),
        "payment_method_collection": params.get("payment_method_collection", "always"),
        # Kept so completing the session can start the subscription as asked.
        "subscription_data": params.get("subscription_data", {}),
        "created": _now(),
    }
    return stripe.checkout.Session.construct_from(_save(data), None)


def latest_subscription(customer_id: str) -> stripe.Subscription | None:
    rows = LocalStripeObject.objects.filter(object="subscription", data__customer=customer_id)
    row = rows.order_by("-created_at").first()
    return stripe.Subscription.construct_from(row.data, None) if row else None


def cancel_subscription(subscription_id: str) -> None:
    subscription = _load("subscription", subscription_id)
    now = _now()
    subscription.update(status="canceled", canceled_at=now, ended_at=now)
    _save(subscription)
    send_event("customer.subscription.deleted", subscription)


def preview_invoice(params: InvoiceCreatePreviewParams) -> stripe.Invoice:
    """The renewal invoice Stripe would issue next: the price, no discount, no tax."""
    subscription = _load("subscription", params["subscription"])
    preview = _invoice(subscription, "draft")
    # An upcoming invoice has no id until Stripe creates it.
    preview.update(id=None, amount_paid=0, next_payment_attempt=None, hosted_invoice_url=None)
    return stripe.Invoice.construct_from(preview, None)


@transaction.atomic
def update_subscription(
    subscription_id: str, params: SubscriptionUpdateParams
) -> stripe.Subscription:
    """What our pages change: cancel at period end (or not), a pause, a team's seats."""
    subscription = _load("subscription", subscription_id)
    if "items" in params:
        item = subscription["items"]["data"][0]
        item["quantity"] = int(params["items"][0]["quantity"])
    if "cancel_at_period_end" in params:
        subscription["cancel_at_period_end"] = bool(params["cancel_at_period_end"])
    if "pause_collection" in params:
        pause = params["pause_collection"]
        subscription["pause_collection"] = (
            None
            if pause == ""
            else {
                "behavior": pause["behavior"],
                "resumes_at": pause.get("resumes_at"),
            }
        )
    _save(subscription)
    send_event("customer.subscription.updated", subscription)
    return stripe.Subscription.construct_from(subscription, None)


def list_subscriptions(params: SubscriptionListParams) -> list[stripe.Subscription]:
    """The local subscriptions, not canceled (as Stripe lists by default), customers expanded."""
    found = []
    for row in LocalStripeObject.objects.filter(object="subscription").order_by("-created_at"):
        data = dict(row.data)
        if data["status"] == "canceled":
            continue
        price = params.get("price")
        if price and data["items"]["data"][0]["price"]["id"] != price:
            continue
        data["customer"] = _load("customer", data["customer"])
        found.append(stripe.Subscription.construct_from(data, None))
    return found


def draft_invoices(subscription_id: str) -> list[stripe.Invoice]:
    rows = LocalStripeObject.objects.filter(object="invoice", data__status="draft")
    return [
        stripe.Invoice.construct_from(row.data, None)
        for row in rows
        if row.data["parent"]["subscription_details"]["subscription"] == subscription_id
    ]


def finalize_invoice(invoice_id: str) -> stripe.Invoice:
    """The test card "pays" at once: nothing is charged here."""
    invoice = _load("invoice", invoice_id)
    invoice.update(status="paid", auto_advance=True, amount_paid=invoice["amount_due"])
    return stripe.Invoice.construct_from(_save(invoice), None)


def create_balance_transaction(customer_id: str, params: dict) -> str:
    """A credit (negative) or debit on the customer's balance, as Stripe keeps it."""
    customer = _load("customer", customer_id)
    transaction_id = _id("cbtxn")
    _save(
        {
            "id": transaction_id,
            "object": "customer_balance_transaction",
            "customer": customer_id,
            "amount": params["amount"],
            "currency": params.get("currency", PRICE_CURRENCY),
            "description": params.get("description"),
            "created": _now(),
        }
    )
    customer["balance"] = customer.get("balance", 0) + params["amount"]
    _save(customer)
    return transaction_id


def customer_balance(customer_id: str) -> int:
    return _load("customer", customer_id).get("balance", 0)


def retrieve_charge(charge_id: str) -> stripe.Charge:
    return stripe.Charge.construct_from(_load("charge", charge_id), None)


def retrieve_payment_method(payment_method_id: str) -> stripe.PaymentMethod:
    return stripe.PaymentMethod.construct_from(_load("payment_method", payment_method_id), None)


def _test_card(customer_id: str) -> str:
    """The test card a demo reader "pays" with: a card of their own (its own fingerprint)."""
    payment_method_id = _id("pm")
    _save(
        {
            "id": payment_method_id,
            "object": "payment_method",
            "type": "card",
            "customer": customer_id,
            "card": {
                "brand": "visa",
                "last4": "4242",
                "fingerprint": f"fp_local_{customer_id[-12:]}",
            },
            "created": _now(),
        }
    )
    return payment_method_id


def create_portal_session(params: PortalSessionParams) -> str:
    return settings.SITE_URL + reverse("demo_checkout:portal")


# --- What Stripe does on its side, then tells us by webhook -----------------------


def _subscription(session: dict, *, with_card: bool) -> dict:
    now = _now()
    trial_days = session["subscription_data"].get("trial_period_days") or 0
    trial_end = now + trial_days * 86400 if trial_days else None
    period_end = trial_end or now + 365 * 86400
    subscription_id = _id("sub")
    price_id, quantity = _line(session)
    return {
        "id": subscription_id,
        "object": "subscription",
        "status": "trialing" if trial_end else "active",
        "customer": session["customer"],
        "created": now,
        "start_date": now,
        "trial_start": now if trial_end else None,
        "trial_end": trial_end,
        "cancel_at_period_end": False,
        "cancel_at": None,
        "canceled_at": None,
        "ended_at": None,
        "pause_collection": None,
        "default_payment_method": _test_card(session["customer"]) if with_card else None,
        "metadata": session["subscription_data"].get("metadata", {}),
        "trial_settings": session["subscription_data"].get("trial_settings"),
        "items": {
            "object": "list",
            "data": [
                {
                    "id": _id("si"),
                    "object": "subscription_item",
                    "subscription": subscription_id,
                    "current_period_start": now,
                    "current_period_end": period_end,
                    "quantity": quantity,
                    "price": {
                        "id": price_id,
                        "object": "price",
                        "currency": PRICE_CURRENCY,
                        "unit_amount": None if price_id == TEAM_PRICE_ID else PRICE_CENTS,
                        "recurring": {"interval": "year", "interval_count": 1},
                    },
                }
            ],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
    }


def _invoice(subscription: dict, status: str) -> dict:
    return {
        "id": _id("in"),
        "object": "invoice",
        "customer": subscription["customer"],
        "status": status,
        "amount_due": PRICE_CENTS,
        "amount_paid": PRICE_CENTS if status == "paid" else 0,
        "currency": PRICE_CURRENCY,
        "attempt_count": 1,
        "next_payment_attempt": None if status == "paid" else _now() + 3 * 86400,
        "status_transitions": {"paid_at": _now() if status == "paid" else None},
        "hosted_invoice_url": settings.SITE_URL + reverse("demo_checkout:portal"),
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "subscription": subscription["id"],
                "metadata": subscription["metadata"],
            },
        },
    }


def send_event(event_type: str, obj: dict) -> None:
    """Sign an event as Stripe does and hand it to the webhook code, after commit."""
    payload = json.dumps(
        {
            "id": _id("evt"),
            "object": "event",
            "api_version": stripe.api_version,
            "created": _now(),
            "livemode": False,
            "pending_webhooks": 1,
            "type": event_type,
            "data": {"object": obj},
        }
    )
    signature = stripe_api.signature_header(payload, WEBHOOK_SECRET)
    transaction.on_commit(lambda: webhooks.receive(payload.encode(), signature))


@transaction.atomic
def complete_checkout(session_id: str, *, with_card: bool = True) -> str:
    """The reader "pays" on the test checkout page; returns the success URL."""
    session = _load("checkout.session", session_id)
    if session["status"] != "open":
        return session["success_url"]
    if session["mode"] == "payment":
        # A gift, paid once with the test card: no subscription.
        session.update(status="complete", payment_status="paid")
        _save(session)
        send_event("checkout.session.completed", session)
        return session["success_url"]
    subscription = _save(_subscription(session, with_card=with_card))
    session.update(status="complete", payment_status="paid", subscription=subscription["id"])
    _save(session)
    send_event("customer.subscription.created", subscription)
    send_event("checkout.session.completed", session)
    return session["success_url"]


# Actions of the local Customer Portal page, and what a few days of Stripe
# would bring, so the demo can walk the whole lifecycle in a minute.
PORTAL_ACTIONS = {
    "cancel": "Cancel at the end of the period",
    "resume": "Don't cancel after all",
    "trial_will_end": "Fast-forward: the trial ends in 3 days",
    "end_trial": "Fast-forward: the trial ends and the test card is charged $46",
    "renewal_upcoming": "Fast-forward: the yearly renewal is RENEWAL_NOTICE_DAYS days away",
    "pause_ends": "Fast-forward: the pause of billing ends",
    "fail_payment": "Fast-forward: the renewal payment fails",
    "recover_payment": "Fast-forward: the retried payment succeeds",
    "cancel_now": "Fast-forward: the membership ends now",
    "refund": "Fast-forward: the last payment is refunded",
}


@transaction.atomic
def portal_action(customer_id: str, action: str) -> None:
    row = (
        LocalStripeObject.objects.filter(object="subscription", data__customer=customer_id)
        .order_by("-created_at")
        .first()
    )
    if row is None or action not in PORTAL_ACTIONS:
        raise ValueError("Nothing to do: no subscription or an unknown action.")
    subscription = row.data
    now = _now()
    item = subscription["items"]["data"][0]
    if action == "cancel":
        subscription["cancel_at_period_end"] = True
        send = ["customer.subscription.updated"]
    elif action == "resume":
        subscription["cancel_at_period_end"] = False
        send = ["customer.subscription.updated"]
    elif action == "trial_will_end":
        if subscription["status"] != "trialing":
            raise ValueError("The subscription is not in its trial.")
        subscription["trial_end"] = now + 3 * 86400
        item["current_period_end"] = subscription["trial_end"]
        send = ["customer.subscription.updated", "customer.subscription.trial_will_end"]
    elif action in ("end_trial", "recover_payment"):
        subscription["status"] = "active"
        if action == "end_trial":
            subscription["trial_end"] = now
            item["current_period_start"] = now
            item["current_period_end"] = now + 365 * 86400
        send = ["customer.subscription.updated", "invoice.paid"]
    elif action == "renewal_upcoming":
        if subscription["status"] != "active":
            raise ValueError("The subscription is not active (end the trial first).")
        item["current_period_end"] = now + settings.RENEWAL_NOTICE_DAYS * 86400
        send = ["customer.subscription.updated", "invoice.upcoming"]
    elif action == "pause_ends":
        if not subscription.get("pause_collection"):
            raise ValueError("Billing is not paused.")
        subscription["pause_collection"] = None
        send = ["customer.subscription.updated"]
    elif action == "refund":
        _refund_last_payment(subscription)
        return
    elif action == "fail_payment":
        subscription["status"] = "past_due"
        send = ["customer.subscription.updated", "invoice.payment_failed"]
    else:  # cancel_now
        subscription.update(status="canceled", canceled_at=now, ended_at=now)
        send = ["customer.subscription.deleted"]
    _save(subscription)
    for event_type in send:
        if event_type == "invoice.upcoming":
            # Not kept: an upcoming invoice has no id, and is previewed when asked for.
            send_event(event_type, {**_invoice(subscription, "draft"), "id": None})
        elif event_type.startswith("invoice."):
            status = "paid" if event_type == "invoice.paid" else "open"
            # Kept, as Stripe keeps it: the webhook handler fetches it back.
            send_event(event_type, _save(_invoice(subscription, status)))
        else:
            send_event(event_type, subscription)


def _refund_last_payment(subscription: dict) -> None:
    """Refund the subscription's latest paid invoice, as Stripe would: a refunded charge."""
    paid = [
        row.data
        for row in LocalStripeObject.objects.filter(object="invoice", data__status="paid")
        if row.data["parent"]["subscription_details"]["subscription"] == subscription["id"]
    ]
    if not paid:
        raise ValueError("Nothing was paid yet (end the trial first).")
    invoice = max(paid, key=lambda data: data["status_transitions"]["paid_at"] or 0)
    charge = _save(
        {
            "id": _id("ch"),
            "object": "charge",
            "customer": subscription["customer"],
            "amount": invoice["amount_paid"],
            "amount_refunded": invoice["amount_paid"],
            "refunded": True,
            "disputed": False,
            "currency": PRICE_CURRENCY,
            "created": invoice["status_transitions"]["paid_at"] or _now(),
        }
    )
    send_event("charge.refunded", charge)
