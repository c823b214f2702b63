"""The paid year after the trial: the renewal notice, cancelling and keeping, win-back.

Each email is claimed once for its cause (ReaderEmail), so however often a
check runs or Stripe repeats an event, a reader gets one renewal notice per
renewal and at most one win-back email ever. Every decision is taken on
Stripe's state fetched inside the membership's lock, never on an event's copy.
"""

import calendar
import datetime
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from subscriptions import stripe_api
from subscriptions.actions.reader_emails import queue_email
from subscriptions.actions.stripe_sync import ENDED_STATUSES, apply_subscription, sync_locked
from subscriptions.models import Membership, ReaderEmail, Subscriber, iso_or_none

logger = logging.getLogger(__name__)

Status = Membership.Status


# --- Renewal notice --------------------------------------------------------------------


def renewal_cause(subscription_id: str, period_end: datetime.datetime) -> str:
    """One notice per renewal: the subscription and the moment it renews."""
    return f"{subscription_id}:{int(period_end.timestamp())}"


def renewal_window(now: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    """Renewals after the first and up to the second moment are due their notice now."""
    return now, now + datetime.timedelta(days=settings.RENEWAL_NOTICE_DAYS)


def renewal_notice_skip_reason(
    membership: Membership, subscription_id: str, now: datetime.datetime
) -> str | None:
    """Why this membership gets no renewal notice now, or None if it is due one.

    Only an active, paid subscription that will renew: never one set to
    cancel (nothing will be charged), paused, complimentary, in its trial
    (the trial reminder names the first charge) or whose renewal is not yet
    within RENEWAL_NOTICE_DAYS (a later check sends it) or already past.
    """
    if membership.stripe_subscription_id != subscription_id:
        return "not the reader's current subscription"
    if membership.status != Status.ACTIVE:
        return f"subscription is {membership.status}"
    if membership.cancel_at_period_end:
        return "set to cancel: nothing will be charged"
    if membership.pause_resumes_at is not None:
        return "billing is paused"
    if membership.is_comped:
        return "complimentary"
    start, end = renewal_window(now)
    period_end = membership.current_period_end
    if period_end is None or not start < period_end <= end:
        return "renewal not within the notice period"
    return None


@transaction.atomic
def do_renewal_notice(subscription_id: str, now: datetime.datetime | None = None) -> str:
    """Sync the subscription and, if its renewal is due a notice, claim and queue it.

    Called by the invoice.upcoming webhook and by the hourly check, in any
    order and any number of times: the claim is per renewal. The amount is
    Stripe's preview of the renewal invoice (discounts and tax included).
    Returns what happened, for the event's note.
    """
    now = now or timezone.now()
    membership, _subscription = sync_locked(subscription_id)
    if membership is None:
        return "no reader for this subscription"
    reason = renewal_notice_skip_reason(membership, subscription_id, now)
    if reason is not None:
        return f"no renewal notice: {reason}"
    assert membership.current_period_end is not None  # checked by the skip reason
    cause = renewal_cause(subscription_id, membership.current_period_end)
    if ReaderEmail.objects.filter(kind=ReaderEmail.Kind.RENEWAL_NOTICE, cause=cause).exists():
        return "renewal notice already sent"
    invoice = stripe_api.preview_renewal(subscription_id)
    queue_email(
        membership.subscriber,
        ReaderEmail.Kind.RENEWAL_NOTICE,
        cause=cause,
        context={
            "renews_at": iso_or_none(membership.current_period_end),
            "amount": invoice.amount_due,
            "list_amount": membership.amount,
            "currency": invoice.currency,
        },
    )
    return "renewal notice queued"


def renewals_due_notice(now: datetime.datetime | None = None) -> list[str]:
    """Subscriptions whose renewal is within the notice period and who had no notice for it.

    Read from our mirror; do_renewal_notice then checks each against Stripe.
    """
    now = now or timezone.now()
    start, end = renewal_window(now)
    candidates = Membership.objects.filter(
        status=Status.ACTIVE,
        cancel_at_period_end=False,
        pause_resumes_at=None,
        current_period_end__gt=start,
        current_period_end__lte=end,
    ).exclude(stripe_subscription_id=None)
    # A complimentary reader is never sent one: not worth a Stripe call each hour.
    candidates = candidates.exclude(
        Q(complimentary=True) & (Q(complimentary_until=None) | Q(complimentary_until__gt=now))
    )
    wanted: dict[str, str] = {}
    for subscription_id, period_end in candidates.values_list(
        "stripe_subscription_id", "current_period_end"
    ):
        if subscription_id and period_end:  # both filtered on above; for the type checker
            wanted[renewal_cause(subscription_id, period_end)] = subscription_id
    sent = set(
        ReaderEmail.objects.filter(
            kind=ReaderEmail.Kind.RENEWAL_NOTICE, cause__in=list(wanted)
        ).values_list("cause", flat=True)
    )
    return sorted(subscription_id for cause, subscription_id in wanted.items() if cause not in sent)


# --- Cancelling and keeping the membership --------------------------------------------


class NothingToCancel(Exception):
    """The reader has no live subscription whose renewal could be cancelled or kept."""


@transaction.atomic
def do_set_cancel_at_period_end(subscriber: Subscriber, cancel: bool) -> Membership:
    """Cancel the renewal (the digest continues until the period ends), or keep it after all.

    The write goes to Stripe and Stripe's answer is mirrored, inside the
    membership's lock; the customer.subscription.updated event that follows
    changes nothing more.
    """
    membership = Membership.objects.select_for_update().filter(subscriber=subscriber).first()
    if membership is None or not membership.stripe_subscription_id:
        raise NothingToCancel("There is no membership to change.")
    if membership.status not in (Status.TRIALING, Status.ACTIVE, Status.PAST_DUE):
        raise NothingToCancel("This membership has no renewal to change.")
    subscription = stripe_api.set_cancel_at_period_end(membership.stripe_subscription_id, cancel)
    apply_subscription(membership, subscription)
    logger.info("Membership %s: %s at period end", membership.pk, "cancel" if cancel else "renew")
    return membership


# --- Win-back --------------------------------------------------------------------------

# A win-back is for readers who left recently: turning the setting on must not
# email everyone who ever left.
WIN_BACK_WINDOW = datetime.timedelta(days=7)


def win_back_candidates(now: datetime.datetime | None = None) -> list[int]:
    """The ids of readers due their win-back email now (see _win_back_memberships)."""
    return list(_win_back_memberships(now).values_list("subscriber_id", flat=True))


def _win_back_memberships(now: datetime.datetime | None) -> "QuerySet[Membership]":
    """Memberships that Stripe ended WIN_BACK_DAYS ago (within a week), never won back before.

    Only readers who had a membership that started (a "membership ended"
    email went out for its subscription), whose address takes our email
    (not unsubscribed: this one is not about their money), and who have not
    come back since.
    """
    if settings.WIN_BACK_DAYS <= 0:
        return Membership.objects.none()
    now = now or timezone.now()
    latest = now - datetime.timedelta(days=settings.WIN_BACK_DAYS)
    memberships = (
        Membership.objects.filter(
            status__in=ENDED_STATUSES,
            ended_at__lte=latest,
            ended_at__gt=latest - WIN_BACK_WINDOW,
            subscriber__email_status=Subscriber.EmailStatus.ACTIVE,
        )
        .exclude(
            Q(complimentary=True) & (Q(complimentary_until=None) | Q(complimentary_until__gt=now))
        )
        .exclude(subscriber__emails__kind=ReaderEmail.Kind.WIN_BACK)
    )
    ended_causes = ReaderEmail.objects.filter(kind=ReaderEmail.Kind.MEMBERSHIP_ENDED).values(
        "cause"
    )
    return memberships.filter(stripe_subscription_id__in=ended_causes)


@transaction.atomic
def do_win_back(subscriber_id: int, now: datetime.datetime | None = None) -> bool:
    """Claim and queue the one win-back email of this reader, if still due; False if not."""
    if not _win_back_memberships(now).filter(subscriber_id=subscriber_id).exists():
        return False
    subscriber = Subscriber.objects.get(pk=subscriber_id)
    # Per reader, not per subscription: never repeated, whatever happens next.
    return (
        queue_email(subscriber, ReaderEmail.Kind.WIN_BACK, cause=f"subscriber:{subscriber_id}")
        is not None
    )


# --- Pausing billing, and with it the digest -------------------------------------------

PAUSE_MONTHS = (1, 2, 3)


class CannotPause(Exception):
    """The membership cannot be paused (or resumed) now; the message says why."""


def months_later(moment: datetime.datetime, months: int) -> datetime.datetime:
    """The same day and time `months` later (the month's last day if it has no such day)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@transaction.atomic
def do_pause_billing(
    subscriber: Subscriber, months: int, now: datetime.datetime | None = None
) -> Membership:
    """Pause billing and the digest for 1 to 3 months (Stripe's pause_collection).

    Stripe resumes collection by itself at the end; the digest resumes then
    too (entitlement reads pause_resumes_at). A charge that falls due during
    the pause waits as a draft invoice and is collected when it ends
    (side_effects.collect_after_pause); the renewal date does not move.
    """
    if months not in PAUSE_MONTHS:
        raise CannotPause("Choose a pause of 1, 2 or 3 months.")
    now = now or timezone.now()
    membership = Membership.objects.select_for_update().filter(subscriber=subscriber).first()
    if membership is None or not membership.stripe_subscription_id:
        raise CannotPause("There is no membership to pause.")
    if membership.status != Status.ACTIVE:
        raise CannotPause("Only a paid, active membership can be paused.")
    if membership.cancel_at_period_end:
        raise CannotPause("Your membership is cancelled: there is no billing left to pause.")
    if membership.billing_paused(now):
        raise CannotPause("Your membership is already paused.")
    subscription = stripe_api.pause_collection(
        membership.stripe_subscription_id, months_later(now, months)
    )
    apply_subscription(membership, subscription)
    logger.info("Membership %s: billing paused for %d months", membership.pk, months)
    return membership


@transaction.atomic
def do_resume_billing(subscriber: Subscriber) -> Membership:
    """End the reader's pause now: billing and the digest resume."""
    membership = Membership.objects.select_for_update().filter(subscriber=subscriber).first()
    if membership is None or not membership.stripe_subscription_id:
        raise CannotPause("There is no membership to resume.")
    if membership.pause_resumes_at is None:
        raise CannotPause("Your membership is not paused.")
    subscription = stripe_api.pause_collection(membership.stripe_subscription_id, None)
    apply_subscription(membership, subscription)
    logger.info("Membership %s: billing resumed", membership.pk)
    return membership
