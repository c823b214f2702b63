"""Stripe webhooks: verify, store once, dispatch by type to small handlers.

Every event is stored (StripeEvent, unique by Stripe's event id) before it
is handled, with its status and, on failure, the error. Handlers never
trust the event's copy of a subscription or an invoice: they re-fetch it
from Stripe (subscriptions.actions.stripe_sync), so order and repetition of
events do not matter, and they read only ids from the event.

Events in another API version than the pinned SDK's are refused unstored
(their shapes are not the ones the code reads), and so are events of
another Stripe account or mode than the key's (their objects cannot be
fetched with it). An event about a customer
who is no reader of ours (a reader who deleted their account, say) is stored
stripped to its ids, so deleting a reader's data is not undone by Stripe's
later events about them.
"""

import datetime
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import stripe
from django.db import IntegrityError, transaction
from django.utils import timezone

from subscriptions import stripe_api, teams
from subscriptions.actions import checkout, gifts, lifecycle, referrals, stripe_sync
from subscriptions.actions import teams as team_actions
from subscriptions.models import Membership, ReaderEmail, StripeEvent
from subscriptions.referral_models import Reason

logger = logging.getLogger(__name__)

Handler = Callable[[stripe.Event], str]


def checkout_session_completed(event: stripe.Event) -> str:
    session = event.data.object
    if session.mode == "payment":
        # A gift: its session is fetched from Stripe and only a paid one counts.
        return "gift paid" if gifts.do_fulfil_gift(session.id) else "not a paid gift of ours"
    if session.mode != "subscription":
        return "not a subscription checkout"
    if teams.is_team_customer(stripe_api.expandable_id(session.customer)):
        team = team_actions.do_fulfil_team_checkout(session.id)
        return f"team {team.pk} synced" if team else "not a complete team checkout"
    subscriber = checkout.do_fulfil_checkout(session.id)
    return "fulfilled" if subscriber else "no reader for this session"


def subscription_changed(event: stripe.Event) -> str:
    subscription = event.data.object
    customer_id = stripe_api.expandable_id(subscription.customer)
    if teams.is_team_customer(customer_id):
        team = team_actions.do_sync_team(subscription.id, customer_id=customer_id)
        return f"team {team.pk} synced" if team else "no team for this subscription"
    membership = stripe_sync.do_sync_subscription(
        subscription.id, customer_id=stripe_api.expandable_id(subscription.customer)
    )
    return f"membership {membership.pk} synced" if membership else "no reader for this subscription"


def trial_will_end(event: stripe.Event) -> str:
    stripe_sync.do_trial_ending(event.data.object.id)
    return "trial reminder checked"


def _invoice_id(event: stripe.Event) -> str:
    """The invoice's id: the only thing read from the event (the rest is fetched)."""
    invoice = event.data.object
    if not isinstance(invoice, stripe.Invoice):
        raise TypeError(f"{event.type} carries a {type(invoice).__name__}, not an invoice")
    return invoice.id


def _team_invoice(event: stripe.Event) -> str | None:
    """A team's invoice: its subscription synced onto the team; None if not a team's."""
    invoice = event.data.object
    if not teams.is_team_customer(stripe_api.expandable_id(getattr(invoice, "customer", None))):
        return None
    fetched = stripe_api.retrieve_invoice(_invoice_id(event))
    subscription_id = stripe_api.invoice_subscription_id(fetched)
    if subscription_id is None:
        return "a team's invoice without a subscription"
    team = team_actions.do_sync_team(
        subscription_id, customer_id=stripe_api.expandable_id(fetched.customer)
    )
    return f"team {team.pk} synced" if team else "no team for this invoice"


def invoice_paid(event: stripe.Event) -> str:
    team = _team_invoice(event)
    if team is not None:
        return team
    invoice_id = _invoice_id(event)
    stripe_sync.do_invoice_event(invoice_id, None)
    # A referred reader's first payment decides their referrer's reward.
    return f"subscription synced; referral: {referrals.do_referred_payment(invoice_id)}"


def charge_refunded(event: stripe.Event) -> str:
    """A refund: if it is a referred reader's first payment, an unused reward is taken back."""
    charge = event.data.object
    if not isinstance(charge, stripe.Charge):
        raise TypeError(f"{event.type} carries a {type(charge).__name__}, not a charge")
    return referrals.do_referred_payment_reversed(charge.id, Reason.REFUNDED)


def charge_dispute_created(event: stripe.Event) -> str:
    """A dispute: only the charge's id is read from it; the charge is fetched."""
    dispute = event.data.object
    if not isinstance(dispute, stripe.Dispute):
        raise TypeError(f"{event.type} carries a {type(dispute).__name__}, not a dispute")
    charge_id = stripe_api.expandable_id(dispute.charge)
    if charge_id is None:
        return "no charge"
    return referrals.do_referred_payment_reversed(charge_id, Reason.DISPUTED)


def invoice_payment_failed(event: stripe.Event) -> str:
    team = _team_invoice(event)
    if team is not None:
        return team
    stripe_sync.do_invoice_event(_invoice_id(event), ReaderEmail.Kind.PAYMENT_FAILED)
    return "subscription synced, reader told"


def invoice_payment_action_required(event: stripe.Event) -> str:
    team = _team_invoice(event)
    if team is not None:
        return team
    stripe_sync.do_invoice_event(_invoice_id(event), ReaderEmail.Kind.PAYMENT_ACTION_REQUIRED)
    return "subscription synced, reader told"


def invoice_upcoming(event: stripe.Event) -> str:
    """Stripe's advance notice of a renewal: the upcoming invoice has no id yet.

    Only its subscription's id is read; the subscription is fetched and the
    amount previewed from Stripe (lifecycle.do_renewal_notice), which sends
    the notice once per renewal, now or at the hourly check if the event
    came earlier than RENEWAL_NOTICE_DAYS.
    """
    invoice = event.data.object
    if not isinstance(invoice, stripe.Invoice):
        raise TypeError(f"{event.type} carries a {type(invoice).__name__}, not an invoice")
    subscription_id = stripe_api.invoice_subscription_id(invoice)
    if subscription_id is None:
        return "not a subscription invoice"
    return lifecycle.do_renewal_notice(subscription_id)


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": checkout_session_completed,
    "customer.subscription.created": subscription_changed,
    "customer.subscription.updated": subscription_changed,
    "customer.subscription.deleted": subscription_changed,
    "customer.subscription.trial_will_end": trial_will_end,
    "invoice.paid": invoice_paid,
    "invoice.payment_failed": invoice_payment_failed,
    "invoice.payment_action_required": invoice_payment_action_required,
    "invoice.upcoming": invoice_upcoming,
    "charge.refunded": charge_refunded,
    "charge.dispute.created": charge_dispute_created,
}


@dataclass
class Outcome:
    status_code: int
    message: str


def receive(payload: bytes, signature: str | None) -> Outcome:
    """What the /stripe/webhook/ endpoint does with a request body.

    400 without a write for a bad signature or body, another API version,
    or another account's or mode's event; 200 for a duplicate
    already handled, 409 for one still being handled (Stripe retries later);
    else the event is stored and handled: 200 when handled (or of a type we
    do not handle), 500 when handling failed, so Stripe sends it again.
    """
    try:
        data = stripe_api.verify_webhook(payload, signature)
    except stripe_api.SignatureVerificationError as error:
        logger.warning("Stripe webhook refused: %s", error.user_message or error)
        return Outcome(400, "Invalid signature.")
    except ValueError:
        logger.warning("Stripe webhook refused: the body is not an event")
        return Outcome(400, "Invalid payload.")
    if data.get("api_version") != stripe_api.API_VERSION:
        # Stripe renders an event in the endpoint's API version; another one
        # means the endpoint (or the account default) was changed without the
        # SDK, and its objects may not have the fields the handlers read.
        # Refused before anything is stored: Stripe retries it, and once the
        # endpoint's version is fixed the retries succeed.
        logger.error(
            "Stripe webhook refused: event %s is in API version %s, the code reads %s",
            data.get("id"),
            data.get("api_version"),
            stripe_api.API_VERSION,
        )
        return Outcome(400, "Unexpected API version.")
    foreign = another_accounts(data)
    if foreign:
        # The signature proves Stripe sent it, not that it is about the
        # account our key reads: its objects cannot be fetched with our key,
        # so handling it would fail on every retry. Refused before anything
        # is stored or fetched; the endpoint or key is misconfigured.
        logger.error(
            "Stripe webhook refused: event %s (%s) is %s", data.get("id"), data.get("type"), foreign
        )
        return Outcome(400, "Not an event of this Stripe account and mode.")
    if not is_about_a_reader(data):
        data = without_personal_data(data)

    # PostgreSQL cannot store NUL in text or JSON; a signed event carrying one
    # (in a name or metadata a customer typed) must not fail forever. The
    # signature was checked on the raw bytes, so the stored copy may differ.
    data = without_nul_dict(data)
    try:
        with transaction.atomic():
            event = StripeEvent.objects.create(
                event_id=str(data["id"]),
                type=str(data.get("type", "")),
                payload=data,
                stripe_created_at=stripe_api.from_timestamp(data.get("created")),
            )
    except IntegrityError:
        # Seen before. Only a failed one is handled again (Stripe's retry of
        # an event we answered 500 to); anything else is a duplicate.
        event = StripeEvent.objects.get(event_id=data["id"])
        if not claim_for_retry(event):
            if event.status == StripeEvent.Status.PROCESSING:
                # Still being handled, or its handler died: not done, so not a
                # 200 that would stop Stripe from sending it again later.
                return Outcome(409, "Event is being handled; try again later.")
            return Outcome(200, "Duplicate event.")
    ok = process(event)
    return Outcome(200, event.status) if ok else Outcome(500, "Handling failed; will retry.")


def another_accounts(data: dict[str, object]) -> str | None:
    """What makes the event another Stripe account's or mode's (for the log), or None.

    Stripe names an `account` only in events of connected accounts
    (Connect): this service is no platform, its own events name none, so
    no account id of ours needs to be configured or asked for. The mode is
    the key's (stripe_api.livemode); with no known mode (the keyless demo),
    it is not judged.
    """
    account = data.get("account")
    if account:
        return f"about the connected account {account}"
    mode = stripe_api.livemode()
    if mode is not None and data.get("livemode") is not mode:
        event_mode, key_mode = ("live" if m else "test" for m in (data.get("livemode"), mode))
        return f"a {event_mode}-mode event, and the API key is a {key_mode}-mode key"
    return None


# What an event about no reader of ours keeps of its object: ids and the few
# fields the handlers read (each re-fetches the object from Stripe).
KEPT_FIELDS = ("id", "object", "customer", "subscription", "charge", "mode", "status")


def _event_object(data: dict[str, object]) -> dict[str, object]:
    inner = data.get("data")
    obj = inner.get("object") if isinstance(inner, dict) else None
    return obj if isinstance(obj, dict) else {}


def _id_of(value: object) -> str | None:
    """A Stripe id, from an id or an expanded object; None for anything else."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


def is_about_a_reader(data: dict[str, object]) -> bool:
    """Whether the event's customer is one of our readers' (their data may be stored)."""
    obj = _event_object(data)
    customer = _id_of(obj.get("id")) if obj.get("object") == "customer" else None
    customer = customer or _id_of(obj.get("customer"))
    return customer is not None and (
        Membership.objects.filter(stripe_customer_id=customer).exists()
        or teams.is_team_customer(customer)
    )


def without_personal_data(data: dict[str, object]) -> dict[str, object]:
    """The event stripped to its ids, type and dates: what is kept of a stranger's event."""
    obj = _event_object(data)
    kept = {field: _id_of(obj[field]) for field in KEPT_FIELDS if field in obj}
    return {
        "id": data["id"],
        "object": "event",
        "type": data.get("type"),
        "api_version": data.get("api_version"),
        "created": data.get("created"),
        "livemode": data.get("livemode"),
        "data": {"object": kept},
    }


def without_nul_dict(value: dict[str, object]) -> dict[str, object]:
    """An event's JSON with every NUL character (in keys and strings) made U+FFFD."""
    return {key.replace("\x00", "\ufffd"): without_nul(item) for key, item in value.items()}


def without_nul(value: object) -> object:
    """The JSON value with every NUL character (in keys and strings) made U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    return value


STUCK_AFTER = datetime.timedelta(minutes=15)


def claim_for_retry(event: StripeEvent) -> bool:
    """Take a failed (or long-stuck) event for handling; False if someone else has it."""
    retryable = StripeEvent.objects.filter(pk=event.pk, status=StripeEvent.Status.FAILED)
    stuck = StripeEvent.objects.filter(
        pk=event.pk,
        status=StripeEvent.Status.PROCESSING,
        received_at__lt=timezone.now() - STUCK_AFTER,
    )
    claimed = (retryable | stuck).update(status=StripeEvent.Status.PROCESSING)
    if claimed:
        event.refresh_from_db()
    return bool(claimed)


def process(event: StripeEvent) -> bool:
    """Handle a stored event; record the outcome on it. Returns False on failure."""
    event.attempts += 1
    handler = HANDLERS.get(event.type)
    if handler is None:
        event.status = StripeEvent.Status.IGNORED
        event.note = "type not handled"
    else:
        try:
            event.note = handler(stripe_api.event_from_payload(event.payload))[:255]
        except Exception as error:
            # Anything may fail here (Stripe unreachable, a bug): the event
            # keeps the error for the admin and is retried, nothing is lost.
            logger.exception("Stripe event %s (%s) failed", event.event_id, event.type)
            event.status = StripeEvent.Status.FAILED
            event.error = "".join(traceback.format_exception(error))[-5000:]
        else:
            event.status = StripeEvent.Status.PROCESSED
            event.error = ""
    event.processed_at = timezone.now()
    event.save(update_fields=["status", "note", "error", "attempts", "processed_at"])
    return event.status != StripeEvent.Status.FAILED


def retry(event_id: int) -> bool | None:
    """Staff's retry from the admin: None if the event was not failed (or stuck)."""
    event = StripeEvent.objects.get(pk=event_id)
    if not claim_for_retry(event):
        return None
    return process(event)
