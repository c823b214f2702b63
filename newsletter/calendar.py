"""The publisher's calendar: no-send days, and when a reader's next digest comes.

newsletter.schedule computes send moments from plain values; this module
adds what only the database knows (the no-send days), for the sender and
for the pages and emails that promise a time.
"""

import datetime

from django.utils import timezone

from newsletter import schedule
from newsletter.models import NoSendDay

# Far enough ahead for any promise we make, short enough to load at once.
LOOKAHEAD = datetime.timedelta(days=60)


def no_send_days(start: datetime.date, end: datetime.date) -> set[datetime.date]:
    """The no-send days from `start` to `end`, inclusive."""
    return set(
        NoSendDay.objects.filter(date__gte=start, date__lte=end).values_list("date", flat=True)
    )


def next_digest_at(
    send_time: datetime.time, zone: str, after: datetime.datetime | None = None
) -> datetime.datetime:
    """When a reader with this delivery time and zone gets their next digest after `after`."""
    after = after or timezone.now()
    today = after.astimezone(datetime.UTC).date()
    skipped = no_send_days(today - datetime.timedelta(days=1), today + LOOKAHEAD)
    return schedule.next_send_moment(after, send_time, zone, skipped)
