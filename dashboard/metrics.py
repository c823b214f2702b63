"""The publisher's figures, each one aggregate query over a date range at a given "now".

Every function takes the moment it answers for (and the range where it has
one) as parameters, so a test can build a history and ask about it at any
instant. Days, weeks and months are the newsroom's (DIGEST_TIMEZONE), as
every date an editor sees is.

History (when a trial started, when a reader began or stopped paying) comes
from dashboard.models.MembershipChange; "now" figures (readers by state,
MRR) come from the mirrored rows themselves.
"""

import datetime
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate, TruncMonth, TruncWeek

from dashboard.models import MembershipChange
from newsletter.models import Delivery, Edition
from subscriptions.models import Membership, Subscriber

Status = Membership.Status
EmailStatus = Subscriber.EmailStatus

# Statuses in which a reader pays (or Stripe is still collecting): MRR and
# "paying readers" count these. A past-due membership stays until Stripe
# gives up on the card and cancels it.
PAYING = (Status.ACTIVE, Status.PAST_DUE)
# What unsubscribes a digest is held responsible for.
UNSUBSCRIBE_WINDOW = datetime.timedelta(hours=48)
EDITIONS_SHOWN = 30


def newsroom_zone() -> ZoneInfo:
    return ZoneInfo(settings.DIGEST_TIMEZONE)


@dataclass(frozen=True)
class DateRange:
    """The newsroom's days from `first` to `last`, both included."""

    first: datetime.date
    last: datetime.date

    @classmethod
    def last_days(cls, days: int, now: datetime.datetime) -> "DateRange":
        today = now.astimezone(newsroom_zone()).date()
        return cls(today - datetime.timedelta(days=days - 1), today)

    @property
    def start(self) -> datetime.datetime:
        """The first day's midnight in the newsroom."""
        return datetime.datetime.combine(self.first, datetime.time(), tzinfo=newsroom_zone())

    @property
    def end(self) -> datetime.datetime:
        """The midnight after the last day."""
        return self.start + datetime.timedelta(days=(self.last - self.first).days + 1)

    def days(self) -> list[datetime.date]:
        return [
            self.first + datetime.timedelta(days=n)
            for n in range((self.last - self.first).days + 1)
        ]

    def weeks(self) -> list[datetime.date]:
        """The Mondays of the weeks the range touches."""
        monday = self.first - datetime.timedelta(days=self.first.weekday())
        return [
            monday + datetime.timedelta(weeks=n) for n in range((self.last - monday).days // 7 + 1)
        ]

    def months(self) -> list[datetime.date]:
        """The first days of the months the range touches."""
        month, months = self.first.replace(day=1), []
        while month <= self.last:
            months.append(month)
            month = (month + datetime.timedelta(days=32)).replace(day=1)
        return months


def _local_date(value: datetime.date | datetime.datetime) -> datetime.date:
    # TruncWeek and TruncMonth give aware datetimes (in the zone asked for)
    # on PostgreSQL and SQLite alike; TruncDate gives dates.
    if isinstance(value, datetime.datetime):
        return value.astimezone(newsroom_zone()).date()
    return value


# --- Readers ------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """A count under a label: one bar."""

    label: str
    count: int


def readers_by_state(now: datetime.datetime) -> list[Tally]:
    """Every reader in exactly one state at `now`, in one query.

    An undeliverable address comes first whatever the membership (no digest
    reaches them), then a complimentary grant (it entitles whatever Stripe
    says), then the Stripe status. "Other" holds what is neither in nor
    plainly out: no membership yet, an unfinished checkout, unpaid or paused,
    past due beyond the grace period.
    """
    undeliverable = Q(email_status__in=[EmailStatus.BOUNCED, EmailStatus.COMPLAINED])
    unsubscribed = Q(email_status=EmailStatus.UNSUBSCRIBED)
    deliverable = Q(email_status=EmailStatus.ACTIVE)
    comped = Q(membership__complimentary=True) & (
        Q(membership__complimentary_until__isnull=True) | Q(membership__complimentary_until__gt=now)
    )
    billed = deliverable & ~comped
    grace_start = now - datetime.timedelta(days=settings.PAST_DUE_GRACE_DAYS)
    states = {
        "Trialing": billed & Q(membership__status=Status.TRIALING),
        "Active": billed & Q(membership__status=Status.ACTIVE),
        "Past due, in grace": billed
        & Q(membership__status=Status.PAST_DUE, membership__past_due_since__gt=grace_start),
        "Complimentary": deliverable & comped,
        "Canceled": billed & Q(membership__status=Status.CANCELED),
        "Unsubscribed": unsubscribed,
        "Bounced or complained": undeliverable,
    }
    # Labels are not SQL aliases: the aggregate is keyed by position.
    counts = Subscriber.objects.aggregate(
        total=Count("pk"),
        **{f"state_{n}": Count("pk", filter=q) for n, q in enumerate(states.values())},
    )
    total = counts.pop("total")
    rows = [Tally(label, counts[f"state_{n}"]) for n, label in enumerate(states)]
    rows.append(Tally("Other", total - sum(row.count for row in rows)))
    return rows


def new_trials_per_day(dates: DateRange) -> list[Tally]:
    """Trials started on each day of the range (a reader has one trial at most)."""
    zone = newsroom_zone()
    counts = dict(
        MembershipChange.objects.filter(
            to_status=Status.TRIALING, at__gte=dates.start, at__lt=dates.end
        )
        .exclude(from_status=Status.TRIALING)
        .annotate(day=TruncDate("at", tzinfo=zone))
        .values_list("day")
        .annotate(count=Count("pk"))
        .values_list("day", "count")
    )
    return [Tally(day.isoformat(), counts.get(day, 0)) for day in dates.days()]


@dataclass(frozen=True)
class Cohort:
    week: datetime.date
    trials: int
    converted: int
    still_trialing: int

    @property
    def ended_unpaid(self) -> int:
        return self.trials - self.converted - self.still_trialing

    @property
    def rate(self) -> float | None:
        """Converted of the trials that have ended (None while none has)."""
        decided = self.trials - self.still_trialing
        return self.converted / decided if decided else None


def conversion_by_cohort(dates: DateRange, now: datetime.datetime) -> list[Cohort]:
    """Trials started each week of the range, and how many of them went on to pay by `now`.

    A reader whose first charge failed (past due) and who paid later counts
    as converted when they became active.
    """
    later_paid = MembershipChange.objects.filter(
        membership=OuterRef("membership"),
        to_status=Status.ACTIVE,
        at__gt=OuterRef("at"),
        at__lte=now,
    )
    # The status at `now`: that of the latest change up to then.
    status_then = (
        MembershipChange.objects.filter(membership=OuterRef("membership"), at__lte=now)
        .order_by("-at", "-pk")
        .values("to_status")[:1]
    )
    still = Q(status_now=Status.TRIALING) & Q(converted=False)
    rows = (
        MembershipChange.objects.filter(
            to_status=Status.TRIALING, at__gte=dates.start, at__lt=min(dates.end, now)
        )
        .exclude(from_status=Status.TRIALING)
        .annotate(
            week=TruncWeek("at", tzinfo=newsroom_zone()),
            converted=Exists(later_paid),
            status_now=Subquery(status_then),
        )
        .values("week")
        .annotate(
            trials=Count("membership", distinct=True),
            paid=Count("membership", filter=Q(converted=True), distinct=True),
            still=Count("membership", filter=still, distinct=True),
        )
    )
    found = {_local_date(row["week"]): row for row in rows}
    return [
        Cohort(
            week,
            found[week]["trials"] if week in found else 0,
            found[week]["paid"] if week in found else 0,
            found[week]["still"] if week in found else 0,
        )
        for week in dates.weeks()
    ]


# --- Money ----------------------------------------------------------------------


@dataclass(frozen=True)
class Revenue:
    paying: int
    arr_cents: int

    @property
    def mrr_cents(self) -> int:
        return round(self.arr_cents / 12)


def revenue(now: datetime.datetime) -> Revenue:
    """What paying readers bring in a year and a month, from the mirrored amounts.

    Membership.amount is what Stripe charges per (yearly) period after any
    discount. `now` is unused by the query (the mirror is the present) but
    kept so every figure is asked the same way.
    """
    totals = Membership.objects.filter(status__in=PAYING, amount__isnull=False).aggregate(
        paying=Count("pk"), arr=Coalesce(Sum("amount"), 0)
    )
    return Revenue(totals["paying"], totals["arr"])


# A change that makes a reader paying, or stops them paying.
_STARTS_PAYING = Q(to_status__in=PAYING) & ~Q(from_status__in=PAYING)
_STOPS_PAYING = Q(from_status__in=PAYING) & ~Q(to_status__in=PAYING)


def _paid(status_field: str, amount_field: str) -> Case:
    """The yearly amount on one side of a change if that side is paying, else 0."""
    return Case(
        When(**{f"{status_field}__in": PAYING}, then=Coalesce(F(amount_field), 0)),
        default=Value(0),
        output_field=IntegerField(),
    )


def _flows() -> dict[str, Count | Coalesce]:
    return {
        "started": Count("pk", filter=_STARTS_PAYING),
        "stopped": Count("pk", filter=_STOPS_PAYING),
        # What the change did to yearly revenue: paid after minus paid before
        # (a discount on a paying reader changes it with no status change).
        "arr": Coalesce(Sum(_paid("to_status", "amount") - _paid("from_status", "from_amount")), 0),
    }


@dataclass(frozen=True)
class Flow:
    """What happened to paying readers in one period, and where it left them."""

    period: datetime.date
    paying_at_start: int
    started: int
    stopped: int
    arr_cents_at_end: int

    @property
    def net(self) -> int:
        return self.started - self.stopped

    @property
    def churn_rate(self) -> float | None:
        """Readers who stopped paying, of those paying when the period began."""
        return self.stopped / self.paying_at_start if self.paying_at_start else None

    @property
    def mrr_cents_at_end(self) -> int:
        return round(self.arr_cents_at_end / 12)


def _flows_by(
    periods: list[datetime.date], trunc: type[TruncWeek] | type[TruncMonth], dates: DateRange
) -> list[Flow]:
    """Paying readers started and stopped per period, with running totals.

    Each membership's changes alternate between paying and not, so the
    readers paying at an instant are the starts minus the stops before it:
    two aggregate queries (before the range, then per period) give every
    running total, without a query per period.
    """
    changes: QuerySet[MembershipChange] = MembershipChange.objects.all()
    first = datetime.datetime.combine(periods[0], datetime.time(), tzinfo=newsroom_zone())
    before = changes.filter(at__lt=first).aggregate(**_flows())
    rows: dict[datetime.date, tuple[int, int, int]] = {
        _local_date(period): (started, stopped, arr_change)
        for period, started, stopped, arr_change in changes.filter(at__gte=first, at__lt=dates.end)
        .annotate(period=trunc("at", tzinfo=newsroom_zone()))
        .values("period")
        .annotate(**_flows())
        .values_list("period", "started", "stopped", "arr")
    }
    paying, arr, flows = before["started"] - before["stopped"], before["arr"], []
    for period in periods:
        started, stopped, arr_change = rows.get(period, (0, 0, 0))
        arr += arr_change
        flows.append(Flow(period, paying, started, stopped, arr))
        paying += started - stopped
    return flows


def churn_per_month(dates: DateRange) -> list[Flow]:
    """Per month the range touches: paying at its start, stopped paying, MRR at its end."""
    return _flows_by(dates.months(), TruncMonth, dates)


def net_growth_per_week(dates: DateRange) -> list[Flow]:
    """Per week the range touches: readers who started paying, stopped, and the difference."""
    return _flows_by(dates.weeks(), TruncWeek, dates)


# --- Sends ----------------------------------------------------------------------


@dataclass(frozen=True)
class EditionSend:
    date: datetime.date
    delivered: int
    failed: int
    bounced: int
    missed: int
    complaints: int
    unsubscribes: int


def _reacted_after(email_status: str, now: datetime.datetime) -> Q:
    """A delivered digest whose reader's address went to `email_status` within the window.

    The reader's latest status change is what we have: one who unsubscribed
    and came back is no longer counted against the digest.
    """
    return Q(
        deliveries__status=Delivery.Status.SENT,
        deliveries__subscriber__email_status=email_status,
        deliveries__subscriber__email_status_changed_at__gt=F("deliveries__sent_at"),
        deliveries__subscriber__email_status_changed_at__lte=F("deliveries__sent_at")
        + UNSUBSCRIBE_WINDOW,
    ) & Q(deliveries__subscriber__email_status_changed_at__lte=now)


def edition_sends(
    dates: DateRange, now: datetime.datetime, limit: int = EDITIONS_SHOWN
) -> list[EditionSend]:
    """The last `limit` editions of the range whose send had started by `now`, oldest first.

    "Unsubscribes" (and "complaints", a spam report through the ESP) are
    readers who got the digest and unsubscribed (complained) within
    UNSUBSCRIBE_WINDOW after it was sent, as it stood by `now`: a reader
    who unsubscribes the morning after two digests counts for both.
    """
    rows = (
        Edition.objects.filter(
            date__gte=dates.first, date__lte=dates.last, send_started_at__lte=now
        )
        .order_by("-date")
        .annotate(
            delivered=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.SENT)),
            failed=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.FAILED)),
            bounced=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.BOUNCED)),
            missed=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.MISSED)),
            complaints=Count("deliveries", filter=_reacted_after(EmailStatus.COMPLAINED, now)),
            unsubscribes=Count("deliveries", filter=_reacted_after(EmailStatus.UNSUBSCRIBED, now)),
        )
        .values_list(
            "date", "delivered", "failed", "bounced", "missed", "complaints", "unsubscribes"
        )[:limit]
    )
    return [EditionSend(*row) for row in reversed(rows)]


@dataclass(frozen=True)
class ZoneFigures:
    time_zone: str
    deliveries: int
    delivered: int
    failed: int
    bounced: int
    missed: int
    # From the zone's send moment to its last digest handed to the mail
    # server, over the editions: the middle one and the longest.
    median_duration: datetime.timedelta | None
    longest_duration: datetime.timedelta | None

    @property
    def delivered_rate(self) -> float | None:
        return self.delivered / self.deliveries if self.deliveries else None


def zone_sends(
    dates: DateRange, now: datetime.datetime, limit: int = EDITIONS_SHOWN
) -> list[ZoneFigures]:
    """Each zone's sends over the same editions as edition_sends, busiest zone first.

    Edition.zone_sends() reports one edition slot by slot for the desk; this
    sums the zones over many editions in one query (a row per zone and
    edition, at most zones x `limit`), to show where sending goes wrong
    and how long each zone's send takes.
    """
    editions = Edition.objects.filter(
        date__gte=dates.first, date__lte=dates.last, send_started_at__lte=now
    ).order_by("-date")[:limit]
    rows = (
        Delivery.objects.filter(edition__in=Subquery(editions.values("pk")))
        .values("time_zone", "edition")
        .annotate(
            deliveries=Count("pk"),
            delivered=Count("pk", filter=Q(status=Delivery.Status.SENT)),
            failed=Count("pk", filter=Q(status=Delivery.Status.FAILED)),
            bounced=Count("pk", filter=Q(status=Delivery.Status.BOUNCED)),
            missed=Count("pk", filter=Q(status=Delivery.Status.MISSED)),
            # Coalesce: a digest sent by hand has no scheduled moment; its
            # send began when the edition's did.
            began=Min(Coalesce("scheduled_for", "edition__send_started_at")),
            ended=Max("sent_at"),
        )
        .order_by()
        .values_list(
            "time_zone", "deliveries", "delivered", "failed", "bounced", "missed", "began", "ended"
        )
    )
    counts: dict[str, list[int]] = {}
    durations: dict[str, list[datetime.timedelta]] = {}
    for zone, *numbers, began, ended in rows:
        totals = counts.setdefault(zone, [0] * len(numbers))
        counts[zone] = [total + n for total, n in zip(totals, numbers, strict=True)]
        took = durations.setdefault(zone, [])
        if began is not None and ended is not None:
            took.append(max(ended - began, datetime.timedelta(0)))
    figures = [
        ZoneFigures(
            zone or "by hand",
            *numbers,
            median_duration=statistics.median_low(durations[zone]) if durations[zone] else None,
            longest_duration=max(durations[zone], default=None),
        )
        for zone, numbers in counts.items()
    ]
    return sorted(figures, key=lambda z: (-z.deliveries, z.time_zone))


def as_rows(items: Iterable[object], *fields: str) -> list[list[object]]:
    """Rows of attribute values, for tables and CSV."""
    return [[getattr(item, field) for field in fields] for item in items]
