"""The editors' desk: the next edition, its previews and test sends.

Curating an edition (order, left-out articles, note, hold) lives on the
Edition model; this module picks which edition is "next" and builds the
exact email as different readers would get it, without writing anything.
"""

import datetime
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.db.models import Count
from django.utils import timezone

from newsletter import calendar, editions, schedule, sending
from newsletter.emails import DigestMessage, DigestTemplate
from newsletter.models import Edition
from subscriptions.models import Membership, Subscriber

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

logger = logging.getLogger(__name__)

# After the send time, a day with no edition yet still shows that day for a
# little while: beat may not have built it yet, and an edition built now for
# the next day would take the same articles (it starts after the same
# previous edition).
BEAT_GRACE = datetime.timedelta(minutes=10)

MAIL_ERRORS = sending.SEND_ERRORS


class SampleReader:
    """The readers an editor can preview the digest as."""

    PAYING = "paying"
    TRIALING = "trialing"
    PAST_DUE = "past_due"

    CHOICES = [
        (PAYING, "A paying reader"),
        (TRIALING, "A reader in the free trial"),
        (PAST_DUE, "A reader whose payment failed"),
    ]
    STATUSES = {
        PAYING: Membership.Status.ACTIVE,
        TRIALING: Membership.Status.TRIALING,
        PAST_DUE: Membership.Status.PAST_DUE,
    }


def upcoming_edition_date(now: datetime.datetime | None = None) -> datetime.date:
    """The date of the next morning send that has not started: what editors curate.

    schedule.next_edition_date() stays on today all day; once today's send
    has started (or today went by with nothing to send) the editors are
    preparing tomorrow's, so the next weekday is the one to show.
    """
    now = now or timezone.now()
    day = schedule.next_edition_date(now)
    following = schedule.next_edition_date(schedule.send_time_on(day) + datetime.timedelta(days=1))
    edition = Edition.objects.filter(date=day).first()
    if edition is not None:
        # Not started (being prepared, or held): still the one to curate.
        # Started, even early by hand with send_digest: the next one is.
        return day if edition.status in Edition.CURATABLE else following
    if now < schedule.send_time_on(day) + BEAT_GRACE:
        return day
    return following


@dataclass(frozen=True)
class NextSend:
    """One zone's coming morning, as the desk lists them."""

    moment: datetime.datetime
    time_zone: str
    readers: int
    now: datetime.datetime

    @property
    def local(self) -> datetime.datetime:
        return self.moment.astimezone(ZoneInfo(self.time_zone))

    @property
    def label(self) -> str:
        """ "Thursday 06:00 Asia/Tokyo, in 4 h 10 min, 1,204 readers"."""
        minutes = max(0, int((self.moment - self.now).total_seconds() // 60))
        hours, minutes = divmod(minutes, 60)
        wait = f"{hours} h {minutes} min" if hours else f"{minutes} min"
        readers = f"{self.readers:,} reader{'s' if self.readers != 1 else ''}"
        return f"{self.local:%A %H:%M} {self.time_zone}, in {wait}, {readers}"


def next_sends(now: datetime.datetime | None = None, limit: int = 8) -> list[NextSend]:
    """The next mornings to come, in every zone readers live in, soonest first."""
    now = now or timezone.now()
    # West of UTC the local date is still yesterday's.
    today = now.astimezone(datetime.UTC).date()
    start, end = today - datetime.timedelta(days=1), today + calendar.LOOKAHEAD
    no_send = calendar.no_send_days(start, end)
    slots = (
        Subscriber.objects.entitled(now)
        .values("time_zone", "send_time")
        .annotate(readers=Count("pk"))
        .order_by()
    )
    sends = [
        NextSend(
            schedule.next_send_moment(
                now,
                slot["send_time"],
                slot["time_zone"],
                calendar.days_off(slot["time_zone"], start, end, no_send),
            ),
            slot["time_zone"],
            slot["readers"],
            now,
        )
        for slot in slots
    ]
    return sorted(sends, key=lambda send: (send.moment, send.time_zone))[:limit]


def next_edition(now: datetime.datetime | None = None) -> Edition | None:
    """Build (or refresh) the next edition, as the morning send would; None if empty."""
    return editions.build_edition(upcoming_edition_date(now), now)


def sample_subscriber(kind: str, *, email: str, name: str = "") -> Subscriber:
    """An unsaved reader with an unsaved membership: previews write nothing."""
    if kind not in SampleReader.STATUSES:
        raise ValueError(f"Unknown sample reader {kind!r}.")
    subscriber = Subscriber(pk=0, email=email, name=name)
    status = SampleReader.STATUSES[kind]
    trial_end = (
        timezone.now() + datetime.timedelta(days=10)
        if status == Membership.Status.TRIALING
        else None
    )
    subscriber.membership = Membership(subscriber=subscriber, status=status, trial_end=trial_end)
    return subscriber


def preview(
    edition: Edition, kind: str, *, email: str = "reader@example.com", name: str = ""
) -> DigestMessage:
    """The exact digest the sample reader would get."""
    template = DigestTemplate(edition, list(edition.ordered_articles()))
    return template.message_for(sample_subscriber(kind, email=email, name=name or "Alex"))


def send_test(edition: Edition, kind: str, user: "AbstractUser") -> str:
    """Send the real digest, as the sample reader would get it, to a staff member.

    Returns the address it went to. Raises ValueError when the staff member
    has no address and TestSendFailed when the mail server refuses it.
    """
    if not user.email:
        raise ValueError("Your account has no email address: add one in your user settings.")
    message = preview(edition, kind, email=user.email, name=user.get_short_name())
    message.subject = f"[Test] {message.subject}"
    try:
        message.send()
    except MAIL_ERRORS as error:
        logger.warning("Test send of %s to %s failed: %s", edition, user.email, error)
        raise TestSendFailed(f"The mail server did not take the test email: {error}") from error
    logger.info("Test send of %s (%s) to %s", edition, kind, user.email)
    return user.email


class TestSendFailed(Exception):
    __test__ = False  # not a pytest test class
