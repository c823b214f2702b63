"""The audience of a send: one Delivery per reader, written by the database, in chunks.

Written whole, a 100,000-reader audience kept the first email waiting for
the last row: 0.3 s on SQLite, 1.1 s on PostgreSQL, ten times that at a
million. Written in chunks of readers (by id, the first small, each twice
the last up to LARGEST_CHUNK), each chunk is committed and its batches are
queued at once, so the first batch starts after the first thousand rows
while the rest are still being written.

Until the last chunk is in, the write holds a lease (on the edition for a
send by hand, on the local morning's SendSlot for the scheduler's): the
edition is not marked sent while readers are still to be written, and a
writer that died (its lease ran out) is taken over by the next one, which
writes the audience again from the start. That is safe because a reader has
at most one delivery per edition: the rows already written stay as they are
(ON CONFLICT DO NOTHING), whatever became of them.
"""

import datetime
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    DateTimeField,
    F,
    Max,
    Min,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from delivery.batches import batch_ranges
from delivery.models import Delivery
from newsletter.models import Edition
from subscriptions.models import Subscriber

# Readers in the first chunk: about a batch, written in a few milliseconds.
# (A smaller audience, a local morning's in a zone of few readers, is one chunk.)
FIRST_CHUNK = 1000
# The most in one chunk: large enough that the chunks cost nothing next to
# the rows (a million readers take about twenty), small enough that each
# commits within a fraction of a second.
LARGEST_CHUNK = 64_000

# A write of at least this many deliveries, and a tenth of the table, refreshes
# PostgreSQL's statistics (refresh_statistics).
STATISTICS_MIN_ROWS = 1000

# Deliveries whose digest went, or is going, out: the next window starts
# where the latest of them ends. Failed and missed ones carried nothing.
CARRIED = (
    Delivery.Status.QUEUED,
    Delivery.Status.SENDING,
    Delivery.Status.SENT,
    Delivery.Status.BOUNCED,
)


def reader_ranges(among: QuerySet[Subscriber]) -> Iterator[tuple[int, int | None]]:
    """(first_id, last_id) ranges of the ids of `among`: FIRST_CHUNK readers, then twice as many.

    `among` is where the audience is drawn from (every reader, or a zone's
    and delivery time's): each bound is read off an index by id (an offset
    into it), where cutting the audience itself would read its memberships
    twice. The last
    range is open (None); who joined after the send began is left out by
    `readers` itself.
    """
    ids = among.order_by("pk").values_list("pk", flat=True)
    first = ids.first()
    size = FIRST_CHUNK
    while first is not None:
        # The first id past this chunk, if there is one.
        after = ids.filter(pk__gte=first)[size : size + 1].first()
        yield first, None if after is None else after - 1
        first, size = after, min(size * 2, LARGEST_CHUNK)


class AudienceWrite:
    """An audience being written, chunk by chunk, as it is iterated: the one writing loop.

    The scheduler's local mornings and the by-hand send both write theirs
    this way. `readers` are the audience (entitled, and so on), drawn from
    `among`, whose ids cut the chunks (see reader_ranges). Each chunk is
    written in a transaction with `with_each_chunk(written)` (which renews
    the writer's lease, or marks the edition sending): the rows and what is
    said about them commit together. Then, outside any transaction, the
    iteration yields the (first_id, last_id) batches of the chunk's queued
    rows, for the caller to queue or send, so the first emails go while the
    rest is written; with `batches` off (rows written missed, or a caller
    that sends once the whole audience is in) it yields nothing. `written`
    counts the rows added so far.

    PostgreSQL's statistics are refreshed once, after the last chunk (as
    for an audience written whole): measured, the claims of the batches sent
    meanwhile read their own rows with the statistics of before, while an
    ANALYZE after every chunk that grows the table by a tenth (each of a
    first send's) cost the database server a quarter more CPU.
    """

    def __init__(
        self,
        edition: Edition,
        readers: QuerySet[Subscriber],
        *,
        among: QuerySet[Subscriber],
        scheduled_for: datetime.datetime,
        default_window_start: datetime.datetime,
        status: str = Delivery.Status.QUEUED,
        with_each_chunk: Callable[[int], object] = lambda written: None,
        batches: bool = True,
    ) -> None:
        self.edition = edition
        self.readers = readers
        self.among = among
        self.scheduled_for = scheduled_for
        self.default_window_start = default_window_start
        self.status = status
        self.with_each_chunk = with_each_chunk
        self.batches = batches
        self.written = 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        after = 0
        for first_reader, last_reader in reader_ranges(self.among):
            chunk = self.readers.filter(pk__gte=first_reader)
            if last_reader is not None:
                chunk = chunk.filter(pk__lte=last_reader)
            with transaction.atomic():
                written = snapshot_audience(
                    self.edition,
                    chunk,
                    scheduled_for=self.scheduled_for,
                    default_window_start=self.default_window_start,
                    status=self.status,
                )
                self.with_each_chunk(written)
            self.written += written
            if not self.batches:
                continue
            # From the first id on the first time: a writer that died may
            # have left rows nobody queued.
            for first_id, last_id in batch_ranges(
                self.edition, scheduled_for=self.scheduled_for, after=after
            ):
                yield first_id, last_id
                after = last_id
        refresh_statistics(self.written)


def snapshot_audience(
    edition: Edition,
    readers: QuerySet[Subscriber],
    *,
    scheduled_for: datetime.datetime,
    default_window_start: datetime.datetime,
    status: str = Delivery.Status.QUEUED,
) -> int:
    """One Delivery per reader of `readers`, written by the database itself; return how many.

    INSERT ... SELECT: at 100,000 readers this takes a fraction of a second,
    where creating the rows from Python takes several. Each row's window
    starts where the reader's previous digest ended (default_window_start
    for a first digest), reaching back at most DIGEST_MAX_BACKLOG_DAYS; a
    reader who already has this date's delivery keeps it (unique per
    edition and reader).
    """
    backlog_start = scheduled_for - datetime.timedelta(days=settings.DIGEST_MAX_BACKLOG_DAYS)
    previous_end = (
        Delivery.objects.filter(
            subscriber=OuterRef("pk"), status__in=CARRIED, scheduled_for__lt=scheduled_for
        )
        .order_by()
        .values("subscriber")
        .annotate(latest=Max("scheduled_for"))
        .values("latest")
    )
    # A reader whose earlier digests all went unsent (missed, failed) gets
    # what the first of those should have carried.
    unsent_start = (
        Delivery.objects.filter(subscriber=OuterRef("pk"), scheduled_for__lt=scheduled_for)
        .order_by()
        .values("subscriber")
        .annotate(earliest=Min("window_start"))
        .values("earliest")
    )
    moment = DateTimeField()
    # Ordered (the readers' default order, by email), so the readers are read
    # and sorted whole before the first row is written. Streamed instead,
    # PostgreSQL's plan for a table it thinks empty (a new install's first
    # send) scans the deliveries once per reader, this INSERT's own rows
    # included: 87 s instead of 1.4 s for 100,000 readers in one statement.
    rows = readers.annotate(
        window_from=Greatest(
            Coalesce(
                Subquery(previous_end),
                Subquery(unsent_start),
                Value(default_window_start, output_field=moment),
            ),
            Value(backlog_start, output_field=moment),
        )
    ).values(
        reader_id=F("pk"),
        window_from=F("window_from"),
        zone=F("time_zone"),
        reader_format=F("digest_format"),
    )
    readers_sql, params = rows.query.sql_with_params()
    table = connection.ops.quote_name(Delivery._meta.db_table)
    with connection.cursor() as cursor:
        # "WHERE true" lets SQLite parse ON CONFLICT after a SELECT. The SQL is
        # Django's own for the queryset and every value is a parameter.
        cursor.execute(
            f"INSERT INTO {table} (edition_id, subscriber_id, status, attempts, created_at, "  # noqa: S608
            "last_error, scheduled_for, window_start, time_zone, digest_format) "
            "SELECT %s, reader_id, %s, 0, %s, '', %s, window_from, zone, reader_format "
            f"FROM ({readers_sql}) "
            "AS audience WHERE true ON CONFLICT DO NOTHING",
            [
                edition.pk,
                status,
                # Raw SQL: the values as Django would store them (UTC on SQLite).
                connection.ops.adapt_datetimefield_value(timezone.now()),
                connection.ops.adapt_datetimefield_value(scheduled_for),
                *params,
            ],
        )
        return cursor.rowcount


def refresh_statistics(added: int) -> None:
    """Tell PostgreSQL's planner about a large audience just written (ANALYZE the deliveries).

    Planned with statistics of a table that was nearly empty (a new list's
    first send, a list that doubled, or autovacuum not having come by yet),
    each batch's claim reads every queued row of the edition instead of its
    own 500: a 100,000-reader send spent 9 ms a batch on it instead of 0.3 ms,
    and the time grows with the list. ANALYZE samples the table, so it costs
    about the same at any size (tenths of a second), once per large write.
    """
    if connection.vendor != "postgresql" or added < STATISTICS_MIN_ROWS:
        return
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        (estimate,) = cursor.fetchone() or (0,)
        if added > 0.1 * max(estimate, 0):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def mark_sending(edition: Edition, now: datetime.datetime) -> None:
    """The edition has deliveries on their way (again, for a later zone)."""
    # Written only when it changes: each morning's each chunk comes here,
    # and a write also drops the site's cached pages.
    Edition.objects.filter(pk=edition.pk).exclude(status=Edition.Status.HELD).exclude(
        status=Edition.Status.SENDING, sent_at=None
    ).update(status=Edition.Status.SENDING, sent_at=None)
    Edition.objects.filter(pk=edition.pk, send_started_at=None).update(send_started_at=now)
