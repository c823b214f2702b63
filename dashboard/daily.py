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
from dashboard.models import DailyFigures, MembershipChange

# A trial lasts TRIAL_DAYS; a failed first charge is retried for up to
# three weeks. After this a cohort's outcome rarely moves: it is frozen.
COHORT_OPEN_DAYS = 60
# The dashboard's longest range, and a little.
REACH_DAYS = 370


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
