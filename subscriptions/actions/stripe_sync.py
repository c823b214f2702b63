"""Mirroring Stripe's subscriptions onto memberships, whatever order events come in.

Stripe is the source of truth for billing: every change re-fetches the
subscription inside a lock on the membership row, so the last write is
Stripe's latest state; reconciliation checks again the memberships an event
may have missed.
"""

import datetime
import logging

import stripe
from django.db import transaction
from django.utils import timezone

from subscriptions import side_effects, stripe_api
from subscriptions.actions.reader_emails import queue_email
from subscriptions.models import Membership, ReaderEmail, iso_or_none
from subscriptions.team_models import TeamSeat

logger = logging.getLogger(__name__)

Status = Membership.Status
ENDED_STATUSES = (Status.CANCELED, Status.UNPAID)


def int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _find_membership(
    subscription_id: str | None, customer_id: str | None, subscriber_id: int | None
) -> Membership | None:
    memberships = Membership.objects.select_for_update()
    for lookup in (
        {"stripe_subscription_id": subscription_id},
        {"stripe_customer_id": customer_id},
        {"subscriber_id": subscriber_id},
    ):
        value = next(iter(lookup.values()))
        if value is not None:
            membership = memberships.filter(**lookup).first()
            if membership is not None:
                return membership
    return None


@transaction.atomic
def do_sync_subscription(
    subscription_id: str,
    *,
    customer_id: str | None = None,
    subscriber_id: int | None = None,
) -> Membership | None:
    """Fetch the subscription from Stripe and mirror it onto the reader's membership.

    The membership row is locked first and the subscription fetched inside
    the lock, so whatever order events arrive in, concurrently or not, the
    last write is Stripe's latest state. Returns None for a subscription
    that belongs to no reader of ours.
    """
    return sync_locked(subscription_id, customer_id, subscriber_id)[0]


def sync_locked(
    subscription_id: str, customer_id: str | None = None, subscriber_id: int | None = None
) -> tuple[Membership | None, stripe.Subscription]:
    """Lock, fetch and apply, in the caller's transaction (select_for_update needs one)."""
    membership = _find_membership(subscription_id, customer_id, subscriber_id)
    subscription = stripe_api.retrieve_subscription(subscription_id)
    if membership is None:
        # Not known by these ids: try what Stripe says about the owner.
        metadata_owner = int_or_none(_metadata(subscription, "subscriber_id"))
        membership = _find_membership(
            None, stripe_api.expandable_id(subscription.customer), metadata_owner
        )
    if membership is None:
        logger.warning("Subscription %s belongs to no reader; ignored", subscription_id)
        return None, subscription
    apply_subscription(membership, subscription)
    return membership, subscription


def _metadata(obj: stripe.StripeObject, key: str) -> str | None:
    metadata = getattr(obj, "metadata", None)
    return metadata[key] if metadata is not None and key in metadata else None


def apply_subscription(membership: Membership, subscription: stripe.Subscription) -> bool:
    """Write a subscription fetched from Stripe onto a locked membership.

    Returns False when the subscription must not replace what we have:
    an older subscription of the reader's, or one that would revive a
    subscription Stripe has ended.
    """
    incoming = subscription.status
    current_id = membership.stripe_subscription_id
    if current_id and current_id != subscription.id:
        if incoming in Membership.TERMINAL_STATUSES or membership.status not in (
            *Membership.TERMINAL_STATUSES,
            Status.INCOMPLETE,
        ):
            # The reader's membership follows another subscription, which
            # is live (or this one is over): this one does not replace it.
            logger.warning(
                "Subscription %s (%s) ignored: membership %s follows %s (%s)",
                subscription.id,
                incoming,
                membership.pk,
                current_id,
                membership.status,
            )
            if incoming not in Membership.TERMINAL_STATUSES:
                _cancel_duplicate(subscription)
            return False
    elif (
        current_id == subscription.id
        and membership.status in Membership.TERMINAL_STATUSES
        and incoming not in Membership.TERMINAL_STATUSES
    ):
        # Stripe never brings an ended subscription back; a stale copy must not.
        logger.warning(
            "Subscription %s is %s; not revived to %s", current_id, membership.status, incoming
        )
        return False

    previous_status = membership.status
    was_paused = membership.pause_resumes_at is not None
    before = [getattr(membership, field) for field in Membership.MIRRORED_FROM_STRIPE]
    now = timezone.now()
    membership.stripe_subscription_id = subscription.id
    membership.stripe_customer_id = stripe_api.expandable_id(subscription.customer)
    membership.status = incoming
    membership.trial_end = stripe_api.from_timestamp(subscription.trial_end)
    membership.current_period_end = stripe_api.from_timestamp(
        stripe_api.subscription_period_end(subscription)
    )
    membership.cancel_at_period_end = bool(
        subscription.cancel_at_period_end or subscription.cancel_at
    )
    membership.amount = stripe_api.subscription_amount(subscription)
    membership.next_charge_amount = _discounted_next_charge(subscription, membership.amount)
    membership.ended_at = stripe_api.from_timestamp(getattr(subscription, "ended_at", None))
    membership.pause_resumes_at = stripe_api.pause_resumes_at(subscription)
    if incoming != Status.PAST_DUE:
        membership.past_due_since = None
    elif previous_status != Status.PAST_DUE or membership.past_due_since is None:
        membership.past_due_since = now
    membership.stripe_synced_at = now
    if [getattr(membership, field) for field in Membership.MIRRORED_FROM_STRIPE] == before:
        # Nothing changed: record the check without touching updated_at, which
        # reconciliation reads as "changed recently, check again".
        Membership.objects.filter(pk=membership.pk).update(stripe_synced_at=now)
    else:
        membership.save()

    if was_paused and membership.pause_resumes_at is None:
        # The pause ended (by itself at Stripe, or the reader resumed): what
        # fell due meanwhile waits as a draft; now it is collected.
        transaction.on_commit(lambda: side_effects.collect_after_pause.delay(subscription.id))
    subscriber = membership.subscriber
    if incoming in (Status.TRIALING, Status.ACTIVE):
        queue_email(
            subscriber,
            ReaderEmail.Kind.WELCOME,
            cause=subscription.id,
            context={"trial_end": iso_or_none(membership.trial_end), "status": incoming},
        )
    elif (
        incoming in ENDED_STATUSES
        and ReaderEmail.objects.filter(
            kind=ReaderEmail.Kind.WELCOME, cause=subscription.id
        ).exists()
        and not TeamSeat.objects.filter(subscriber=subscriber, removed_at__isnull=True).exists()
    ):
        # Only a membership that had started can end; an abandoned signup
        # that expires is not news to the reader. Nor is the end of their own
        # plan to a reader who moved onto a team's seat: the seat carries
        # their briefing on.
        queue_email(
            subscriber,
            ReaderEmail.Kind.MEMBERSHIP_ENDED,
            cause=subscription.id,
            context={"status": incoming},
        )
    if previous_status != incoming:
        logger.info(
            "Membership %s: %s -> %s (%s)",
            membership.pk,
            previous_status,
            incoming,
            subscription.id,
        )
    return True


def _discounted_next_charge(subscription: stripe.Subscription, amount: int | None) -> int | None:
    """The next charge after a promotion code's discount, from Stripe's preview; None: no discount.

    Asked only of a subscription that carries a discount and will charge
    again: most subscriptions cost no extra call. A one-time code leaves
    the subscription's discounts after its first invoice, and the next
    charge is the list amount again.
    """
    if not getattr(subscription, "discounts", None):
        return None
    if subscription.status not in (Status.TRIALING, Status.ACTIVE, Status.PAST_DUE):
        return None
    if subscription.cancel_at_period_end or subscription.cancel_at:
        return None
    preview = stripe_api.preview_renewal(subscription.id)
    return None if preview.amount_due == amount else preview.amount_due


def _cancel_duplicate(subscription: stripe.Subscription) -> None:
    """A second live subscription for one reader (two checkouts finished in two tabs).

    One reader pays for one membership: a duplicate that has taken no money
    yet (trialing or incomplete) is cancelled at Stripe; one that has been
    paid is left for staff to refund, loudly.
    """
    if subscription.status in (Status.TRIALING, Status.INCOMPLETE):
        logger.warning("Cancelling duplicate subscription %s", subscription.id)
        transaction.on_commit(lambda: stripe_api.cancel_subscription(subscription.id))
    else:
        logger.error(
            "Duplicate paid subscription %s (%s) for customer %s: refund and cancel it at Stripe",
            subscription.id,
            subscription.status,
            stripe_api.expandable_id(subscription.customer),
        )


@transaction.atomic
def do_trial_ending(subscription_id: str) -> None:
    """Stripe says the trial ends in a few days: sync, and tell the reader the date and amount."""
    membership, subscription = sync_locked(subscription_id)
    if membership is None or membership.stripe_subscription_id != subscription_id:
        return
    if membership.status != Status.TRIALING or membership.trial_end is None:
        return
    if membership.cancel_at_period_end:
        return  # they cancelled already: nothing will be charged
    queue_email(
        membership.subscriber,
        ReaderEmail.Kind.TRIAL_ENDING,
        # A trial extended by staff gets its own reminder.
        cause=f"{subscription_id}:{int(membership.trial_end.timestamp())}",
        context={
            "trial_end": iso_or_none(membership.trial_end),
            "amount": membership.charge_amount or stripe_api.PRICE_CENTS,
            "has_payment_method": subscription.default_payment_method is not None,
        },
    )


@transaction.atomic
def do_invoice_event(invoice_id: str, kind: ReaderEmail.Kind | None) -> None:
    """An invoice was paid or failed: sync its subscription; email the reader if `kind`.

    The invoice is fetched from Stripe: its amount and payment link go into
    an email to the reader, so they must be Stripe's, never an event body's.
    """
    invoice = stripe_api.retrieve_invoice(invoice_id)
    subscription_id = stripe_api.invoice_subscription_id(invoice)
    if subscription_id is None:
        return  # not a subscription invoice: nothing of ours
    membership = do_sync_subscription(
        subscription_id, customer_id=stripe_api.expandable_id(invoice.customer)
    )
    if membership is None or kind is None:
        return
    queue_email(
        membership.subscriber,
        kind,
        cause=invoice.id,
        context={
            "amount": invoice.amount_due,
            "hosted_invoice_url": invoice.hosted_invoice_url,
            "next_payment_attempt": iso_or_none(
                stripe_api.from_timestamp(invoice.next_payment_attempt)
            ),
        },
    )


# --- Reconciliation ------------------------------------------------------------------

RECONCILE_RECENT = datetime.timedelta(days=2)
RECONCILE_LIMIT = 500


def memberships_to_reconcile(now: datetime.datetime | None = None) -> list[int]:
    """Memberships whose Stripe state we should check again, oldest check first.

    Recently changed ones (an event may have been lost right after), and
    suspicious ones: a signup with a customer but no subscription yet (the
    checkout webhook may be lost), past_due, a trial past its end, a paid
    period past its end without renewal.
    """
    now = now or timezone.now()
    memberships = Membership.objects.exclude(stripe_customer_id=None)
    recent = memberships.filter(updated_at__gte=now - RECONCILE_RECENT)
    suspicious = (
        memberships.filter(
            status=Status.INCOMPLETE, created_at__lte=now - datetime.timedelta(minutes=30)
        )
        | memberships.filter(status=Status.PAST_DUE)
        | memberships.filter(status=Status.TRIALING, trial_end__lt=now)
        | memberships.filter(status=Status.ACTIVE, current_period_end__lt=now)
        # A pause of billing whose end has come: Stripe resumed it (and its
        # drafts are to be collected) even if the event was lost.
        | memberships.filter(pause_resumes_at__lt=now)
    )
    ids = (recent | suspicious).exclude(
        status__in=Membership.TERMINAL_STATUSES, updated_at__lt=now - RECONCILE_RECENT
    )
    return list(
        ids.order_by("stripe_synced_at", "pk").values_list("pk", flat=True)[:RECONCILE_LIMIT]
    )


@transaction.atomic
def do_reconcile_membership(membership_id: int) -> None:
    membership = Membership.objects.get(pk=membership_id)
    if membership.stripe_subscription_id:
        do_sync_subscription(membership.stripe_subscription_id)
        return
    if not membership.stripe_customer_id:
        return  # never reached Stripe: nothing to reconcile
    # No subscription known yet: did a checkout complete without its webhook?
    subscription = stripe_api.latest_subscription(membership.stripe_customer_id)
    if subscription is not None:
        do_sync_subscription(subscription.id, customer_id=membership.stripe_customer_id)
