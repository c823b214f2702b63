"""Referral links and what they offer: who invited the visitor, and for how long a trial.

Every reader's link is `/invite/<reader id>-<signature>/` (subscriptions.tokens):
made without a database row (the digest puts one in every reader's footer
at send time, which must cost a few microseconds), and unguessable, so the
page cannot be walked through readers' ids. The page says who invited the
visitor only by first name, and only if that reader allows it
(ReferralPreference); otherwise "a reader".

The writes (a referral made at signup, rewards, take-backs) are in
subscriptions.actions.referrals.
"""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone

from subscriptions.models import Subscriber
from subscriptions.referral_models import Referral, ReferralPreference, ReferralReward
from subscriptions.stripe_api import PRICE_CENTS
from subscriptions.tokens import ReaderTokens

TOKENS = ReaderTokens("subscriptions.referral-link")
make_token = TOKENS.make

# Mail providers that deliver "first.last+anything@" to "firstlast@": the
# same person, for the self-referral guard.
DOTLESS_DOMAINS = ("gmail.com", "googlemail.com")


def referral_url(subscriber: Subscriber) -> str:
    """The reader's personal referral link, absolute, for emails and pages."""
    path = reverse("subscriptions:referral-landing", args=[make_token(subscriber)])
    return f"{settings.SITE_URL}{path}"


def referrer_for_token(token: str) -> Subscriber | None:
    """The reader whose link this is; None for a forged, altered or another page's token."""
    if not token:
        return None
    return TOKENS.subscriber(token)


def identity(email: str) -> str:
    """An address as a person, not a mailbox: lower case, no +tag, Gmail's dots gone.

    Only for telling one person behind two addresses (the self-referral
    guard); never stored or used to send.
    """
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def first_name(subscriber: Subscriber) -> str:
    """The first word of the name the reader stands behind (greeting_name), or ""."""
    name = subscriber.greeting_name
    return name.split()[0] if name else ""


def shown_name(referrer: Subscriber) -> str:
    """What the landing page calls the referrer: a first name they allowed, or ""."""
    allowed = ReferralPreference.objects.filter(subscriber=referrer, show_first_name=True).exists()
    return first_name(referrer) if allowed else ""


def shows_first_name(subscriber: Subscriber) -> bool:
    return ReferralPreference.objects.filter(subscriber=subscriber, show_first_name=True).exists()


def referred_trial_days() -> int:
    return settings.REFERRAL_TRIAL_DAYS


def monthly_value(amount: int | None) -> int:
    """One month of the yearly plan, in cents: the reward's unit."""
    return round((amount or PRICE_CENTS) / 12)


@dataclass(frozen=True)
class ReferralSummary:
    """What the account page says about a reader's referrals."""

    signed_up: int
    started_trial: int
    paying: int
    months_earned: int
    months_credited: int
    months_taken_back: int


def summary(subscriber: Subscriber) -> ReferralSummary:
    referrals = Referral.objects.filter(referrer=subscriber)
    counts = referrals.aggregate(
        signed_up=Count("pk"),
        started_trial=Count(
            "pk", filter=Q(referred__membership__stripe_subscription_id__isnull=False)
        ),
        paying=Count("pk", filter=Q(first_paid_at__isnull=False)),
    )
    rewards = ReferralReward.objects.filter(referrer=subscriber)
    months = rewards.aggregate(
        earned=Sum("months", filter=~Q(status=ReferralReward.Status.TAKEN_BACK)),
        credited=Sum("months", filter=Q(status=ReferralReward.Status.CREDITED)),
        taken_back=Sum("months", filter=Q(status=ReferralReward.Status.TAKEN_BACK)),
    )
    return ReferralSummary(
        signed_up=counts["signed_up"],
        started_trial=counts["started_trial"],
        paying=counts["paying"],
        months_earned=months["earned"] or 0,
        months_credited=months["credited"] or 0,
        months_taken_back=months["taken_back"] or 0,
    )


def months_granted_since(subscriber: Subscriber, since: datetime.datetime) -> int:
    """Free months granted to the referrer since `since`, not counting those taken back."""
    total = (
        ReferralReward.objects.filter(referrer=subscriber, granted_at__gte=since)
        .exclude(status=ReferralReward.Status.TAKEN_BACK)
        .aggregate(months=Sum("months"))["months"]
    )
    return total or 0


def year_before(now: datetime.datetime | None = None) -> datetime.datetime:
    return (now or timezone.now()) - datetime.timedelta(days=365)


def offers_trial(token: str, email: str) -> bool:
    """Whether a visitor with `email` who came by `token`'s link is offered the longer trial.

    Not for a link of one's own (the same address once normalised); an
    address that had a trial is refused by the trial rule itself
    (subscriptions.trials).
    """
    referrer = referrer_for_token(token)
    return referrer is not None and identity(referrer.email) != identity(email)


def export(subscriber: Subscriber) -> dict:
    """The reader's referral data for their export: their own, never the other readers'."""
    counts = summary(subscriber)
    return {
        "show_first_name": shows_first_name(subscriber),
        "signed_up_through_my_link": counts.signed_up,
        "paying": counts.paying,
        "came_by_a_referral": Referral.objects.filter(referred=subscriber).exists(),
        "rewards": [
            {
                "months": reward.months,
                "amount_cents": reward.amount,
                "status": reward.status,
                "granted_at": reward.granted_at.isoformat(),
            }
            for reward in ReferralReward.objects.filter(referrer=subscriber).order_by("granted_at")
        ],
    }
