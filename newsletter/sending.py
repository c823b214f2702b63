"""Sending an edition to every entitled reader, and resuming sends that stalled.

The Delivery table is the record of what was sent: one row per (edition,
reader), unique, created when the send starts, claimed by one sender before
the email goes out, and marked sent or failed afterwards. Everything here is
safe to run twice, from two workers at once, or again after a crash:

- an edition exists once per date (unique), its audience is fixed once;
- a batch claims only `queued` rows, so two senders never send the same row;
- rows are marked `sent` every CHECKPOINT_EVERY emails, so a worker killed
  mid-batch leaves at most that many sent-but-unmarked rows; they stay
  `sending` until their claim expires, and are then sent again. That is the
  one, bounded, way a reader can get a digest twice.
"""

import datetime
import logging
import smtplib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from anymail.exceptions import AnymailError, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import mailers
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Concat
from django.utils import timezone

from newsletter import smtp
from newsletter.editions import build_edition
from newsletter.emails import DigestTemplate
from newsletter.mime import FastDigest, fast_digest
from newsletter.models import Delivery, Edition, message_id_for
from newsletter.schedule import is_weekday, local_today, send_time_on
from subscriptions.models import Subscriber

logger = logging.getLogger(__name__)

CHECKPOINT_EVERY = 50
MAX_ATTEMPTS = 5
# Longer than a batch task may run (its hard time limit), so a live sender's
# claim is never taken over.
CLAIM_TIMEOUT = datetime.timedelta(minutes=15)
# How far back the periodic sweep looks for sends to resume.
RESUME_WINDOW = datetime.timedelta(days=2)
# When the sweep starts a morning send that never started: not before beat's
# own task has had its chance, not so late that a "morning" digest is wrong.
MISSED_START_GRACE = datetime.timedelta(minutes=10)
MISSED_START_WINDOW = datetime.timedelta(hours=3)
# A morning digest still unsent this long after its send started is marked
# failed (staff can resend it); until then the sweep keeps trying.
GIVE_UP_AFTER = datetime.timedelta(hours=12)
SEND_ERRORS = (smtplib.SMTPException, OSError, AnymailError)
# Written on rows whose claim expired: the reader may already have the email.
RESUMED_NOTE = "Resumed after an interrupted send; this reader may receive it twice."


class TransientSendError(Exception):
    """The mail server or ESP is unavailable for now; retry the batch later."""


class EditionHeld(Exception):
    """The editors are holding this edition back."""


# ---------------------------------------------------------------- sending


@dataclass
class BatchReport:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    requeued: int = 0

    def add(self, other: "BatchReport") -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.skipped += other.skipped
        self.requeued += other.requeued


def start_send(edition: Edition) -> None:
    """Fix the edition's audience and mark it sending (once; later calls do nothing).

    The audience is every reader entitled now; a reader who becomes entitled
    later gets the next edition.
    """
    with transaction.atomic():
        edition = Edition.objects.select_for_update().get(pk=edition.pk)
        if edition.status == Edition.Status.HELD:
            raise EditionHeld(f"{edition} is held by the editors.")
        if edition.send_started_at is not None:
            return
        snapshot_audience(edition)
        edition.status = Edition.Status.SENDING
        edition.send_started_at = timezone.now()
        edition.save(update_fields=["status", "send_started_at"])
    logger.info("Edition %s: send started for %d readers", edition.date, edition.deliveries.count())


def snapshot_audience(edition: Edition) -> None:
    """One queued Delivery per entitled reader, written by the database itself.

    INSERT ... SELECT over the entitled() queryset: at 100,000 readers this
    takes a fraction of a second, where creating the rows from Python takes
    several, all of it before the first email can go.
    """
    readers_sql, params = (
        Subscriber.objects.entitled().values(reader_id=F("pk")).query.sql_with_params()
    )
    table = connection.ops.quote_name(Delivery._meta.db_table)
    with connection.cursor() as cursor:
        # "WHERE true" lets SQLite parse ON CONFLICT after a SELECT. The SQL is
        # Django's own for the queryset and every value is a parameter.
        cursor.execute(
            f"INSERT INTO {table} (edition_id, subscriber_id, status, attempts, created_at, "  # noqa: S608
            f"last_error) SELECT %s, reader_id, %s, 0, %s, '' FROM ({readers_sql}) AS audience "
            "WHERE true ON CONFLICT DO NOTHING",
            [edition.pk, Delivery.Status.QUEUED, timezone.now(), *params],
        )


def requeue_expired_claims(edition: Edition, now: datetime.datetime | None = None) -> int:
    """Hand back rows claimed by a sender that died (claim older than CLAIM_TIMEOUT)."""
    now = now or timezone.now()
    count = edition.deliveries.filter(
        status=Delivery.Status.SENDING, claimed_at__lt=now - CLAIM_TIMEOUT
    ).update(
        status=Delivery.Status.QUEUED,
        claimed_at=None,
        last_error=RESUMED_NOTE,
    )
    if count:
        logger.warning("Edition %s: %d interrupted deliveries requeued", edition.date, count)
    return count


def batch_ranges(edition: Edition, size: int | None = None) -> list[tuple[int, int]]:
    """Split the queued deliveries into (first_id, last_id) ranges of `size` rows."""
    size = size or settings.DIGEST_BATCH_SIZE
    ranges: list[tuple[int, int]] = []
    ids = (
        edition.deliveries.filter(status=Delivery.Status.QUEUED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    chunk: list[int] = []
    for pk in ids.iterator(chunk_size=5000):
        chunk.append(pk)
        if len(chunk) == size:
            ranges.append((chunk[0], chunk[-1]))
            chunk = []
    if chunk:
        ranges.append((chunk[0], chunk[-1]))
    return ranges


def claim(edition_id: int, first_id: int, last_id: int) -> list[Delivery]:
    """Mark the queued deliveries in the range as ours and return them.

    Rows another sender has locked are skipped (PostgreSQL); on SQLite the
    write transaction itself serialises claims.
    """
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(
                edition_id=edition_id,
                pk__gte=first_id,
                pk__lte=last_id,
                status=Delivery.Status.QUEUED,
            )
            .values_list("pk", flat=True)
        )
        # Attempts are counted when a send is tried, not here: a batch that
        # cannot even connect has tried nobody.
        Delivery.objects.filter(pk__in=ids).update(status=Delivery.Status.SENDING, claimed_at=now)
    # Only what the digest reads: whole rows cost a fair part of a batch.
    return list(
        Delivery.objects.filter(pk__in=ids)
        .select_related("subscriber__membership")
        .only(
            "subscriber__email",
            "subscriber__name",
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


_rendered: dict[tuple, DigestTemplate] = {}


def digest_template(edition: Edition) -> DigestTemplate:
    """The edition's digest, rendered once per worker process, not once per batch.

    Rendered again if anything it shows changes (an editor fixing a title
    mid-send, say) or the settings it reads are changed, as tests do.
    """
    articles = list(edition.ordered_articles())
    key = (
        edition.pk,
        edition.date,
        edition.editor_note,
        tuple((article.pk, article.updated_at) for article in articles),
        settings.SITE_URL,
        settings.NEWSLETTER_NAME,
        settings.DEFAULT_FROM_EMAIL,
        tuple(settings.DIGEST_REPLY_TO),
        settings.UNSUBSCRIBE_MAILTO,
    )
    template = _rendered.get(key)
    if template is None:
        _rendered.clear()  # one edition at a time is all a sender needs
        template = _rendered[key] = DigestTemplate(edition, articles)
    return template


class BatchLedger:
    """What happened to each claimed row, written back in a few queries."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.failed: dict[str, list[int]] = defaultdict(list)
        self.deferred: dict[str, list[int]] = defaultdict(list)
        self.skipped: list[int] = []
        self.report = BatchReport()

    def record_sent(self, delivery: Delivery) -> None:
        self.sent.append(delivery.pk)
        if len(self.sent) >= CHECKPOINT_EVERY:
            self.flush_sent()

    def flush_sent(self) -> None:
        if not self.sent:
            return
        Delivery.objects.filter(pk__in=self.sent).update(
            status=Delivery.Status.SENT,
            sent_at=timezone.now(),
            attempts=F("attempts") + 1,
            # A resumed row keeps its note once sent: it is the record that
            # this reader may have had the email twice.
            last_error=Case(
                When(last_error=RESUMED_NOTE, then=Value(RESUMED_NOTE)), default=Value("")
            ),
        )
        self.report.sent += len(self.sent)
        self.sent = []

    def flush(self) -> None:
        self.flush_sent()
        with transaction.atomic():
            for error, ids in self.failed.items():
                Delivery.objects.filter(pk__in=ids).update(
                    status=Delivery.Status.FAILED, last_error=error, attempts=F("attempts") + 1
                )
            for error, ids in self.deferred.items():
                self.report.requeued += release(ids, error, tried=ids)
            Delivery.objects.filter(pk__in=self.skipped).update(
                status=Delivery.Status.SKIPPED,
                last_error="Not entitled or not deliverable at send time.",
            )
        self.report.failed += sum(len(ids) for ids in self.failed.values())
        self.report.skipped += len(self.skipped)
        self.failed.clear()
        self.deferred.clear()
        self.skipped = []


def release(
    delivery_ids: list[int], error: BaseException | str, *, tried: Iterable[int] = ()
) -> int:
    """Give unsent rows back to the queue; return how many went back.

    `tried` are the rows whose send was attempted and met `error`: their
    attempt counts, and one that has had MAX_ATTEMPTS is failed instead.
    """
    message = error if isinstance(error, str) else describe(error)
    rows = Delivery.objects.filter(pk__in=delivery_ids, status=Delivery.Status.SENDING)
    with transaction.atomic():
        rows.filter(pk__in=tried).update(attempts=F("attempts") + 1)
        rows.filter(pk__in=tried, attempts__gte=MAX_ATTEMPTS).update(
            status=Delivery.Status.FAILED,
            last_error=f"Gave up after {MAX_ATTEMPTS} attempts: {message}",
        )
        return rows.update(status=Delivery.Status.QUEUED, claimed_at=None, last_error=message)


def is_deferral(error: Exception) -> bool:
    """A "try later" about this recipient only (greylisting, a full mailbox)."""
    return isinstance(error, smtplib.SMTPRecipientsRefused) and not is_permanent(error)


def send_batch(edition_id: int, first_id: int, last_id: int) -> BatchReport:
    """Send the queued deliveries of one range over one mail connection.

    Raises TransientSendError, with the unsent rows back in the queue, when
    the mail server is unavailable or answers "try again later".
    """
    deliveries = claim(edition_id, first_id, last_id)
    if not deliveries:
        return BatchReport()
    edition = Edition.objects.get(pk=edition_id)
    # Entitlement and deliverability may have changed since the send started.
    entitled = set(
        Subscriber.objects.entitled()
        .filter(pk__in=[d.subscriber_id for d in deliveries])
        .values_list("pk", flat=True)
    )
    digest = digest_template(edition)
    ledger = BatchLedger()
    connection = mailers.default
    try:
        connection.open()
    except SEND_ERRORS as error:
        release([d.pk for d in deliveries], error)
        raise TransientSendError(describe(error)) from error

    position = 0
    try:
        try:
            send = Sender(connection, digest, edition)
        except SEND_ERRORS as error:
            # The connection is not usable after all (EHLO failed, or the
            # backend's open() failed silently): nobody was tried.
            release([d.pk for d in deliveries], error)
            raise TransientSendError(describe(error)) from error
        for position, delivery in enumerate(deliveries):
            if delivery.subscriber_id not in entitled:
                ledger.skipped.append(delivery.pk)
                continue
            try:
                send(delivery)
            except ValueError as error:
                # An address no message can be built for (e.g. a non-ASCII
                # local part without SMTPUTF8): this reader only, for good.
                logger.warning("Digest to %s impossible: %s", delivery.subscriber.email, error)
                ledger.failed[describe(error)].append(delivery.pk)
                continue
            except SEND_ERRORS as error:
                if is_permanent(error):
                    logger.warning("Digest to %s refused: %s", delivery.subscriber.email, error)
                    ledger.failed[describe(error)].append(delivery.pk)
                    continue
                if is_deferral(error):
                    # This reader later (the sweep comes back); the others now.
                    logger.info("Digest to %s deferred: %s", delivery.subscriber.email, error)
                    ledger.deferred[describe(error)].append(delivery.pk)
                    continue
                ledger.flush()
                unsent = [d.pk for d in deliveries[position:]]
                ledger.report.requeued += release(unsent, error, tried=[delivery.pk])
                logger.warning(
                    "Edition %s: mail server unavailable, %d deliveries requeued: %s",
                    edition.date,
                    len(unsent),
                    error,
                )
                raise TransientSendError(describe(error)) from error
            ledger.record_sent(delivery)
        ledger.flush()
    except TransientSendError:
        raise
    except Exception as error:
        # Anything else that stops the batch (a time limit, a database error,
        # a bug): record what went out and hand back what did not, so that
        # nothing sent is sent again and nothing unsent waits for the claim
        # to expire. (A killed process cannot do this; see CHECKPOINT_EVERY.)
        ledger.flush()
        release([d.pk for d in deliveries[position:]], error)
        raise
    finally:
        connection.close()
    return ledger.report


@dataclass
class FastPath:
    """What the SMTP fast path sends with: the open connection and the assembled digest."""

    smtp: smtplib.SMTP
    digest: FastDigest
    envelope_from: str
    pipelining: bool


class Sender:
    """Sends one reader's digest over an open mail connection.

    Over SMTP the message bytes are assembled from the pre-serialised digest
    (newsletter.mime) and handed to smtplib directly; that is the fast path.
    Readers it cannot assemble, and every other backend (an ESP through
    anymail, the demo outbox), get a message built by Django.
    """

    def __init__(
        self, connection: BaseEmailBackend, digest: DigestTemplate, edition: Edition
    ) -> None:
        self.connection = connection
        self.digest = digest
        self.edition = edition
        self.fast: FastPath | None = None
        if isinstance(connection, SMTPBackend):
            if connection.connection is None:
                # open() failed without raising (fail_silently in the mailer's
                # OPTIONS): there is no connection to send over.
                raise smtplib.SMTPServerDisconnected("The SMTP connection is not open.")
            self.fast = FastPath(
                smtp=connection.connection,
                digest=fast_digest(digest),
                envelope_from=connection.prep_address(settings.DEFAULT_FROM_EMAIL),
                pipelining=smtp.supports_pipelining(connection.connection),
            )

    def __call__(self, delivery: Delivery) -> None:
        subscriber = delivery.subscriber
        message_id = message_id_for(self.edition, delivery.pk)
        if self.fast is not None:
            data = self.fast.digest.bytes_for(subscriber, message_id)
            if data is not None:
                smtp.send(
                    self.fast.smtp,
                    self.fast.envelope_from,
                    subscriber.email,
                    data,
                    pipelining=self.fast.pipelining,
                )
                return
        message = self.digest.message_for(subscriber, message_id=message_id)
        # ESPs (anymail) return this with bounce and complaint events.
        message.metadata = {"delivery_id": str(delivery.pk), "edition": str(self.edition.date)}
        self.connection.send_messages([message])


def finish_if_done(edition_id: int) -> bool:
    """Mark the edition sent once no delivery is queued or in flight."""
    unfinished = Delivery.objects.filter(
        edition_id=edition_id, status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING]
    )
    if unfinished.exists():
        return False
    Edition.objects.filter(pk=edition_id, status=Edition.Status.SENDING).update(
        status=Edition.Status.SENT, sent_at=timezone.now()
    )
    return True


def send_edition_now(edition_id: int) -> BatchReport:
    """Send the whole edition in this process (the command's --sync)."""
    edition = Edition.objects.get(pk=edition_id)
    start_send(edition)
    requeue_expired_claims(edition)
    report = BatchReport()
    for first_id, last_id in batch_ranges(edition):
        report.add(send_batch(edition.pk, first_id, last_id))
    finish_if_done(edition.pk)
    return report


def resend_failed(edition: Edition) -> int:
    """Queue again the failed deliveries of an edition (staff's "resend to failed")."""
    with transaction.atomic():
        # A fresh set of attempts: staff resend once the cause is fixed.
        count = edition.deliveries.filter(status=Delivery.Status.FAILED).update(
            status=Delivery.Status.QUEUED, claimed_at=None, attempts=0
        )
        if count:
            Edition.objects.filter(pk=edition.pk).update(
                status=Edition.Status.SENDING, sent_at=None
            )
    return count


def missed_morning_edition(now: datetime.datetime | None = None) -> Edition | None:
    """Today's edition, if its morning send should have started and has not.

    Beat's task builds the edition and queues its send at DIGEST_SEND_TIME;
    if that task or the send it queued is lost (a flushed broker, beat down
    at that minute), the edition is missing or still a draft. From a few
    minutes after the send time (beat's own task goes first) until a few
    hours after it, this builds or completes it with the articles published
    before the send time, the digest that should have gone out. Later than
    that a person decides: send_digest. Drafts the editors are preparing for
    another day, and held editions, are never started here.
    """
    now = now or timezone.now()
    today = local_today(now)
    if not is_weekday(today):
        return None
    send_time = send_time_on(today)
    if not send_time + MISSED_START_GRACE <= now < send_time + MISSED_START_WINDOW:
        return None
    edition = build_edition(today, now=send_time)
    if edition is None or edition.status != Edition.Status.DRAFT:
        return None
    logger.warning("Edition %s: its morning send did not start; starting it now", edition.date)
    return edition


def give_up_if_too_late(edition: Edition, now: datetime.datetime) -> bool:
    """Fail what is still queued GIVE_UP_AFTER after the send started; True if so."""
    if edition.send_started_at is None or now - edition.send_started_at < GIVE_UP_AFTER:
        return False
    hours = int(GIVE_UP_AFTER.total_seconds() // 3600)
    queued = edition.deliveries.filter(status=Delivery.Status.QUEUED)
    count = queued.update(
        status=Delivery.Status.FAILED,
        last_error=Concat(Value(f"Not sent within {hours} hours; last error: "), "last_error"),
    )
    if count:
        logger.error(
            "Edition %s: gave up on %d deliveries after %d hours", edition.date, count, hours
        )
    finish_if_done(edition.pk)
    return True


def editions_to_resume(now: datetime.datetime | None = None) -> list[Edition]:
    """Recent editions still sending whose work seems to have stalled."""
    now = now or timezone.now()
    recent = Edition.objects.filter(
        status=Edition.Status.SENDING, send_started_at__gte=now - RESUME_WINDOW
    )
    stalled = []
    for edition in recent:
        requeue_expired_claims(edition, now)
        if give_up_if_too_late(edition, now):
            continue
        busy = edition.deliveries.filter(
            Q(status=Delivery.Status.SENDING) | Q(claimed_at__gte=now - CLAIM_TIMEOUT)
        ).exists()
        if not busy:
            stalled.append(edition)
    return stalled
