"""The publisher's calendar: no-send days, public holidays, and when a reader's next digest comes.

newsletter.schedule computes send moments from plain values; this module
adds what only the database and the settings know (the no-send days, and
with DIGEST_SKIP_PUBLIC_HOLIDAYS each reader's national holidays), for the
sender and for the pages and emails that promise a time.
"""

import datetime
import functools
from collections.abc import Collection
from importlib import resources

import holidays
from django.conf import settings
from django.utils import timezone

from newsletter import schedule
from newsletter.models import NoSendDay

# Far enough ahead for any promise we make, short enough to load at once.
LOOKAHEAD = datetime.timedelta(days=60)
# Back as far as a previous send day can be (a week of no-send days).
LOOKBACK = datetime.timedelta(days=10)


def no_send_days(start: datetime.date, end: datetime.date) -> set[datetime.date]:
    """The publisher's no-send days from `start` to `end`, inclusive (every zone)."""
    return set(
        NoSendDay.objects.filter(date__gte=start, date__lte=end).values_list("date", flat=True)
    )


@functools.cache
def _zone_countries() -> dict[str, str]:
    """IANA zone -> ISO 3166 country, from the tz database's own zone.tab (tzdata)."""
    table = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text()
    countries = {}
    for line in table.splitlines():
        if line and not line.startswith("#"):
            country, _coordinates, zone, *_comment = line.split("\t")
            countries[zone] = country
    return countries


def zone_country(zone: str) -> str | None:
    """The country a reader in `zone` lives in: "Asia/Tokyo" -> "JP"; None for UTC and the like."""
    return _zone_countries().get(zone)


@functools.cache
def _national_holidays(country: str, years: tuple[int, ...]) -> frozenset[datetime.date]:
    if country not in holidays.list_supported_countries():
        return frozenset()
    return frozenset(holidays.country_holidays(country, years=years))


def public_holidays(zone: str, start: datetime.date, end: datetime.date) -> set[datetime.date]:
    """National public holidays where `zone` is, from `start` to `end`, if the setting is on.

    National only: a region's own holidays (a US state's, a German Land's)
    are not known from the zone, so they are not skipped.
    """
    country = zone_country(zone)
    if not settings.DIGEST_SKIP_PUBLIC_HOLIDAYS or country is None:
        return set()
    years = tuple(range(start.year, end.year + 1))
    return {day for day in _national_holidays(country, years) if start <= day <= end}


def days_off(
    zone: str, start: datetime.date, end: datetime.date, no_send: set[datetime.date]
) -> set[datetime.date]:
    """Every date from `start` to `end` with no digest in `zone` besides weekends.

    `no_send` is no_send_days() for (at least) that span, read once by callers
    that look at many zones.
    """
    return no_send | public_holidays(zone, start, end)


def weekdays_off(
    weekdays: Collection[int], start: datetime.date, end: datetime.date
) -> set[datetime.date]:
    """The dates from `start` to `end` whose weekday (0 Monday) is not one of `weekdays`."""
    span = range((end - start).days + 1)
    days = (start + datetime.timedelta(days=offset) for offset in span)
    return {day for day in days if day.weekday() not in weekdays}


def next_digest_at(
    send_time: datetime.time,
    zone: str,
    after: datetime.datetime | None = None,
    weekdays: Collection[int] = range(5),
) -> datetime.datetime:
    """When a reader with this delivery time and zone gets their next digest after `after`.

    `weekdays`: the days of the week (0 Monday) the reader has a digest on.
    """
    after = after or timezone.now()
    today = after.astimezone(datetime.UTC).date()
    start, end = today - datetime.timedelta(days=1), today + LOOKAHEAD
    skipped = days_off(zone, start, end, no_send_days(start, end))
    skipped |= weekdays_off(weekdays, start, end)
    return schedule.next_send_moment(after, send_time, zone, skipped)
