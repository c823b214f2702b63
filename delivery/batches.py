"""A batch of deliveries: claimed, sent over one mail connection, and recorded in its ledger.

A batch claims only `queued` rows of its id range, so two senders never
send the same row, and holds them with a lease it renews while it works
(delivery.leases). Its ledger marks rows sent every DIGEST_CHECKPOINT_EVERY
emails: a worker killed mid-batch leaves at most that many sent but
unmarked, sent again once its lease runs out. Whatever stops a batch, the
rows it did not send go back to the queue (release_claims).
"""

import datetime
import itertools
import logging
import queue
import re
import smtplib
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import cast

from anymail.exceptions import AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import mailers
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db import transaction
from django.db.models import (
    Case,
    F,
    Value,
    When,
)
from django.utils import timezone

from config import logcontext
from delivery import counting
from delivery.deliverability import health, suppression
from delivery.deliverability.verp import verp_address
from delivery.emails import SEND_ERRORS, DigestTemplate, since_label
from delivery.kept import KeptRecently
from delivery.leases import Lease, durably, lease_length
from delivery.models import Delivery, message_id_for
from delivery.recovery import RESUMED_NOTE, mark_missed
from delivery.wire import carriers, rate, relay_places, smtp
from delivery.wire.backend import signing_for
from delivery.wire.esp import batch_carrier_for
from delivery.wire.mime import fast_digest
from delivery.wire.outcomes import Carrier, Refused, Throttled, Unconfirmed
from newsletter.editions import ReaderStories, stories_for, window_articles
from newsletter.models import Article, Edition, Section
from newsletter.schedule import local_date
from subscriptions.addresses import mask_addresses
from subscriptions.models import DigestFormat, Subscriber

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


# A delivery and what became of its message: None when the server accepted it.
type Outcome = tuple[Delivery, Exception | None]


class TransientSendError(Exception):
    """The mail server or ESP is unavailable for now; retry the batch later."""


class ThrottledSend(TransientSendError):
    """The server asked to slow down: the batch is retried later, nobody's attempt counted."""


# SMTP answers that mean "slow down" rather than "unavailable" (Postfix's
# and the big mailbox providers' rate limits: 421 4.7.0, 454 4.7.0, 451 4.7.1).
SMTP_THROTTLING = re.compile(rb"throttl|rate limit|too many|slow down", re.I)


@dataclass
class BatchReport:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    requeued: int = 0
    # How many each mailer carried: "default", or "fallback" (delivery.wire.carriers).
    carried: dict[str, int] = field(default_factory=dict)

    def add(self, other: "BatchReport") -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.skipped += other.skipped
        self.requeued += other.requeued
        for carrier, count in other.carried.items():
            self.carried[carrier] = self.carried.get(carrier, 0) + count


def batch_ranges(
    edition: Edition,
    size: int | None = None,
    *,
    scheduled_for: datetime.datetime | None = None,
    after: int = 0,
) -> Iterator[tuple[int, int]]:
    """Split the queued deliveries (of one send moment) into (first_id, last_id) ranges.

    Each range as soon as it is known: the first batch need not wait for the
    last. Rows a batch waiting to retry holds (a live lease) are left to it.
    `after`: only rows of a later id (those of the audience's next chunk).
    """
    size = size or settings.DIGEST_BATCH_SIZE
    queued = edition.deliveries.filter(status=Delivery.Status.QUEUED, pk__gt=after).exclude(
        lease_until__gte=timezone.now()
    )
    if scheduled_for is not None:
        queued = queued.filter(scheduled_for=scheduled_for)
    ids = queued.order_by("pk").values_list("pk", flat=True)
    chunk: list[int] = []
    for pk in ids.iterator(chunk_size=5000):
        chunk.append(pk)
        if len(chunk) == size:
            yield (chunk[0], chunk[-1])
            chunk = []
    if chunk:
        yield (chunk[0], chunk[-1])


@dataclass
class Claim:
    """The rows a batch claimed, in id order, and the zones of their readers' mornings."""

    ids: list[int]
    zones: set[str]


def claim(edition_id: int, first_id: int, last_id: int) -> Claim:
    """Mark the queued deliveries in the range as ours.

    Rows another sender has locked are skipped (PostgreSQL); on SQLite the
    write transaction itself serialises claims. The rows themselves are read
    by `read_claimed` (ClaimedRows: at once, or a part at a time).
    """
    now = timezone.now()
    mark_missed(now)  # a morning that is over is not sent late
    with transaction.atomic():
        claimed = list(
            # Lock the deliveries only: locking the joined edition row too would
            # make every other sender skip all its rows.
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                edition_id=edition_id,
                pk__gte=first_id,
                pk__lte=last_id,
                status=Delivery.Status.QUEUED,
            )
            # A hold placed after the first zone went holds the rest.
            .exclude(edition__status=Edition.Status.HELD)
            .order_by("pk")
            .values_list("pk", "time_zone")
        )
        ids = [pk for pk, _zone in claimed]
        # Attempts are counted when a send is tried, not here: a batch that
        # cannot even connect has tried nobody.
        Delivery.objects.filter(pk__in=ids).update(
            status=Delivery.Status.SENDING, claimed_at=now, lease_until=now + lease_length()
        )
    return Claim(ids, {zone for _pk, zone in claimed})


def read_claimed(ids: list[int]) -> list[Delivery]:
    """The claimed deliveries, with only what the digest reads.

    Whole rows would cost a fair part of a batch.
    """
    return list(
        Delivery.objects.filter(pk__in=ids)
        .select_related("subscriber__membership")
        .only(
            "attempts",
            "scheduled_for",
            "window_start",
            "time_zone",
            "digest_format",
            "subscriber__email",
            "subscriber__name",
            "subscriber__pause_until",
            "subscriber__all_sections",
            "subscriber__digest_format",
            "subscriber__membership__status",
            "subscriber__membership__trial_end",
            "subscriber__membership__past_due_since",
        )
        .order_by("pk")
    )


def is_permanent(error: Exception) -> bool:
    """A refusal of this message or recipient: retrying will not help.

    Anything else (connection lost, 4xx "try later", an ESP's API error) is
    treated as transient: the batch is retried with backoff, and a reader
    fails only after MAX_ATTEMPTS.
    """
    if isinstance(error, AnymailRecipientsRefused | Refused):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500 and not isinstance(error, smtplib.SMTPSenderRefused)
    return False


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:1000]


# Distinct contents a worker keeps rendered, the least recently used let go
# first: readers who share a send slot, a window, their sections and their
# format share one. A morning's batches meet at most its section sets times
# its formats (16 x 2 in make bench) and come one morning after another, so
# a few mornings' worth keeps the renders once per morning and process while
# the memory of full digests (each kept with its fast path's pieces) stays small.
RENDERS_KEPT = 64
_rendered: KeptRecently[tuple[object, ...], DigestTemplate] = KeptRecently(RENDERS_KEPT)


def digest_template(
    edition: Edition,
    articles: list[Article] | None = None,
    since: str = "",
    *,
    digest_format: str = DigestFormat.FULL,
    sections: tuple[str, ...] | None = None,
    others: int = 0,
) -> DigestTemplate:
    """The digest of this content, rendered once per worker process, not once per reader.

    `articles` are what one content carries (editions.window_articles, then
    the reader's sections: editions.stories_for; by default the edition's
    own list). Rendered again if anything it shows changes (an editor fixing
    a title mid-send, say) or the settings it reads are changed, as tests do.
    """
    if articles is None:
        articles = list(edition.ordered_articles())
    key = (
        edition.pk,
        edition.date,
        edition.editor_note,
        since,
        digest_format,
        sections,
        others,
        tuple((article.pk, article.updated_at) for article in articles),
        settings.SITE_URL,
        settings.NEWSLETTER_NAME,
        settings.DEFAULT_FROM_EMAIL,
        tuple(settings.DIGEST_REPLY_TO),
        settings.UNSUBSCRIBE_MAILTO,
        settings.CLICK_TRACKING,
        settings.TRACK_READER_CLICKS,
    )
    return _rendered.get(
        key,
        lambda: DigestTemplate(
            edition,
            articles,
            since=since,
            digest_format=digest_format,
            sections=sections,
            others=others,
        ),
    )


class Contents:
    """What each delivery of a batch carries, computed once per distinct content.

    A content is what readers share: the window (and the zone its "Since"
    line names), the sections they follow and their format. Its digest is
    composed once per process for all the windows that hold the same
    stories (delivery.emails.composed: the "Since" line is a reader slot).
    Kept for the batch (seconds): an edit made meanwhile reaches the next one.
    """

    def __init__(self, edition: Edition) -> None:
        self.edition = edition
        self._windows: dict[tuple[object, ...], list[Article]] = {}
        self._stories: dict[tuple[object, ...], ReaderStories] = {}
        self._digests: dict[tuple[object, ...], DigestTemplate] = {}
        self._followed: dict[int, frozenset[int]] = {}
        self._section_names = dict(Section.objects.values_list("pk", "name"))

    def add(self, deliveries: Iterable[Delivery]) -> None:
        """Learn the sections followed by these readers who do not follow every section.

        One query for each part of the batch read, whatever its contents.
        """
        choosy = [d.subscriber_id for d in deliveries if not d.subscriber.all_sections]
        rows = Subscriber.sections.through.objects.filter(subscriber_id__in=choosy)
        followed: dict[int, set[int]] = defaultdict(set)
        for subscriber_id, section_id in rows.values_list("subscriber_id", "section_id"):
            followed[subscriber_id].add(section_id)
        self._followed |= {reader: frozenset(ids) for reader, ids in followed.items()}

    def articles(self, delivery: Delivery) -> list[Article]:
        """Every article of the delivery's window, whatever the reader's sections."""
        if delivery.window_start is None or delivery.scheduled_for is None:
            return list(self.edition.ordered_articles())
        key = (delivery.window_start, delivery.scheduled_for)
        if key not in self._windows:
            self._windows[key] = window_articles(
                self.edition, delivery.window_start, delivery.scheduled_for
            )
        return self._windows[key]

    def followed(self, delivery: Delivery) -> frozenset[int] | None:
        """The ids of the sections the reader follows; None: every section.

        Following none (all deleted) is following every section, as
        Subscriber.followed_section_ids says.
        """
        if delivery.subscriber.all_sections:
            return None
        return self._followed.get(delivery.subscriber_id) or None

    def stories(self, delivery: Delivery) -> ReaderStories:
        """The stories of the reader's window in their sections (and the lead and unsectioned)."""
        followed = self.followed(delivery)
        key = (delivery.window_start, delivery.scheduled_for, followed)
        stories = self._stories.get(key)
        if stories is None:
            stories = self._stories[key] = stories_for(self.articles(delivery), followed)
        return stories

    def digest(self, delivery: Delivery) -> DigestTemplate:
        followed = self.followed(delivery)
        # As chosen when the audience was written (what the send report counts).
        digest_format = delivery.digest_format or delivery.subscriber.digest_format
        key = (
            delivery.window_start,
            delivery.scheduled_for,
            delivery.time_zone,
            followed,
            digest_format,
        )
        digest = self._digests.get(key)
        if digest is None:
            stories = self.stories(delivery)
            digest = self._digests[key] = digest_template(
                self.edition,
                stories.stories,
                since_label(delivery.window_start, delivery.time_zone),
                digest_format=digest_format,
                sections=self.section_names(followed),
                others=stories.others,
            )
        return digest

    def section_names(self, followed: frozenset[int] | None) -> tuple[str, ...] | None:
        """The names of the sections followed, in the site's order; None for every section."""
        if followed is None:
            return None
        return tuple(name for pk, name in self._section_names.items() if pk in followed)


@dataclass
class Settled:
    """What a batch does after the outcomes it just learnt (BatchLedger.settle)."""

    # The connection dropped: go on over a new one, first with these, which never went.
    reconnect: bool = False
    resend: list[Delivery] = field(default_factory=list)
    # The server is unavailable ("try later", connection lost): stop, retry the batch.
    unavailable: list[tuple[Delivery, Exception]] = field(default_factory=list)
    # The server asked to slow down: stop, retry the batch later, nobody's attempt counted.
    throttled: list[tuple[Delivery, Exception]] = field(default_factory=list)


class BatchLedger:
    """What happened to each claimed row, written back in a few queries."""

    def __init__(self, carrier: str = carriers.PRIMARY) -> None:
        self.carrier = carrier
        self.sent: list[int] = []
        self.unconfirmed: list[int] = []
        # Unconfirmed sends tried again (DIGEST_RESEND_UNCONFIRMED), among the deferred.
        self.unconfirmed_resent: list[int] = []
        self.failed: dict[str, list[int]] = defaultdict(list)
        self.deferred: dict[str, list[int]] = defaultdict(list)
        self.skipped: dict[str, list[int]] = defaultdict(list)
        # 5xx answers at send time: bounces of their readers (delivery.deliverability.suppression).
        self.refused: list[tuple[Delivery, Exception]] = []
        self.report = BatchReport()

    def settle(self, outcomes: list[Outcome]) -> "Settled":
        """Record what became of each message; say what the batch must do about the rest."""
        settled = Settled()
        for delivery, error in outcomes:
            if error is None:
                self.record_sent(delivery)
            elif isinstance(error, Unconfirmed):
                # Most likely delivered: recorded so, not sent again blindly.
                # Unless the publisher prefers one more try to a possible miss.
                if settings.DIGEST_RESEND_UNCONFIRMED and delivery.attempts == 0:
                    self.deferred[describe(error)].append(delivery.pk)
                    self.unconfirmed_resent.append(delivery.pk)
                else:
                    self.unconfirmed.append(delivery.pk)
                logger.warning("Digest to %s not confirmed: %s", delivery.subscriber.email, error)
                settled.reconnect = True
            elif isinstance(error, smtp.NotSent) and settled.reconnect:
                # Behind a message the connection dropped on: never went out.
                settled.resend.append(delivery)
            elif is_throttling(error):
                settled.throttled.append((delivery, error))
            elif isinstance(error, ValueError):
                logger.warning("Digest to %s impossible: %s", delivery.subscriber.email, error)
                self.failed[describe(error)].append(delivery.pk)
            elif is_permanent(error):
                logger.warning("Digest to %s refused: %s", delivery.subscriber.email, error)
                self.failed[describe(error)].append(delivery.pk)
                self.refused.append((delivery, error))
            elif is_deferral(error):
                # This reader later (the sweep comes back); the others now.
                logger.info("Digest to %s deferred: %s", delivery.subscriber.email, error)
                self.deferred[describe(error)].append(delivery.pk)
            else:
                settled.unavailable.append((delivery, error))
        return settled

    def record_sent(self, delivery: Delivery) -> None:
        self.sent.append(delivery.pk)
        if len(self.sent) >= settings.DIGEST_CHECKPOINT_EVERY:
            self.flush_sent()

    def flush_sent(self) -> None:
        """Mark the sent rows sent: retried on a new connection if the database went away."""
        if not self.sent:
            return
        sent_at = timezone.now()
        # Only rows still ours (sending): a repeat of this write after a
        # lost connection whose first try did land changes nothing.
        rows = Delivery.objects.filter(pk__in=self.sent, status=Delivery.Status.SENDING)

        @transaction.atomic
        def write() -> None:
            marked = rows.update(
                status=Delivery.Status.SENT,
                sent_at=sent_at,
                lease_until=None,
                carrier=self.carrier,
                attempts=F("attempts") + 1,
                # A resumed row keeps its note once sent: it is the record that
                # this reader may have had the email twice.
                last_error=Case(
                    When(last_error=RESUMED_NOTE, then=Value(RESUMED_NOTE)), default=Value("")
                ),
            )
            counting.add("digests_sent", marked, carrier=self.carrier)

        durably(write, "marking digests sent")
        self.report.sent += len(self.sent)
        self.report.carried[self.carrier] = self.report.carried.get(self.carrier, 0) + len(
            self.sent
        )
        self.sent = []

    def flush(self) -> None:
        self.flush_sent()
        self.report.requeued += durably(self._flush_outcomes, "recording the batch's outcomes")
        self.report.sent += len(self.unconfirmed)
        self.report.failed += sum(len(ids) for ids in self.failed.values())
        self.report.skipped += sum(len(ids) for ids in self.skipped.values())
        self.unconfirmed.clear()
        self.unconfirmed_resent.clear()
        suppression.record_refusals(self.refused)
        self.refused.clear()
        self.failed.clear()
        self.deferred.clear()
        self.skipped.clear()

    @transaction.atomic
    def _flush_outcomes(self) -> int:
        """Write every outcome but "sent" in one transaction; return how many were requeued."""
        # Each write takes only rows still ours (sending), so that a repeat
        # after a lost connection whose first try did land counts nothing.
        ours = Delivery.objects.filter(status=Delivery.Status.SENDING)
        recorded_sent = 0
        if self.unconfirmed:
            recorded_sent = ours.filter(pk__in=self.unconfirmed).update(
                status=Delivery.Status.SENT,
                sent_at=timezone.now(),
                lease_until=None,
                carrier=self.carrier,
                attempts=F("attempts") + 1,
                last_error=Delivery.UNCONFIRMED_NOTE,
            )
        # Counted before release_claims() below hands them back to the queue.
        resent = (
            ours.filter(pk__in=self.unconfirmed_resent).count() if self.unconfirmed_resent else 0
        )
        failed = 0
        for error, ids in self.failed.items():
            failed += ours.filter(pk__in=ids).update(
                status=Delivery.Status.FAILED,
                # Editors read failure reasons; a refusal quotes the address.
                last_error=mask_addresses(error),
                attempts=F("attempts") + 1,
                lease_until=None,
            )
        requeued = 0
        for error, ids in self.deferred.items():
            requeued += release_claims(ids, error, tried=ids, carrier=self.carrier)
        for reason, ids in self.skipped.items():
            Delivery.objects.filter(pk__in=ids).update(
                status=Delivery.Status.SKIPPED, last_error=reason, lease_until=None
            )
        counting.add("digests_sent", recorded_sent, carrier=self.carrier)
        counting.add("digests_unconfirmed", recorded_sent + resent, carrier=self.carrier)
        counting.add("digests_failed", failed, carrier=self.carrier)
        return requeued


def release_claims(
    delivery_ids: list[int],
    error: BaseException | str,
    *,
    tried: Iterable[int] = (),
    carrier: str = carriers.PRIMARY,
) -> int:
    """Give claimed rows that were not sent back to the queue; return how many went back.

    `tried` are the rows whose send was attempted over `carrier` and met
    `error`: their attempt counts, and one that has had MAX_ATTEMPTS is
    failed instead; the others are counted deferred (delivery.counting).
    """
    message = mask_addresses(error if isinstance(error, str) else describe(error))
    rows = Delivery.objects.filter(pk__in=delivery_ids, status=Delivery.Status.SENDING)
    tried = list(tried)

    @transaction.atomic
    def write() -> int:
        attempted = rows.filter(pk__in=tried).update(attempts=F("attempts") + 1) if tried else 0
        gave_up = rows.filter(pk__in=tried, attempts__gte=MAX_ATTEMPTS).update(
            status=Delivery.Status.FAILED,
            last_error=f"Gave up after {MAX_ATTEMPTS} attempts: {message}",
            lease_until=None,
        )
        requeued = rows.update(
            status=Delivery.Status.QUEUED, claimed_at=None, lease_until=None, last_error=message
        )
        counting.add("digests_deferred", attempted - gave_up, carrier=carrier)
        counting.add("digests_failed", gave_up, carrier=carrier)
        return requeued

    return durably(write, "handing rows back to the queue")


def hold_for_retry(edition_id: int, first_id: int, last_id: int, seconds: float) -> int:
    """The queued rows of a batch waiting `seconds` to retry: held by it, not stalled.

    Not an editor's hold on an edition (Edition.hold): a lease on rows, so
    that the sweep leaves them to the retry.
    """
    until = timezone.now() + datetime.timedelta(seconds=seconds) + lease_length()
    return durably(
        lambda: Delivery.objects.filter(
            edition_id=edition_id,
            pk__gte=first_id,
            pk__lte=last_id,
            status=Delivery.Status.QUEUED,
        ).update(lease_until=until),
        "holding rows for a retry",
    )


NOT_ENTITLED = "Not entitled or not deliverable at send time."
PAUSED = "Paused by the reader."
NOTHING_NEW = "Nothing new since the reader's previous digest."
NOTHING_FOR_YOU = "Nothing new in the sections the reader follows."


def is_paused(delivery: Delivery) -> bool:
    """The reader paused their digest past this delivery's local date."""
    pause_until = delivery.subscriber.pause_until
    if pause_until is None or delivery.scheduled_for is None:
        return False
    zone = delivery.time_zone or delivery.subscriber.time_zone
    return pause_until > local_date(delivery.scheduled_for, zone)


def is_throttling(error: Exception) -> bool:
    """The server asks the sender to slow down: an ESP's 429, a relay's 421/454/451 "throttling"."""
    if isinstance(error, Throttled):
        return True
    if isinstance(error, smtplib.SMTPResponseException) and error.smtp_code in (421, 451, 454):
        text = error.smtp_error
        return bool(SMTP_THROTTLING.search(text if isinstance(text, bytes) else str(text).encode()))
    return False


def is_deferral(error: Exception) -> bool:
    """A "try later" about this recipient only (greylisting, a full mailbox)."""
    return isinstance(error, smtplib.SMTPRecipientsRefused) and not is_permanent(error)


# Over a far relay's pool a batch's first emails go once this many of its
# rows are read, and the rest are read a part at a time while those are on
# the wire. Read whole before the first email, 1,000 rows kept the pool's
# connections idle for about 0.16 s of the batch's 2.4 s (PostgreSQL, a
# relay 50 ms away: docs/performance.md). Elsewhere the batch's thread is
# the one at work, and one read of all its rows costs it least.
FIRST_PART = 100
PART = 300


class ClaimedRows:
    """The claimed rows of a batch still to read, and what it knows of those it read."""

    def __init__(self, edition: Edition, ids: list[int]) -> None:
        self.unread = deque(ids)
        self.entitled: set[int] = set()
        self.contents = Contents(edition)

    def read(self, count: int) -> list[Delivery]:
        """The next `count` rows (fewer at the end); their readers' entitlement and sections."""
        part = list(itertools.islice(self.unread, count))
        deliveries = read_claimed(part)
        # Entitlement and deliverability may have changed since the send started.
        self.entitled.update(
            Subscriber.objects.entitled()
            .filter(pk__in=[d.subscriber_id for d in deliveries])
            .order_by()
            .values_list("pk", flat=True)
        )
        self.contents.add(deliveries)
        # Unread until read whole: a part that failed to read goes back to the queue too.
        for _ in part:
            self.unread.popleft()
        return deliveries


@logcontext.scoped
def send_batch(edition_id: int, first_id: int, last_id: int) -> BatchReport:
    """Send the queued deliveries of one range over one mail connection.

    Raises TransientSendError, with the unsent rows back in the queue, when
    the mail server is unavailable or answers "try again later".
    """
    pause = health.sends_paused()
    if pause is not None:
        # Complaints passed the pause rate: the rows wait, queued, for staff.
        logger.warning("Edition %s: sends paused (%s)", edition_id, pause.reason)
        return BatchReport()
    claimed = claim(edition_id, first_id, last_id)
    if not claimed.ids:
        return BatchReport()
    edition = Edition.objects.get(pk=edition_id)
    # The batch's log lines name its edition, and its zone when it has one
    # (a morning's batches do; a by-hand send's mix the readers' zones).
    zones = claimed.zones
    logcontext.bind(edition=edition.date, **({"zone": zones.pop()} if len(zones) == 1 else {}))
    rows = ClaimedRows(edition, claimed.ids)
    contents = rows.contents
    # Deliveries read and still to send, and those sent whose outcome is not
    # known yet (a pipelined message in flight): with the rows not read yet,
    # what goes back to the queue if the batch stops.
    todo: deque[Delivery] = deque()
    in_flight: list[Delivery] = []
    # The primary mailer, or FALLBACK_SMTP_URL's while the primary keeps failing.
    carrier = carriers.choose()
    ledger = BatchLedger(carrier)
    lease = Lease(claimed.ids)
    connection = mailers[carrier]
    # A far relay's connections, kept from this process's previous batch:
    # the batch goes on over them, with no connection to open or greet.
    send: Carrier | None = kept_pools.take(connection, edition)
    if send is None:
        try:
            connection.open()
        except SEND_ERRORS as error:
            release_claims(claimed.ids, error)
            carriers.failed(carrier)
            raise TransientSendError(describe(error)) from error

    # Whether the pool, and with it the batch's own connection, is kept for the next batch.
    kept = False
    # SEND_RATE_LIMIT: each email waits for its place in the shared schedule.
    pace = rate.cap()

    def stop_carrier() -> list[int]:
        """Stop the carrier; record what it learnt while stopping; the rows that did not go."""
        if send is None:
            return []
        late = send.abort()
        for done, _error in late:
            in_flight.remove(done)
        more = ledger.settle(late)
        return [d.pk for d, _error in (*more.unavailable, *more.throttled)] + [
            d.pk for d in more.resend
        ]

    try:
        try:
            send = send or carrier_for(connection, edition)
        except SEND_ERRORS as error:
            # The connection is not usable after all (EHLO failed, or the
            # backend's open() failed silently): nobody was tried.
            release_claims(claimed.ids, error)
            raise TransientSendError(describe(error)) from error
        reading_ahead = isinstance(send, SMTPPool)
        todo.extend(rows.read(FIRST_PART if reading_ahead else len(claimed.ids)))
        while todo or rows.unread or in_flight:
            if not todo and rows.unread:
                todo.extend(rows.read(PART if reading_ahead else len(rows.unread)))
                continue
            if todo:
                delivery = todo.popleft()
                lease.keep_alive()
                if delivery.subscriber_id not in rows.entitled:
                    ledger.skipped[NOT_ENTITLED].append(delivery.pk)
                    continue
                if is_paused(delivery):
                    ledger.skipped[PAUSED].append(delivery.pk)
                    continue
                if not contents.stories(delivery).stories and not settings.DIGEST_SEND_WHEN_EMPTY:
                    nothing = NOTHING_FOR_YOU if contents.articles(delivery) else NOTHING_NEW
                    ledger.skipped[nothing].append(delivery.pk)
                    continue
                if pace is not None:
                    pace.take()
                in_flight.append(delivery)
                outcomes = send.send(delivery, contents.digest(delivery))
            else:
                outcomes = send.finish()
                if not outcomes:
                    raise RuntimeError("The sender lost track of a message in flight.")
            for done, _error in outcomes:
                in_flight.remove(done)
            settled = ledger.settle(outcomes)
            if settled.unavailable or settled.throttled:
                # The server is unavailable, or asks to slow down: the rest
                # waits for the retry. Only an unavailable server's answer
                # counts as an attempt: a throttled reader was never refused,
                # nor one whose message was lost as the throttling server hung up.
                throttled = [done.pk for done, _error in settled.throttled]
                tried = [] if throttled else [done.pk for done, _error in settled.unavailable]
                throttled += [done.pk for done, _error in settled.unavailable if throttled]
                cause = (settled.throttled or settled.unavailable)[0][1]
                not_gone = stop_carrier()
                ledger.flush()
                unsent = [
                    *throttled,
                    *tried,
                    *not_gone,
                    *(d.pk for d in (*settled.resend, *in_flight, *todo)),
                    *rows.unread,
                ]
                ledger.report.requeued += release_claims(
                    unsent, cause, tried=tried, carrier=carrier
                )
                logger.warning(
                    "Edition %s: mail server %s, %d deliveries requeued: %s",
                    edition.date,
                    "throttling" if settled.throttled else "unavailable",
                    len(unsent),
                    cause,
                )
                stop = ThrottledSend if settled.throttled else TransientSendError
                raise stop(describe(cause)) from cause
            if outcomes and send.records_each_window:
                # One call answered for many readers: recorded before the next
                # call goes, so a worker killed mid-call doubles only that call.
                ledger.flush()
            if send.reconnects_itself:
                # The carrier opens a dropped connection again itself; what
                # never went out goes again with the rest.
                todo.extendleft(reversed(settled.resend))
            elif settled.reconnect:
                # The connection dropped: the rest of the batch goes over a new one.
                todo.extendleft(reversed(settled.resend))
                connection.close()
                try:
                    connection.open()
                    send = carrier_for(connection, edition)
                except SEND_ERRORS as reconnect_error:
                    ledger.flush()
                    unsent = [*(d.pk for d in todo), *rows.unread]
                    ledger.report.requeued += release_claims(unsent, reconnect_error)
                    raise TransientSendError(describe(reconnect_error)) from reconnect_error
        ledger.flush()
        carriers.succeeded(carrier)
        kept = isinstance(send, SMTPPool) and kept_pools.park(connection, send)
    except ThrottledSend:
        raise  # the carrier works, it asks for patience: no reason to switch
    except TransientSendError:
        carriers.failed(carrier)
        raise
    except Exception as error:
        # Anything else that stops the batch (a time limit, a database error,
        # a bug): record what went out and hand back what did not, so that
        # nothing sent is sent again and nothing unsent waits for the claim
        # to expire. (A killed process cannot do this; see DIGEST_CHECKPOINT_EVERY.)
        not_gone = stop_carrier()  # a message in flight is never completed
        ledger.flush()
        release_claims([*not_gone, *(d.pk for d in (*in_flight, *todo)), *rows.unread], error)
        raise
    finally:
        if not kept:
            if send is not None:
                send.abort()  # a pool's lanes and connections end with the batch
            connection.close()
        if pace is not None:
            pace.release()
    return ledger.report


def carrier_for(connection: BaseEmailBackend, edition: Edition) -> Carrier:
    """What carries a batch over this connection: an ESP's batch API, an SMTP pool, the Sender."""
    batch = batch_carrier_for(connection)
    if batch is not None:
        return batch(connection, edition)
    size = min(getattr(connection, "connections", 1), MAX_SMTP_CONNECTIONS)
    if (
        size > 1
        and isinstance(connection, SMTPBackend)
        and getattr(connection, "alias", None)
        and relay_is_far(connection)
    ):
        return SMTPPool(connection, edition, size)
    return Sender(connection, edition)


# A relay nearer than this (the round trip of one NOOP) keeps a worker busy
# over one pipelined connection: more connections would only add their
# threads' cost (a fifth of the worker's time into smtp-sink on loopback).
NEAR_RELAY_SECONDS = 0.002
# On a busy machine one NOOP to a near relay can wait for a CPU for longer
# than that: the quickest of a few tells. A relay's distance does not change
# from batch to batch, so each process measures it once a minute.
NOOPS_MEASURED = 3
RELAY_DISTANCE_KEPT_SECONDS = 60.0
_relay_distances: dict[tuple[str, int], tuple[float, bool]] = {}


def relay_is_far(connection: SMTPBackend) -> bool:
    """Whether the batch's open connection answers slowly enough to be worth several."""
    client = connection.connection
    if client is None:
        return True  # not open: the pool's lanes open their own
    relay = (str(connection.host), int(connection.port or 0))
    measured = time.monotonic()
    known = _relay_distances.get(relay)
    if known is not None and measured - known[0] < RELAY_DISTANCE_KEPT_SECONDS:
        return known[1]
    far = True
    for _ in range(NOOPS_MEASURED):
        started = time.perf_counter()
        code, answer = client.noop()
        if code != 250:
            raise smtplib.SMTPResponseException(code, answer)
        if time.perf_counter() - started < NEAR_RELAY_SECONDS:
            far = False
            break
    _relay_distances[relay] = (measured, far)
    return far


# Postfix's default per-client limit (smtpd_client_connection_count_limit):
# no process opens more to one relay.
MAX_SMTP_CONNECTIONS = 50
_FLUSH = object()


class Lane(threading.Thread):
    """One connection of an SMTPPool: its own Sender, fed by its own queue, in its own thread.

    A connection that drops affects only its own messages: the one whose
    answer was lost is reported unconfirmed, the ones that never went are
    sent again over a new connection, and the other lanes carry on.
    """

    def __init__(self, pool: "SMTPPool", connection: SMTPBackend, opened: bool) -> None:
        super().__init__(daemon=True, name=f"smtp-lane-{len(pool.lanes)}")
        self.pool = pool
        self.connection = connection
        self.opened = opened
        self.work: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.flushed = threading.Event()
        self.sender: Sender | None = None
        self.stopping = False

    def run(self) -> None:
        try:
            self._run()
        except BaseException as error:  # noqa: BLE001 - handed to the batch's thread, raised there
            # A message in flight is dropped with the connection, never
            # completed; over CHUNKING the messages written went whole, and
            # what the server answered for them is recorded.
            if self.sender is not None:
                self.pool.report(self.sender.abort())
            self.connection.close()
            self.pool.failure = self.pool.failure or error
            self.flushed.set()

    def _run(self) -> None:
        retry: deque[tuple[Delivery, DigestTemplate]] = deque()
        while True:
            item = retry.popleft() if retry else self.work.get()
            if item is None or self.stopping:
                # Stopped: a message in flight is dropped with the connection,
                # never completed (over CHUNKING, answered: it went whole);
                # what is still queued never went.
                if self.sender is not None:
                    self.pool.report(self.sender.abort())
                self.connection.close()
                return
            if item is _FLUSH:
                self.pool.report(self.sender.finish() if self.sender else [])
                self.flushed.set()
                continue
            delivery, digest = cast(tuple[Delivery, DigestTemplate], item)
            sender = self._sender()
            if sender is None:
                self.pool.report([(delivery, self.pool.unavailable)])
                continue
            outcomes = sender.send(delivery, digest)
            dropped = any(isinstance(error, Unconfirmed | smtp.NotSent) for _d, error in outcomes)
            if not dropped:
                self.pool.report(outcomes)
                continue
            # The connection dropped: what never went is sent again on a new one.
            self.pool.report([o for o in outcomes if not isinstance(o[1], smtp.NotSent)])
            retry.extend((d, digest) for d, error in outcomes if isinstance(error, smtp.NotSent))
            self.connection.close()
            self.sender = None
            self.opened = False

    def _sender(self) -> "Sender | None":
        if self.sender is None:
            try:
                if not self.opened:
                    self.connection.open()
                    self.opened = True
                self.sender = Sender(self.connection, self.pool.edition)
            except SEND_ERRORS as error:
                self.pool.unavailable = error
                self.connection.close()
                self.opened = False
                return None
        return self.sender

    def stop(self) -> None:
        self.stopping = True
        self.work.put(None)


class SMTPPool:
    """Several SMTP connections at once, each pipelined: one relay's round trip, many in flight.

    A thread per connection (sockets release the GIL while waiting; the
    per-reader work is a few substitutions): with `n` connections a relay
    `RTT` away takes about n / RTT emails a second per process, where one
    connection took 1 / RTT. Readers are dealt to the connections in turn;
    each connection's outcomes come back as they are learnt.
    """

    records_each_window = False
    # A dropped connection is opened again by its lane, and what never went
    # over it is sent again there: the batch need not reconnect.
    reconnects_itself = True

    def __init__(self, connection: SMTPBackend, edition: Edition, size: int) -> None:
        self.edition = edition
        # Only as many connections as the relay's count has places for
        # (SMTP_URL's ?max_connections=, over every worker): at least this one.
        size, self.places = relay_places.take(
            f"{connection.host}:{connection.port}",
            size,
            int(getattr(connection, "max_connections", MAX_SMTP_CONNECTIONS)),
        )
        self.outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self.failure: BaseException | None = None
        # What the lanes answer for a reader once their connection cannot be opened again.
        self.unavailable: Exception = smtp.NotSent("The SMTP connection could not be opened.")
        self.lanes: list[Lane] = []
        # The first connection is the batch's own (open, checked); the others
        # are opened by their lanes, in parallel.
        first = Lane(self, connection, opened=True)
        first.sender = Sender(connection, edition)
        self.lanes.append(first)
        for _ in range(size - 1):
            alias = cast(str, getattr(connection, "alias"))  # noqa: B009 - unknown to django-stubs
            extra = cast(SMTPBackend, mailers.create_connection(alias))
            self.lanes.append(Lane(self, extra, opened=False))
        for lane in self.lanes:
            lane.start()
        self.turn = 0
        # Handed to the lanes, outcome not yet collected.
        self.pending = 0
        self.late: list[Outcome] = []
        # Enough for each lane to hold its next message while the ones it
        # wrote await their answers (one over DATA, CHUNKING_WINDOW over BDAT),
        # and one more: when an answer comes, the lane writes on at once
        # instead of waiting for this thread to hand it a message (that wait,
        # a few ms each round trip, cost a far relay a few percent of its rate).
        self.window = size * (first.sender.window + 2)

    def report(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            self.outcomes.put(outcome)

    def collected(self, wait: bool = False) -> list[Outcome]:
        """The outcomes the lanes have learnt; with `wait`, at least one (or a lane's failure)."""
        done: list[Outcome] = []
        while True:
            try:
                if wait and not done:
                    done.append(self.outcomes.get(timeout=0.1))
                else:
                    done.append(self.outcomes.get_nowait())
            except queue.Empty:
                if wait and not done and self.failure is None:
                    continue
                break
        self.pending -= len(done)
        if self.failure is not None:
            # Learnt, not yet recorded: abort() hands them to the batch.
            self.late += done
            raise self.failure
        return done

    def send(self, delivery: Delivery, digest: DigestTemplate) -> list[Outcome]:
        self.places.keep()
        lane = self.lanes[self.turn % len(self.lanes)]
        self.turn += 1
        lane.work.put((delivery, digest))
        self.pending += 1
        outcomes = self.collected()
        # The batch never runs ahead of the wire by more than a window (three
        # messages a connection, at most two of them written): its ledger's
        # checkpoints stay about as close to what went as with one connection.
        while self.pending > self.window:
            outcomes += self.collected(wait=True)
        return outcomes

    def finish(self) -> list[Outcome]:
        for lane in self.lanes:
            lane.flushed.clear()
            lane.work.put(_FLUSH)
        for lane in self.lanes:
            # A lane that died (its failure is raised below) flushes nothing.
            while not lane.flushed.wait(0.1) and lane.is_alive():
                pass
        return self.collected()

    def can_be_kept(self) -> bool:
        """Whether every lane is idle and well, so the pool may carry another batch."""
        return (
            self.failure is None
            and self.pending == 0
            and not self.late
            and self.outcomes.empty()
            and all(lane.is_alive() for lane in self.lanes)
        )

    def carry(self, edition: Edition) -> None:
        """Carry another batch (of this edition) over the same lanes and connections."""
        # The lanes are idle, waiting on their queues: the batch's first
        # message, put there after this, is what they see it with.
        self.edition = edition
        for lane in self.lanes:
            if lane.sender is not None:
                lane.sender.edition = edition
        self.turn = 0
        self.places.keep()

    def abort(self) -> list[Outcome]:
        """Stop every lane after the message it is writing; the outcomes learnt meanwhile."""
        for lane in self.lanes:
            lane.stop()
        for lane in self.lanes:
            # A lane finishing a write waits at most for its connection's timeout.
            lane.join(timeout=float(getattr(lane.connection, "timeout", None) or 30) + 5)
        self.places.give_back()
        done, self.late = self.late, []
        while True:
            try:
                done.append(self.outcomes.get_nowait())
            except queue.Empty:
                return done


# A far relay's pool outlives its batch by this long: the process's next
# batch, usually within a second while a morning is being sent, goes on over
# the same connections instead of opening, greeting and closing them again
# (about 4 round trips of the 44 a batch of 1,000 readers takes over 25
# connections). Well inside relay_places.PLACE_SECONDS, so the places a kept
# pool holds are still its own when the next batch renews them.
KEEP_POOL_SECONDS = 10.0


class KeptPools:
    """Each far relay's idle pool of this process, kept for its next batch, closed when unused."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # Each kept pool, and the mark of its keeping (a pool kept again is a new keeping).
        self.pools: dict[tuple[object, ...], tuple[SMTPPool, object]] = {}

    @staticmethod
    def key(connection: BaseEmailBackend) -> tuple[object, ...]:
        """The relay and account a batch's connection would use."""
        return (
            getattr(connection, "alias", None),
            getattr(connection, "host", None),
            getattr(connection, "port", None),
            getattr(connection, "username", None),
        )

    def take(self, connection: BaseEmailBackend, edition: Edition) -> "SMTPPool | None":
        """The kept pool to this connection's relay, ready for the batch; None if there is none."""
        with self.lock:
            kept = self.pools.pop(self.key(connection), None)
        if kept is None:
            return None
        pool, _keeping = kept
        if not pool.can_be_kept():
            pool.abort()
            return None
        pool.carry(edition)
        return pool

    def park(self, connection: BaseEmailBackend, pool: SMTPPool) -> bool:
        """Keep the pool for the next batch to this relay; False (not kept) if it is not well."""
        if not pool.can_be_kept():
            return False
        key = self.key(connection)
        keeping = object()
        with self.lock:
            replaced = self.pools.pop(key, None)
            self.pools[key] = (pool, keeping)
        # A thread that sleeps, not a threading.Timer: a timed wait on a lock
        # takes an absolute deadline, which a clock moved by libfaketime (CI's
        # shifted passes) puts days away; a sleep is relative.
        threading.Thread(
            target=self._expire, args=(key, keeping, KEEP_POOL_SECONDS), daemon=True
        ).start()
        if replaced is not None:
            replaced[0].abort()
        return True

    def _expire(self, key: tuple[object, ...], keeping: object, seconds: float) -> None:
        time.sleep(seconds)
        with self.lock:
            kept = self.pools.get(key)
            if kept is None or kept[1] is not keeping:
                return  # taken by a batch meanwhile (and perhaps kept again)
            del self.pools[key]
        kept[0].abort()  # the lanes QUIT, the places are given back

    def close_all(self) -> None:
        with self.lock:
            kept, self.pools = list(self.pools.values()), {}
        for pool, _keeping in kept:
            pool.abort()


kept_pools = KeptPools()


@dataclass
class FastPath:
    """What the SMTP fast path sends over: the open connection and the envelope."""

    client: smtplib.SMTP
    envelope_from: str
    # The connection's pipeline; None for a server without PIPELINING.
    pipeline: smtp.Pipeline[Delivery] | None


class Sender:
    """Sends readers' digests over an open mail connection; returns their outcomes.

    A carrier (delivery.wire.outcomes.Carrier) whose window is the pipeline:
    the ledger checkpoints it every DIGEST_CHECKPOINT_EVERY readers.

    Over SMTP the message bytes are assembled from the pre-serialised digest
    (delivery.wire.mime) and written to the connection directly, pipelined
    (delivery.wire.smtp.Pipeline): a message's outcome comes back with the
    next one's, or from `finish`. That is the fast path. Readers it cannot
    assemble, and every other backend (an ESP through anymail, the demo
    outbox), get a message built and sent by Django, outcome at once.
    """

    records_each_window = False
    reconnects_itself = False

    def __init__(self, connection: BaseEmailBackend, edition: Edition) -> None:
        self.connection = connection
        self.edition = edition
        self.fast: FastPath | None = None
        # DKIM for a relay that does not sign: the fast path's bytes bypass the
        # backend, so they are signed here, as the backend signs its own.
        self.sign = signing_for(connection)
        if isinstance(connection, SMTPBackend):
            if connection.connection is None:
                # open() failed without raising (fail_silently in the mailer's
                # OPTIONS): there is no connection to send over.
                raise smtplib.SMTPServerDisconnected("The SMTP connection is not open.")
            client = connection.connection
            pipeline: smtp.Pipeline[Delivery] | None = None
            if smtp.supports_chunking(client):
                pipeline = smtp.ChunkingPipeline(client)
            elif smtp.supports_pipelining(client):
                pipeline = smtp.Pipeline(client)
            self.fast = FastPath(
                client=client,
                envelope_from=connection.prep_address(settings.DEFAULT_FROM_EMAIL),
                pipeline=pipeline,
            )

    def send(self, delivery: Delivery, digest: DigestTemplate) -> list[Outcome]:
        """Send this reader's digest; return the outcomes now known (this one's, or earlier)."""
        subscriber = delivery.subscriber
        message_id = message_id_for(self.edition, delivery.pk)
        # VERP (BOUNCE_DOMAIN): a bounce to this envelope names the delivery.
        verp = verp_address("d", delivery.pk)
        if self.fast is not None:
            data = fast_digest(digest).bytes_for(subscriber, message_id)
            if data is not None:
                if self.sign is not None:
                    data = self.sign(data)
                sender = verp or self.fast.envelope_from
                if self.fast.pipeline is not None:
                    return self.fast.pipeline.send(delivery, sender, subscriber.email, data)
                return [(delivery, outcome_of(smtp.send, self.fast.client, sender,
                                              subscriber.email, data))]  # fmt: skip
        # Django's path, over the same connection: what is in flight goes first.
        outcomes = self.finish()

        def send_by_django() -> None:
            message = digest.message_for(subscriber, message_id=message_id)
            # ESPs (anymail) return this with bounce and complaint events.
            message.metadata = {"delivery_id": str(delivery.pk), "edition": str(self.edition.date)}
            message.smtp_envelope_from = (
                verp  # delivery.wire.backend.SigningSMTPBackend's MAIL FROM
            )
            self.connection.send_messages([message])

        return [*outcomes, (delivery, outcome_of(send_by_django))]

    def finish(self) -> list[Outcome]:
        """The outcome of the message in flight, once its content has gone out."""
        if self.fast is None or self.fast.pipeline is None:
            return []
        return self.fast.pipeline.finish()

    def abort(self) -> list[Outcome]:
        """Stop here: a message in flight is dropped with the connection, never delivered.

        Over CHUNKING every message written went out whole: their answers
        are read, and returned, instead.
        """
        pipeline = self.fast.pipeline if self.fast is not None else None
        if pipeline is not None and pipeline.in_flight is not None:
            return pipeline.abort()
        return []

    @property
    def window(self) -> int:
        """How many messages this sender may have written and not yet answered."""
        pipeline = self.fast.pipeline if self.fast is not None else None
        return pipeline.window if pipeline is not None else 0


def outcome_of[**P](
    send: Callable[P, object], *args: P.args, **kwargs: P.kwargs
) -> Exception | None:
    """Call `send`; None if it went, or the error that says why not."""
    try:
        send(*args, **kwargs)
    except (ValueError, *SEND_ERRORS) as error:
        # ValueError: an address no message can be built for (a non-ASCII
        # local part without SMTPUTF8, say): this reader only.
        return error
    return None
