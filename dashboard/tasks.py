"""The dashboard's periodic work (beat's schedule: config/settings CELERY_BEAT_SCHEDULE)."""

from celery import shared_task
from django.utils import timezone

from dashboard import daily, sends, summary


@shared_task
def snapshot_sends() -> int:
    """Count the sends the dashboard shows that may have changed (dashboard.sends)."""
    return sends.do_snapshot_sends(timezone.now())


@shared_task
def snapshot_days() -> int:
    """Count yesterday's membership history, and recent trial cohorts (dashboard.daily)."""
    return daily.do_snapshot_days(timezone.now())


@shared_task
def count_readers() -> None:
    """Readers by state, for the dashboard (dashboard.daily.do_count_readers)."""
    daily.do_count_readers(timezone.now())


@shared_task
def send_weekly_summaries() -> int:
    """Monday's summary to the staff who asked for it (dashboard.summary)."""
    return summary.do_send_weekly_summaries(timezone.now())
