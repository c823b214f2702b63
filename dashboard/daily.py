"""The daily snapshot of membership history: each newsroom day counted once (DailyFigures).

Beat runs do_snapshot_days every hour. A day is counted once it is over
(its changes are final: they are recorded as they happen); its trial
cohort is recounted for COHORT_OPEN_DAYS, while its readers can still
convert, then kept. The figures count on the fly any day that has no row
(dashboard.metrics.day_figures), so a missing run costs time, not truth.
"""

import datetime

from django.db import transaction

from dashboard import metrics
from dashboard.models import DailyFigures, MembershipChange, ReaderStates

# A trial lasts TRIAL_DAYS; a failed first charge is retried for up to
# three weeks. After this a cohort's outcome rarely moves: it is frozen.
COHORT_OPEN_DAYS = 60
# The dashboard's longest range, and a little.
REACH_DAYS = 370
# The readers figure reads a count at most this old (beat counts every 15
# minutes), else counts on the fly.
READERS_FRESH = datetime.timedelta(minutes=30)


def do_snapshot_days(now: datetime.datetime) -> int:
    """Count the days that need it, up to yesterday in the newsroom; return how many."""
    today = now.astimezone(metrics.newsroom_zone()).date()
    first_change = MembershipChange.objects.order_by("at").values_list("at", flat=True).first()
    if first_change is None:
        return 0
    first = max(
        first_change.astimezone(metrics.newsroom_zone()).date(),
        today - datetime.timedelta(days=REACH_DAYS),
    )
    counted = set(
        DailyFigures.objects.filter(
            date__gte=first, date__lt=today - datetime.timedelta(days=COHORT_OPEN_DAYS)
        ).values_list("date", flat=True)
    )
    days = [
        first + datetime.timedelta(days=n)
        for n in range((today - first).days)
        if first + datetime.timedelta(days=n) not in counted
    ]
    for day in days:
        figures = metrics.count_day(day, now)
        with transaction.atomic():
            DailyFigures.objects.update_or_create(
                date=day,
                defaults={
                    "trials": figures.trials,
                    "started": figures.started,
                    "stopped": figures.stopped,
                    "arr_change": figures.arr_change,
                    "converted": figures.converted,
                    "still_trialing": figures.still_trialing,
                    "counted_at": now,
                },
            )
    return len(days)


def do_count_readers(now: datetime.datetime) -> ReaderStates:
    """Count readers by state; keep one count a day of those older than a day."""
    tallies = metrics.readers_by_state(now)
    money = metrics.revenue(now)
    with transaction.atomic():
        states = ReaderStates.objects.create(
            counted_at=now,
            tallies=[[t.label, t.count] for t in tallies],
            paying=money.paying,
            arr_cents=money.arr_cents,
        )
        day_ago = now - datetime.timedelta(days=1)
        old = ReaderStates.objects.filter(counted_at__lt=day_ago)
        # The last count of each older day stays: a history of the states.
        keep = {}
        for pk, at in old.order_by("counted_at").values_list("pk", "counted_at"):
            keep[at.astimezone(metrics.newsroom_zone()).date()] = pk
        old.exclude(pk__in=keep.values()).delete()
    return states


def readers_now(now: datetime.datetime) -> tuple[list[metrics.Tally], datetime.datetime]:
    """Readers by state from the latest count if it is fresh, else counted now; and when."""
    latest = (
        ReaderStates.objects.filter(counted_at__lte=now, counted_at__gt=now - READERS_FRESH)
        .order_by("-counted_at")
        .first()
    )
    if latest is None:
        return metrics.readers_by_state(now), now
    return [metrics.Tally(label, count) for label, count in latest.tallies], latest.counted_at


def revenue_now(now: datetime.datetime) -> metrics.Revenue:
    """metrics.revenue, from the latest fresh count and the changes recorded since.

    The memberships' present is the count plus every change after it (each
    is recorded as the mirror is written): one small range of the history
    instead of a pass over every paying membership. With no fresh count,
    metrics.revenue itself.
    """
    latest = (
        ReaderStates.objects.filter(counted_at__lte=now, counted_at__gt=now - READERS_FRESH)
        .order_by("-counted_at")
        .first()
    )
    if latest is None:
        return metrics.revenue(now)
    since = metrics.net_change(MembershipChange.objects.filter(at__gt=latest.counted_at))
    return metrics.Revenue(latest.paying + since.paying, latest.arr_cents + since.arr_cents)
