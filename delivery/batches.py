"""A batch of deliveries: claimed, sent over one mail connection, and recorded in its ledger.

A batch claims only `queued` rows of its id range, so two senders never
send the same row, and holds them with a lease it renews while it works
(delivery.leases). Its ledger marks rows sent every DIGEST_CHECKPOINT_EVERY
emails: a worker killed mid-batch leaves at most that many sent but
unmarked, sent again once its lease runs out. Whatever stops a batch, the
rows it did not send go back to the queue (release_claims).
"""

import datetime
import logging
import smtplib
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

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
from delivery.leases import Lease, durably, lease_length
from delivery.models import Delivery, message_id_for
from delivery.recovery import RESUMED_NOTE, mark_missed
from delivery.wire import carriers, smtp
from delivery.wire.backend import signing_for
from delivery.wire.mime import fast_digest
from newsletter.editions import ReaderStories, stories_for, window_articles
from newsletter.models import Article, Edition, Section
from newsletter.schedule import local_date
from subscriptions.addresses import mask_addresses
from subscriptions.models import DigestFormat, Subscriber

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# Written on rows whose connection dropped after the message went out.
UNCONFIRMED_NOTE = (
    "Sent; the connection dropped before the mail server confirmed it, "
    "so delivery is likely but not confirmed."
)


# A delivery and what became of its message: None when the server accepted it.
type Outcome = smtp.Outcome[Delivery]


class TransientSendError(Exception):
    """The mail server or ESP is unavailable for now; retry the batch later."""


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


def claim(edition_id: int, first_id: int, last_id: int) -> list[Delivery]:
    """Mark the queued deliveries in the range as ours and return them.

    Rows another sender has locked are skipped (PostgreSQL); on SQLite the
    write transaction itself serialises claims.
    """
    now = timezone.now()
    mark_missed(now)  # a morning that is over is not sent late
    with transaction.atomic():
        ids = list(
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
            .values_list("pk", flat=True)
        )
        # Attempts are counted when a send is tried, not here: a batch that
        # cannot even connect has tried nobody.
        Delivery.objects.filter(pk__in=ids).update(
            status=Delivery.Status.SENDING, claimed_at=now, lease_until=now + lease_length()
        )
    # Only what the digest reads: whole rows cost a fair part of a batch.
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
    if isinstance(error, AnymailRecipientsRefused):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500 and not isinstance(error, smtplib.SMTPSenderRefused)
    return False


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:1000]


_rendered: dict[tuple[object, ...], DigestTemplate] = {}
# Distinct contents a worker keeps rendered: readers who share a send slot,
# a window, their sections and their format share one.
RENDERS_KEPT = 256


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
    template = _rendered.get(key)
    if template is None:
        if len(_rendered) >= RENDERS_KEPT:
            _rendered.clear()
        template = _rendered[key] = DigestTemplate(
            edition,
            articles,
            since=since,
            digest_format=digest_format,
            sections=sections,
            others=others,
        )
    return template


class Contents:
    """What each delivery of a batch carries, computed once per distinct content.

    A content is what readers share: the window (and the zone its "Since"
    line names), the sections they follow and their format. Kept for the
    batch (seconds): an edit made meanwhile reaches the next one.
    """

    def __init__(self, edition: Edition, deliveries: Iterable[Delivery] = ()) -> None:
        self.edition = edition
        self._windows: dict[tuple[object, ...], list[Article]] = {}
        self._stories: dict[tuple[object, ...], ReaderStories] = {}
        self._digests: dict[tuple[object, ...], DigestTemplate] = {}
        # The sections followed by the batch's readers who do not follow
        # every section: one query for the batch.
        choosy = [d.subscriber_id for d in deliveries if not d.subscriber.all_sections]
        rows = Subscriber.sections.through.objects.filter(subscriber_id__in=choosy)
        followed: dict[int, set[int]] = defaultdict(set)
        for subscriber_id, section_id in rows.values_list("subscriber_id", "section_id"):
            followed[subscriber_id].add(section_id)
        self._followed = {reader: frozenset(ids) for reader, ids in followed.items()}
        self._section_names = dict(Section.objects.values_list("pk", "name"))

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
            elif isinstance(error, smtp.UnconfirmedSend):
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
                last_error=UNCONFIRMED_NOTE,
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


def is_deferral(error: Exception) -> bool:
    """A "try later" about this recipient only (greylisting, a full mailbox)."""
    return isinstance(error, smtplib.SMTPRecipientsRefused) and not is_permanent(error)


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
    deliveries = claim(edition_id, first_id, last_id)
    if not deliveries:
        return BatchReport()
    edition = Edition.objects.get(pk=edition_id)
    # The batch's log lines name its edition, and its zone when it has one
    # (a morning's batches do; a by-hand send's mix the readers' zones).
    zones = {delivery.time_zone for delivery in deliveries}
    logcontext.bind(edition=edition.date, **({"zone": zones.pop()} if len(zones) == 1 else {}))
    # Entitlement and deliverability may have changed since the send started.
    entitled = set(
        Subscriber.objects.entitled()
        .filter(pk__in=[d.subscriber_id for d in deliveries])
        .order_by()
        .values_list("pk", flat=True)
    )
    contents = Contents(edition, deliveries)
    # The primary mailer, or FALLBACK_SMTP_URL's while the primary keeps failing.
    carrier = carriers.choose()
    ledger = BatchLedger(carrier)
    lease = Lease(d.pk for d in deliveries)
    connection = mailers[carrier]
    try:
        connection.open()
    except SEND_ERRORS as error:
        release_claims([d.pk for d in deliveries], error)
        carriers.failed(carrier)
        raise TransientSendError(describe(error)) from error

    # Deliveries still to send, and those sent whose outcome is not known yet
    # (a pipelined message in flight): what goes back to the queue if the
    # batch stops.
    todo = deque(deliveries)
    in_flight: list[Delivery] = []
    send: Sender | None = None
    try:
        try:
            send = Sender(connection, edition)
        except SEND_ERRORS as error:
            # The connection is not usable after all (EHLO failed, or the
            # backend's open() failed silently): nobody was tried.
            release_claims([d.pk for d in deliveries], error)
            raise TransientSendError(describe(error)) from error
        while todo or in_flight:
            if todo:
                delivery = todo.popleft()
                lease.keep_alive()
                if delivery.subscriber_id not in entitled:
                    ledger.skipped[NOT_ENTITLED].append(delivery.pk)
                    continue
                if is_paused(delivery):
                    ledger.skipped[PAUSED].append(delivery.pk)
                    continue
                if not contents.stories(delivery).stories and not settings.DIGEST_SEND_WHEN_EMPTY:
                    nothing = NOTHING_FOR_YOU if contents.articles(delivery) else NOTHING_NEW
                    ledger.skipped[nothing].append(delivery.pk)
                    continue
                in_flight.append(delivery)
                outcomes = send.send(delivery, contents.digest(delivery))
            else:
                outcomes = send.finish()
                if not outcomes:
                    raise RuntimeError("The sender lost track of a message in flight.")
            for done, _error in outcomes:
                in_flight.remove(done)
            settled = ledger.settle(outcomes)
            if settled.unavailable:
                # The server is unavailable: the rest waits for the retry.
                tried = [done.pk for done, _error in settled.unavailable]
                cause = settled.unavailable[0][1]
                ledger.flush()
                send.abort()
                unsent = [*tried, *(d.pk for d in (*settled.resend, *in_flight, *todo))]
                ledger.report.requeued += release_claims(
                    unsent, cause, tried=tried, carrier=carrier
                )
                logger.warning(
                    "Edition %s: mail server unavailable, %d deliveries requeued: %s",
                    edition.date,
                    len(unsent),
                    cause,
                )
                raise TransientSendError(describe(cause)) from cause
            if settled.reconnect:
                # The connection dropped: the rest of the batch goes over a new one.
                todo.extendleft(reversed(settled.resend))
                connection.close()
                try:
                    connection.open()
                    send = Sender(connection, edition)
                except SEND_ERRORS as reconnect_error:
                    ledger.flush()
                    unsent = [d.pk for d in todo]
                    ledger.report.requeued += release_claims(unsent, reconnect_error)
                    raise TransientSendError(describe(reconnect_error)) from reconnect_error
        ledger.flush()
        carriers.succeeded(carrier)
    except TransientSendError:
        carriers.failed(carrier)
        raise
    except Exception as error:
        # Anything else that stops the batch (a time limit, a database error,
        # a bug): record what went out and hand back what did not, so that
        # nothing sent is sent again and nothing unsent waits for the claim
        # to expire. (A killed process cannot do this; see DIGEST_CHECKPOINT_EVERY.)
        if send is not None:
            send.abort()  # a message in flight is never completed
        ledger.flush()
        release_claims([d.pk for d in (*in_flight, *todo)], error)
        raise
    finally:
        connection.close()
    return ledger.report


@dataclass
class FastPath:
    """What the SMTP fast path sends over: the open connection and the envelope."""

    client: smtplib.SMTP
    envelope_from: str
    # The connection's pipeline; None for a server without PIPELINING.
    pipeline: smtp.Pipeline[Delivery] | None


class Sender:
    """Sends readers' digests over an open mail connection; returns their outcomes.

    Over SMTP the message bytes are assembled from the pre-serialised digest
    (delivery.wire.mime) and written to the connection directly, pipelined
    (delivery.wire.smtp.Pipeline): a message's outcome comes back with the
    next one's, or from `finish`. That is the fast path. Readers it cannot
    assemble, and every other backend (an ESP through anymail, the demo
    outbox), get a message built and sent by Django, outcome at once.
    """

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
            pipelining = smtp.supports_pipelining(connection.connection)
            self.fast = FastPath(
                client=connection.connection,
                envelope_from=connection.prep_address(settings.DEFAULT_FROM_EMAIL),
                pipeline=smtp.Pipeline(connection.connection) if pipelining else None,
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

    def abort(self) -> None:
        """Stop here: a message in flight is dropped with the connection, never delivered."""
        pipeline = self.fast.pipeline if self.fast is not None else None
        if pipeline is not None and pipeline.in_flight is not None:
            pipeline.abort()


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
