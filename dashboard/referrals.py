"""The referral figures: referrals over time, and the readers who bring the most.

Counted from the referral rows (subscriptions.referral_models) in the
newsroom's weeks: a referral when the referred reader signed up by a link,
a paying one when their first payment succeeded.
"""

import datetime
from collections import Counter
from dataclasses import dataclass

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from dashboard.metrics import DateRange, newsroom_zone
from subscriptions.referral_models import Referral, ReferralReward

TOP_REFERRERS = 10


@dataclass(frozen=True)
class ReferralWeek:
    week: datetime.date  # its Monday
    signed_up: int
    paying: int


def _monday(day: datetime.date) -> datetime.date:
    return day - datetime.timedelta(days=day.weekday())


def _per_week(field: str, dates: DateRange, filters: Q) -> Counter[datetime.date]:
    days = (
        Referral.objects.filter(
            filters, **{f"{field}__gte": dates.start, f"{field}__lt": dates.end}
        )
        .annotate(day=TruncDate(field, tzinfo=newsroom_zone()))
        .values("day")
        .annotate(count=Count("pk"))
    )
    weeks: Counter[datetime.date] = Counter()
    for row in days:
        weeks[_monday(row["day"])] += row["count"]
    return weeks


def referrals_per_week(dates: DateRange) -> list[ReferralWeek]:
    """Each week's referred signups, and referred readers whose first payment came that week."""
    signed_up = _per_week("created_at", dates, Q())
    paying = _per_week("first_paid_at", dates, Q(first_paid_at__isnull=False))
    return [ReferralWeek(week, signed_up[week], paying[week]) for week in dates.weeks()]


@dataclass(frozen=True)
class TopReferrer:
    email: str
    signed_up: int
    paying: int
    months_earned: int


def top_referrers(dates: DateRange, limit: int = TOP_REFERRERS) -> list[TopReferrer]:
    """The readers whose referrals first paid most within the range (then most signups)."""
    in_range = Q(first_paid_at__gte=dates.start, first_paid_at__lt=dates.end)
    signed = Q(created_at__gte=dates.start, created_at__lt=dates.end)
    rows = list(
        Referral.objects.filter(in_range | signed)
        .values("referrer_id", "referrer__email")
        .annotate(paying=Count("pk", filter=in_range), signed_up=Count("pk", filter=signed))
        .order_by("-paying", "-signed_up", "referrer__email")[:limit]
    )
    months = dict(
        ReferralReward.objects.filter(
            referrer_id__in=[row["referrer_id"] for row in rows],
            granted_at__gte=dates.start,
            granted_at__lt=dates.end,
        )
        .exclude(status=ReferralReward.Status.TAKEN_BACK)
        .values("referrer_id")
        .annotate(months=Sum("months"))
        .values_list("referrer_id", "months")
    )
    return [
        TopReferrer(
            email=row["referrer__email"],
            signed_up=row["signed_up"],
            paying=row["paying"],
            months_earned=months.get(row["referrer_id"], 0),
        )
        for row in rows
    ]
