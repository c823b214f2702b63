"""When digests go out: weekdays, the newsroom's today, and the morning send time.

Every function takes "now" (or a date) as its input; callers read the clock
once at the edge.
"""

import datetime
from collections.abc import Collection
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


# ---------------------------------------------------------------- each reader's morning
#
# A reader's send moment on a local date is their delivery time in their
# zone on that date, Monday to Friday of their own calendar, except the
# publisher's no-send days. zoneinfo keeps "06:00" at 06:00 local across
# daylight-saving changes.


def send_moment(day: datetime.date, send_time: datetime.time, zone: str) -> datetime.datetime:
    """The aware moment of `send_time` on `day` in `zone`."""
    return datetime.datetime.combine(day, send_time, tzinfo=ZoneInfo(zone))


def local_date(moment: datetime.datetime, zone: str) -> datetime.date:
    return moment.astimezone(ZoneInfo(zone)).date()


def is_send_day(day: datetime.date, no_send_days: Collection[datetime.date] = ()) -> bool:
    return is_weekday(day) and day not in no_send_days


def next_send_moment(
    after: datetime.datetime,
    send_time: datetime.time,
    zone: str,
    no_send_days: Collection[datetime.date] = (),
) -> datetime.datetime:
    """The first send moment strictly after `after`: a reader joining then gets it first."""
    return _nearest_send_moment(after, send_time, zone, no_send_days, step=1)


def previous_send_moment(
    before: datetime.datetime,
    send_time: datetime.time,
    zone: str,
    no_send_days: Collection[datetime.date] = (),
) -> datetime.datetime:
    """The last send moment strictly before `before`: where a first digest reaches back to."""
    return _nearest_send_moment(before, send_time, zone, no_send_days, step=-1)


def _nearest_send_moment(
    moment: datetime.datetime,
    send_time: datetime.time,
    zone: str,
    no_send_days: Collection[datetime.date],
    *,
    step: int,
) -> datetime.datetime:
    """Walk the local days from `moment` (forward for step 1, back for -1) to a send moment."""
    day = local_date(moment, zone)
    while True:
        candidate = send_moment(day, send_time, zone)
        beyond = candidate > moment if step > 0 else candidate < moment
        if beyond and is_send_day(day, no_send_days):
            return candidate
        day += datetime.timedelta(days=step)
