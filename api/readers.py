"""A reader's one state, as the API lists and filters it.

The same order as the dashboard's readers by state (dashboard.metrics):
an address that takes no email first, then a complimentary grant, then
the Stripe status mirrored on the membership.
"""

import datetime

from django.db.models import Q

from subscriptions.models import Membership, Subscriber

EmailStatus = Subscriber.EmailStatus
Status = Membership.Status

STATES = (
    "trialing",
    "active",
    "past_due",
    "complimentary",
    "canceled",
    "unsubscribed",
    "bounced",
    # No membership yet, an unfinished checkout, unpaid or paused.
    "other",
)


def _comped(now: datetime.datetime) -> Q:
    return Q(membership__complimentary=True) & (
        Q(membership__complimentary_until__isnull=True) | Q(membership__complimentary_until__gt=now)
    )


def state_filter(state: str, now: datetime.datetime) -> Q:
    """The readers in `state` at `now`, as a filter on Subscriber."""
    deliverable = Q(email_status=EmailStatus.ACTIVE)
    billed = deliverable & ~_comped(now)
    by_status = {
        "trialing": Status.TRIALING,
        "active": Status.ACTIVE,
        "past_due": Status.PAST_DUE,
        "canceled": Status.CANCELED,
    }
    if state in by_status:
        return billed & Q(membership__status=by_status[state])
    if state == "complimentary":
        return deliverable & _comped(now)
    if state == "unsubscribed":
        return Q(email_status=EmailStatus.UNSUBSCRIBED)
    if state == "bounced":
        return Q(email_status__in=[EmailStatus.BOUNCED, EmailStatus.COMPLAINED])
    if state == "other":
        named = Q()
        for other in STATES[:-1]:
            named |= state_filter(other, now)
        # A subquery: negating the joins themselves would lose the readers
        # without a membership (NULL compares to nothing).
        return ~Q(pk__in=Subscriber.objects.filter(named).values("pk"))
    raise ValueError(f"Unknown state {state!r}")


def state_of(subscriber: Subscriber, now: datetime.datetime) -> str:
    """The state of one reader (whose membership is loaded), by the same rules."""
    if subscriber.email_status == EmailStatus.UNSUBSCRIBED:
        return "unsubscribed"
    if subscriber.email_status in (EmailStatus.BOUNCED, EmailStatus.COMPLAINED):
        return "bounced"
    membership = getattr(subscriber, "membership", None)
    if membership is None:
        return "other"
    if membership.complimentary and (
        membership.complimentary_until is None or membership.complimentary_until > now
    ):
        return "complimentary"
    if membership.status in ("trialing", "active", "past_due", "canceled"):
        return str(membership.status)
    return "other"
