"""The editors' desk: the next edition, its previews and test sends.

Curating an edition (order, left-out articles, note, hold) lives on the
Edition model, and which edition is "next" in newsletter.editions; this
module builds it, lists the mornings to come, and builds the exact email as
different readers would get it (delivery.emails), without writing anything.
"""

import datetime
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from delivery import emails
from delivery.emails import DigestMessage, DigestTemplate
from newsletter import calendar, editions, schedule
from newsletter.models import Article, Edition, Section
from subscriptions.models import DigestFormat, Membership, Subscriber

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

logger = logging.getLogger(__name__)


MAIL_ERRORS = emails.SEND_ERRORS


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


@dataclass(frozen=True)
class NextSend:
    """One zone's coming morning, as the desk lists them."""

    moment: datetime.datetime
    time_zone: str
    readers: int
    now: datetime.datetime
    # What it carries so far: published since the zone's previous send.
    since: datetime.datetime
    articles: int

    @property
    def local(self) -> datetime.datetime:
        return self.moment.astimezone(ZoneInfo(self.time_zone))

    @property
    def carries(self) -> str:
        """ "3 articles so far, since Wednesday 06:00 JST"."""
        count = f"{self.articles} article{'s' if self.articles != 1 else ''}"
        since = emails.since_label(self.since, self.time_zone)  # "Since Wednesday …"
        return f"{count} so far, s{since[1:]}"

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
    # Back to the previous sends too: what each carries starts there.
    start, end = today - calendar.LOOKBACK, today + calendar.LOOKAHEAD
    no_send = calendar.no_send_days(start, end)
    slots = (
        Subscriber.objects.entitled(now)
        .values("time_zone", "send_time")
        .annotate(readers=Count("pk"))
        .order_by()
    )
    coming = []
    for slot in slots:
        zone, send_time = slot["time_zone"], slot["send_time"]
        skipped = calendar.days_off(zone, start, end, no_send)
        moment = schedule.next_send_moment(now, send_time, zone, skipped)
        since = schedule.previous_send_moment(moment, send_time, zone, skipped)
        coming.append((moment, zone, slot["readers"], since))
    coming = sorted(coming)[:limit]
    return [
        NextSend(moment, zone, readers, now, since, articles_since(since, now))
        for moment, zone, readers, since in coming
    ]


def articles_since(since: datetime.datetime, now: datetime.datetime) -> int:
    """How many articles a morning after `since` carries so far (not those left out)."""
    return (
        Article.objects.published_between(since, now)
        .exclude(editionarticle__included=False)
        .count()
    )


def next_edition(now: datetime.datetime | None = None) -> Edition | None:
    """Build (or refresh) the next edition, as the morning send would; None if empty."""
    return editions.build_edition(editions.upcoming_edition_date(now), now)


def sample_subscriber(kind: str, *, email: str, name: str = "", zone: str = "") -> Subscriber:
    """An unsaved reader with an unsaved membership: previews write nothing."""
    if kind not in SampleReader.STATUSES:
        raise ValueError(f"Unknown sample reader {kind!r}.")
    subscriber = Subscriber(
        pk=0, email=email, name=name, time_zone=zone or settings.DIGEST_TIMEZONE
    )
    status = SampleReader.STATUSES[kind]
    trial_end = (
        timezone.now() + datetime.timedelta(days=10)
        if status == Membership.Status.TRIALING
        else None
    )
    subscriber.membership = Membership(subscriber=subscriber, status=status, trial_end=trial_end)
    return subscriber


def morning_of(edition: Edition, zone: str) -> datetime.datetime:
    """The edition's send moment in `zone` at the default delivery time."""
    return schedule.send_moment(edition.date, settings.DIGEST_SEND_TIME, zone)


def morning_label(edition: Edition, zone: str) -> str:
    """ "Thursday 3 December, 06:00 Asia/Tokyo"."""
    moment = morning_of(edition, zone)
    return f"{moment:%A} {moment.day} {moment:%B, %H:%M} {zone}"


def preview(
    edition: Edition,
    kind: str,
    *,
    zone: str = "",
    email: str = "reader@example.com",
    name: str = "",
    now: datetime.datetime | None = None,
    sections: frozenset[int] | None = None,
    digest_format: str = DigestFormat.FULL,
) -> DigestMessage:
    """The exact digest a reader of this kind in `zone` gets on the edition's morning there.

    It carries what that morning's send does for a reader who had the
    previous one: the articles published since the zone's previous send (up
    to now, while that morning is still to come), in the editors' order,
    with its "Since …" line, for a reader following `sections` (ids; None:
    every section) in `digest_format`. `zone` defaults to the newsroom's.
    """
    now = now or timezone.now()
    zone = zone or settings.DIGEST_TIMEZONE
    send_time = settings.DIGEST_SEND_TIME
    moment = morning_of(edition, zone)
    day = moment.astimezone(datetime.UTC).date()
    first, last = day - calendar.LOOKBACK, day + datetime.timedelta(days=1)
    skipped = calendar.days_off(zone, first, last, calendar.no_send_days(first, last))
    since = schedule.previous_send_moment(moment, send_time, zone, skipped)
    chosen = editions.stories_for(
        editions.window_articles(edition, since, min(moment, now)), sections
    )
    names = None
    if sections is not None:
        names = tuple(Section.objects.filter(pk__in=sections).values_list("name", flat=True))
    template = DigestTemplate(
        edition,
        chosen.stories,
        since=emails.since_label(since, zone),
        digest_format=digest_format,
        sections=names,
        others=chosen.others,
    )
    reader = sample_subscriber(kind, email=email, name=name or "Alex", zone=zone)
    reader.digest_format = digest_format
    return template.message_for(reader)


def send_test(
    edition: Edition,
    kind: str,
    user: "AbstractUser",
    zone: str = "",
    *,
    sections: frozenset[int] | None = None,
    digest_format: str = DigestFormat.FULL,
) -> str:
    """Send the real digest, as the sample reader would get it, to a staff member.

    For a reader following `sections` (None: every section) in `digest_format`.

    Returns the address it went to. Raises ValueError when the staff member
    has no address and TestSendFailed when the mail server refuses it.
    """
    if not user.email:
        raise ValueError("Your account has no email address: add one in your user settings.")
    message = preview(
        edition,
        kind,
        zone=zone,
        email=user.email,
        name=user.get_short_name(),
        sections=sections,
        digest_format=digest_format,
    )
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
