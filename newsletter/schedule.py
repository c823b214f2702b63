"""When digests go out: weekdays, the newsroom's today, and the morning send time.

Every function takes "now" (or a date) as its input; callers read the clock
once at the edge.
"""

import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

SATURDAY = 5


def is_weekday(day: datetime.date) -> bool:
    return day.weekday() < SATURDAY


def local_today(now: datetime.datetime | None = None) -> datetime.date:
    """Today's date where the digest is sent (DIGEST_TIMEZONE)."""
    now = now or timezone.now()
    return now.astimezone(ZoneInfo(settings.DIGEST_TIMEZONE)).date()


def next_edition_date(now: datetime.datetime | None = None) -> datetime.date:
    """Today if it is a weekday where the digest is sent, else the next Monday."""
    day = local_today(now)
    while not is_weekday(day):
        day += datetime.timedelta(days=1)
    return day


def send_time_on(day: datetime.date) -> datetime.datetime:
    """The moment the morning send of `day` starts, as an aware datetime."""
    return datetime.datetime.combine(
        day, settings.DIGEST_SEND_TIME, tzinfo=ZoneInfo(settings.DIGEST_TIMEZONE)
    )


def first_digest_date(joined_at: datetime.datetime) -> datetime.date:
    """The edition a reader who joins at `joined_at` gets first.

    Before the morning send: that morning's. After it: the next weekday's.
    Friday evening and weekend signups get Monday's.
    """
    day = local_today(joined_at)
    while not is_weekday(day) or joined_at >= send_time_on(day):
        day += datetime.timedelta(days=1)
    return day
