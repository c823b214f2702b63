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
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate

from dashboard.models import DailyFigures, EditionZoneSend, MembershipChange
from newsletter.models import Click, Edition, Section
from subscriptions.models import DAY_NAMES, DIGEST_DAYS, DigestFormat, Membership, Subscriber

Status = Membership.Status
EmailStatus = Subscriber.EmailStatus

# Statuses in which a reader pays (or Stripe is still collecting): MRR and
# "paying readers" count these. A past-due membership stays until Stripe
# gives up on the card and cancels it.
PAYING = (Status.ACTIVE, Status.PAST_DUE)
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


# --- Days ---------------------------------------------------------------------
# The history figures are sums of newsroom days: each day counted once by
# the daily snapshot (dashboard.daily, DailyFigures), or on the fly for a day
# it has not counted (today, or before beat's first run).


@dataclass(frozen=True)
class Day:
    date: datetime.date
    trials: int
    started: int
    stopped: int
    arr_change: int
    converted: int
    still_trialing: int


# A change that starts a trial (a reader has one trial at most).
_STARTS_TRIAL = Q(to_status=Status.TRIALING) & ~Q(from_status=Status.TRIALING)


def count_days(dates: DateRange, now: datetime.datetime) -> dict[datetime.date, Day]:
    """The range's newsroom days, changes up to `now`, and their trials' outcome by `now`.

    Two grouped queries whatever the range's length; the daily snapshot
    counts one day at a time (count_day), the figures a run of days it has
    not counted.
    """
    zone = newsroom_zone()
    changes = MembershipChange.objects.filter(at__gte=dates.start, at__lt=dates.end, at__lte=now)
    flows: dict[datetime.date, Any] = {
        row["day"]: row
        for row in changes.annotate(day=TruncDate("at", tzinfo=zone))
        .values("day")
        .annotate(trials=Count("pk", filter=_STARTS_TRIAL), **_flows())
    }
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
    cohorts: dict[datetime.date, Any] = {
        row["day"]: row
        for row in changes.filter(_STARTS_TRIAL)
        .annotate(
            day=TruncDate("at", tzinfo=zone),
            converted=Exists(later_paid),
            status_now=Subquery(status_then),
        )
        .values("day")
        .annotate(
            paid=Count("pk", filter=Q(converted=True)),
            still=Count("pk", filter=Q(status_now=Status.TRIALING) & Q(converted=False)),
        )
    }
    none: dict[str, Any] = {}
    return {
        day: Day(
            day,
            flows.get(day, none).get("trials", 0),
            flows.get(day, none).get("started", 0),
            flows.get(day, none).get("stopped", 0),
            flows.get(day, none).get("arr", 0),
            cohorts.get(day, none).get("paid", 0),
            cohorts.get(day, none).get("still", 0),
        )
        for day in dates.days()
    }


def count_day(day: datetime.date, now: datetime.datetime) -> Day:
    """One newsroom day, as count_days counts it."""
    return count_days(DateRange(day, day), now)[day]


def day_figures(dates: DateRange, now: datetime.datetime) -> dict[datetime.date, Day]:
    """Every day of the range up to `now`: from the snapshot where it has the day, else counted.

    A snapshot row counted after `now` (asking about the past) is not used:
    its trials' outcomes are from later than asked.
    """
    today = now.astimezone(newsroom_zone()).date()
    stored = {
        row.date: Day(
            row.date,
            row.trials,
            row.started,
            row.stopped,
            row.arr_change,
            row.converted,
            row.still_trialing,
        )
        for row in DailyFigures.objects.filter(
            date__gte=dates.first, date__lte=dates.last, date__lt=today, counted_at__lte=now
        )
    }
    missing = [day for day in dates.days() if day not in stored and day <= today]
    if missing:
        # Usually today alone; everything before beat's first run.
        stored.update(count_days(DateRange(missing[0], missing[-1]), now))
    # Days after `now` have not come yet: nothing happened on them.
    return {day: stored.get(day, Day(day, 0, 0, 0, 0, 0, 0)) for day in dates.days()}


def new_trials_per_day(dates: DateRange, now: datetime.datetime) -> list[Tally]:
    """Trials started on each day of the range (a reader has one trial at most)."""
    days = day_figures(dates, now)
    return [Tally(day.isoformat(), days[day].trials) for day in dates.days()]


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
    as converted when they became active. Days counted by the daily
    snapshot are as of its last count (within a day of `now`).
    """
    weeks: dict[datetime.date, list[int]] = {week: [0, 0, 0] for week in dates.weeks()}
    for day, figures in day_figures(dates, now).items():
        week = weeks[day - datetime.timedelta(days=day.weekday())]
        week[0] += figures.trials
        week[1] += figures.converted
        week[2] += figures.still_trialing
    return [Cohort(week, *counts) for week, counts in weeks.items()]


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
    discount; a paying membership whose amount Stripe has not told us counts
    as paying, for nothing. `now` is unused by the query (the mirror is the
    present) but kept so every figure is asked the same way.
    """
    totals = Membership.objects.filter(status__in=PAYING).aggregate(
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


def net_change(changes: QuerySet[MembershipChange]) -> Revenue:
    """What `changes` did to paying readers and yearly revenue, together."""
    totals = changes.aggregate(**_flows())
    return Revenue(totals["started"] - totals["stopped"], totals["arr"])


def _flows_by(
    periods: list[datetime.date],
    dates: DateRange,
    now: datetime.datetime,
    weekly: bool,
    mirror: Revenue | None,
) -> list[Flow]:
    """Paying readers started and stopped per period, with running totals.

    Each membership's changes alternate between paying and not, so the
    readers paying when the first period began are those paying now (the
    mirrored rows) less the net of every change since: the range's days,
    and whatever came after it. This also keeps the totals right for
    readers who were paying before the history began (dashboard installed
    later).
    """
    span = DateRange(periods[0], dates.last)
    days = day_figures(span, now)
    # The days count changes up to the range's end, or up to `now` inclusive
    # if that comes first; "after" is everything later.
    later = Q(at__gte=span.end) if span.end <= now else Q(at__gt=now)
    after = MembershipChange.objects.filter(later).aggregate(**_flows())
    mirror = mirror or revenue(now)
    paying = (
        mirror.paying
        - sum(d.started - d.stopped for d in days.values())
        - (after["started"] - after["stopped"])
    )
    arr = mirror.arr_cents - sum(d.arr_change for d in days.values()) - after["arr"]
    by_period: dict[datetime.date, list[int]] = {period: [0, 0, 0] for period in periods}
    for day, figures in days.items():
        period = day - datetime.timedelta(days=day.weekday()) if weekly else day.replace(day=1)
        totals = by_period[period]
        totals[0] += figures.started
        totals[1] += figures.stopped
        totals[2] += figures.arr_change
    flows = []
    for period, (started, stopped, arr_change) in by_period.items():
        arr += arr_change
        flows.append(Flow(period, paying, started, stopped, arr))
        paying += started - stopped
    return flows


def churn_per_month(
    dates: DateRange, now: datetime.datetime, mirror: Revenue | None = None
) -> list[Flow]:
    """Per month the range touches: paying at its start, stopped paying, MRR at its end.

    `mirror` is revenue() if the caller has it already (one pass over the
    memberships fewer).
    """
    return _flows_by(dates.months(), dates, now, weekly=False, mirror=mirror)


def net_growth_per_week(
    dates: DateRange, now: datetime.datetime, mirror: Revenue | None = None
) -> list[Flow]:
    """Per week the range touches: readers who started paying, stopped, and the difference."""
    return _flows_by(dates.weeks(), dates, now, weekly=True, mirror=mirror)


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


def _shown_editions(
    dates: DateRange, now: datetime.datetime, limit: int
) -> QuerySet[EditionZoneSend]:
    """The counted zones of the last `limit` editions of the range gone out by `now`."""
    editions = Edition.objects.filter(
        date__gte=dates.first, date__lte=dates.last, send_started_at__lte=now
    ).order_by("-date")[:limit]
    return EditionZoneSend.objects.filter(edition__in=Subquery(editions.values("pk")))


_COUNTS = ("deliveries", "delivered", "failed", "bounced", "missed", "complaints", "unsubscribes")


def edition_sends(
    dates: DateRange, now: datetime.datetime, limit: int = EDITIONS_SHOWN
) -> list[EditionSend]:
    """The last `limit` editions of the range whose send had started by `now`, oldest first.

    Read from the counts dashboard.sends keeps (as of its last run; the
    figure says when). "Unsubscribes" (and "complaints", a spam report
    through the ESP) are readers who got the digest and unsubscribed
    (complained) within 48 hours after it was sent: a reader who
    unsubscribes the morning after two digests counts for both.
    """
    rows = (
        _shown_editions(dates, now, limit)
        .values("edition__date")
        .annotate(**{f"total_{name}": Sum(name) for name in _COUNTS[1:]})
        .order_by("edition__date")
        .values_list("edition__date", *(f"total_{name}" for name in _COUNTS[1:]))
    )
    return [EditionSend(*row) for row in rows]


def counted_at(
    dates: DateRange, now: datetime.datetime, limit: int = EDITIONS_SHOWN
) -> datetime.datetime | None:
    """When the sends shown were last counted (the oldest of their counts)."""
    return _shown_editions(dates, now, limit).aggregate(at=Min("counted_at"))["at"]


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

    delivery.send_report.zone_sends() reports one edition slot by slot for the desk; this
    sums the zones' counts over many editions (a row per zone and edition,
    at most zones x `limit`), to show how long each zone's send takes and
    where sending goes wrong.
    """
    rows = (
        _shown_editions(dates, now, limit)
        .filter(deliveries__gt=0)
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
            deliveries=numbers[0],
            delivered=numbers[1],
            failed=numbers[2],
            bounced=numbers[3],
            missed=numbers[4],
            median_duration=statistics.median_low(durations[zone]) if durations[zone] else None,
            longest_duration=max(durations[zone], default=None),
        )
        for zone, numbers in counts.items()
    ]
    return sorted(figures, key=lambda z: (-z.deliveries, z.time_zone))


def as_rows(items: Iterable[object], *fields: str) -> list[list[object]]:
    """Rows of attribute values, for tables and CSV."""
    return [[getattr(item, field) for field in fields] for item in items]


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class StoryReads:
    title: str
    clicks: int
    # Distinct readers who clicked: known only with TRACK_READER_CLICKS.
    readers: int | None


def most_read(dates: DateRange, limit: int = 10) -> list[StoryReads]:
    """The stories readers opened most from their digests in the week ending on `dates.last`.

    Counted from the digest's tracked links (CLICK_TRACKING); no clicks
    without it.
    """
    week_start = max(dates.start, dates.end - datetime.timedelta(days=7))
    rows = (
        Click.objects.filter(clicked_at__gte=week_start, clicked_at__lt=dates.end)
        .values("article_id", "article__title")
        .annotate(clicks=Count("pk"), readers=Count("subscriber", distinct=True))
        .order_by("-clicks", "article__title")[:limit]
    )
    known = settings.TRACK_READER_CLICKS
    return [
        StoryReads(row["article__title"], row["clicks"], row["readers"] if known else None)
        for row in rows
    ]


@dataclass(frozen=True)
class ReaderChoices:
    """What the readers who get the digest chose: sections, formats and days."""

    # Per section (in the site's order): readers who follow it, those who
    # follow every section included.
    sections: list[Tally]
    every_section: int
    formats: list[Tally]
    days: list[Tally]


def reader_choices(now: datetime.datetime) -> ReaderChoices:
    """The entitled readers' choices at `now`: who follows each section, formats and days."""
    readers = Subscriber.objects.entitled(now).order_by()
    every = readers.filter(all_sections=True).count()
    chosen = dict(
        readers.filter(all_sections=False, sections__isnull=False)
        .values_list("sections")
        .annotate(count=Count("pk", distinct=True))
    )
    # A reader whose followed sections were all deleted follows every section.
    orphans = readers.filter(all_sections=False, sections__isnull=True).count()
    sections = [
        Tally(name, every + orphans + chosen.get(pk, 0))
        for pk, name in Section.objects.values_list("pk", "name")
    ]
    formats = dict(readers.values_list("digest_format").annotate(count=Count("pk")))
    days = {key: readers.filter(days__contains=key).count() for key in DIGEST_DAYS}
    return ReaderChoices(
        sections,
        every + orphans,
        [Tally(label, formats.get(value, 0)) for value, label in DigestFormat.choices],
        [Tally(DAY_NAMES[key], days[key]) for key in DIGEST_DAYS],
    )
