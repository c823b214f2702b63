"""The audience is written in chunks: the first batches go before the last reader is written.

Chunks of 2, then 4 readers here (1,000 doubling to 64,000 in production).
A writer that dies between two chunks leaves a lease that runs out; the next
writer (the sweep's send_edition for a send by hand, the next minute's
scheduler for a local morning) writes the audience again, which adds only
the readers the first one did not reach.
"""

import datetime

import pytest
from django.db import OperationalError

from delivery import audience, by_hand, recovery, scheduler
from delivery.leases import lease_length
from delivery.models import Delivery, SendSlot
from newsletter import pagecache
from newsletter.models import Edition
from newsletter.tests.factories import built_edition, make_article
from subscriptions.models import Subscriber
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = pytest.mark.django_db

# Past every lease the writers take (DIGEST_LEASE_SECONDS).
AFTER_THE_LEASE = lease_length() + datetime.timedelta(seconds=1)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(audience, "FIRST_CHUNK", 2)
    monkeypatch.setattr(audience, "LARGEST_CHUNK", 4)


@pytest.fixture
def readers() -> list[int]:
    make_article()
    return [make_subscriber().pk for _ in range(11)]


def audience_of(edition: Edition) -> list[int]:
    return sorted(edition.deliveries.values_list("subscriber_id", flat=True))


def die_at_chunk(monkeypatch, number: int) -> None:
    """The writer's connection is lost while it writes this chunk (counted from 1); only then."""
    write = audience.snapshot_audience
    calls = iter(range(1, 1000))

    def snapshot_audience(*args, **kwargs):
        if next(calls) == number:
            raise OperationalError("server closed the connection unexpectedly")
        return write(*args, **kwargs)

    monkeypatch.setattr(audience, "snapshot_audience", snapshot_audience)


def test_reader_ranges_start_small_and_double_up_to_the_largest_chunk(readers):
    first = min(readers)
    assert list(audience.reader_ranges(Subscriber.objects.all())) == [
        (first, first + 1),
        (first + 2, first + 5),
        (first + 6, first + 9),
        (first + 10, None),
    ]


def test_reader_ranges_count_the_readers_drawn_from_not_the_ids():
    # A zone's readers among many others: the chunks hold two, then four of them.
    london = []
    for _ in range(8):
        london.append(make_subscriber(time_zone="Europe/London").pk)
        make_subscriber(time_zone="Asia/Tokyo")
    ranges = list(audience.reader_ranges(Subscriber.objects.filter(time_zone="Europe/London")))
    assert ranges == [
        (london[0], london[2] - 1),
        (london[2], london[6] - 1),
        (london[6], None),
    ]


def test_an_audience_smaller_than_the_first_chunk_is_one_chunk(monkeypatch):
    monkeypatch.setattr(audience, "FIRST_CHUNK", 1000)
    ids = [make_subscriber().pk for _ in range(3)]
    assert list(audience.reader_ranges(Subscriber.objects.all())) == [(ids[0], None)]


def test_no_readers_no_ranges():
    assert list(audience.reader_ranges(Subscriber.objects.all())) == []


def test_each_chunks_batches_are_handed_out_once_it_is_committed(readers, settings):
    settings.DIGEST_BATCH_SIZE = 3
    edition = built_edition(MONDAY)
    handed_out = []

    def on_batch(first_id: int, last_id: int) -> None:
        # What a worker picking the batch up at once would find written.
        handed_out.append((first_id, last_id, edition.deliveries.count()))

    assert by_hand.send_edition(edition, on_batch=on_batch) is True

    # The first chunk's two readers went before the rest were written.
    assert handed_out[0][2] == 2
    # Batches of three within each chunk (2, 4, 4, then 1 readers).
    assert [written for *_, written in handed_out] == [2, 6, 6, 10, 10, 11]
    # Every row in exactly one batch.
    ids = list(edition.deliveries.order_by("pk").values_list("pk", flat=True))
    batched = [pk for first, last, _ in handed_out for pk in ids if first <= pk <= last]
    assert batched == ids
    assert audience_of(edition) == sorted(readers)
    edition.refresh_from_db()
    assert edition.audience_lease_until is None


def test_the_edition_is_not_sent_before_its_last_reader_is_written(readers):
    edition = built_edition(MONDAY)
    done = []

    def send_at_once(first_id: int, last_id: int) -> None:
        # A worker faster than the writer: the chunk's rows sent at once.
        edition.deliveries.filter(pk__gte=first_id, pk__lte=last_id).update(
            status=Delivery.Status.SENT, sent_at=MONDAY_BEFORE_SEND
        )
        done.append(recovery.finish_if_done(edition.pk))

    by_hand.send_edition(edition, on_batch=send_at_once)

    assert done and not any(done)  # every batch found the audience still being written
    edition.refresh_from_db()
    # The writer marked it sent once the last chunk was in.
    assert edition.status == Edition.Status.SENT
    assert edition.deliveries.filter(status=Delivery.Status.SENT).count() == len(readers)


def test_a_send_by_hand_whose_writer_died_is_written_in_full_by_the_next(
    readers, monkeypatch, clock
):
    edition = built_edition(MONDAY)
    die_at_chunk(monkeypatch, 3)
    with pytest.raises(OperationalError):
        by_hand.send_edition(edition, on_batch=lambda first_id, last_id: None)
    edition.refresh_from_db()
    assert edition.status == Edition.Status.SENDING
    assert len(audience_of(edition)) == 6  # the first two chunks
    # Its rows all sent: still not done, someone must write the rest.
    edition.deliveries.update(status=Delivery.Status.SENT, sent_at=MONDAY_BEFORE_SEND)
    assert recovery.finish_if_done(edition.pk) is False

    # While its lease lasts, nobody takes over.
    assert by_hand.send_edition(edition) is False
    assert edition not in recovery.editions_to_resume(MONDAY_BEFORE_SEND)

    clock.shift(AFTER_THE_LEASE)
    later = MONDAY_BEFORE_SEND + AFTER_THE_LEASE
    assert recovery.editions_to_resume(later) == [edition]
    joined_since = make_subscriber().pk
    batches = []
    assert by_hand.send_edition(edition, later, on_batch=lambda *batch: batches.append(batch))

    assert audience_of(edition) == sorted(readers)  # once each, and not who joined since
    assert joined_since not in audience_of(edition)
    # The new rows were handed out; all sent, the edition is done.
    rows = edition.deliveries.filter(status=Delivery.Status.QUEUED)
    assert rows.count() == len(readers) - 6
    assert all(
        any(first <= pk <= last for first, last in batches)
        for pk in rows.values_list("pk", flat=True)
    )
    edition.refresh_from_db()
    assert edition.audience_lease_until is None
    assert edition.deliveries.get(subscriber_id=readers[0]).status == Delivery.Status.SENT
    rows.update(status=Delivery.Status.SENT, sent_at=later)
    assert recovery.finish_if_done(edition.pk) is True


@pytest.mark.clock("2026-12-03T06:01:00+00:00")
def test_a_morning_whose_writer_died_is_written_in_full_by_the_next_scheduler(monkeypatch, clock):
    make_article()
    london = [make_subscriber(time_zone="Europe/London").pk for _ in range(11)]
    # Readers who joined before their morning.
    Subscriber.objects.update(created_at=datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC))
    now = datetime.datetime(2026, 12, 3, 6, 1, tzinfo=datetime.UTC)  # her 06:00 has come
    die_at_chunk(monkeypatch, 2)
    handed_out = []
    with pytest.raises(OperationalError):
        for batch in scheduler.schedule_due_sends(now):
            handed_out.append(batch)
    slot = SendSlot.objects.get()
    assert slot.outcome == SendSlot.Outcome.WRITING
    edition = Edition.objects.get()
    assert len(audience_of(edition)) == 2 and handed_out  # the first chunk went out
    # Sent before the rest is written: the edition is not done yet.
    edition.deliveries.update(status=Delivery.Status.SENT, sent_at=now)
    assert recovery.finish_if_done(edition.pk) is False

    # The next minute's scheduler, within the writer's lease: it leaves it be.
    assert list(scheduler.schedule_due_sends(now + datetime.timedelta(seconds=30))) == []

    later = now + AFTER_THE_LEASE
    clock.move_to(later)
    batches = list(scheduler.schedule_due_sends(later))

    assert audience_of(edition) == sorted(london)
    slot.refresh_from_db()
    assert (slot.outcome, slot.readers, slot.lease_until) == (
        SendSlot.Outcome.QUEUED,
        len(london),
        None,
    )
    queued = edition.deliveries.filter(status=Delivery.Status.QUEUED)
    assert sorted(queued.values_list("pk", flat=True)) == sorted(
        pk
        for _, first_id, last_id in batches
        for pk in queued.filter(pk__gte=first_id, pk__lte=last_id).values_list("pk", flat=True)
    )
    edition.refresh_from_db()
    assert edition.status == Edition.Status.SENDING
    # And once all are in, nobody writes it again.
    assert list(scheduler.schedule_due_sends(later + AFTER_THE_LEASE)) == []


@pytest.mark.clock(MONDAY_BEFORE_SEND)
def test_each_chunk_marks_the_edition_sending_but_writes_it_only_when_that_changes(monkeypatch):
    make_article()
    edition = built_edition(MONDAY)
    now = datetime.datetime.now(datetime.UTC)
    # Each write of the edition drops the site's cached pages.
    invalidated = []
    monkeypatch.setattr(pagecache, "invalidate", lambda: invalidated.append(True))

    audience.mark_sending(edition, now)
    edition.refresh_from_db()
    assert (edition.status, edition.sent_at) == (Edition.Status.SENDING, None)
    assert len(invalidated) == 2  # marked sending, its start noted
    started = edition.send_started_at

    # Every later chunk (and morning) finds it sending: nothing written.
    audience.mark_sending(edition, now + datetime.timedelta(minutes=30))
    edition.refresh_from_db()
    assert (edition.status, edition.send_started_at) == (Edition.Status.SENDING, started)
    assert len(invalidated) == 2

    # A later zone's morning after the edition was marked sent opens it again.
    Edition.objects.filter(pk=edition.pk).update(status=Edition.Status.SENT, sent_at=now)
    audience.mark_sending(edition, now + datetime.timedelta(hours=1))
    edition.refresh_from_db()
    assert (edition.status, edition.sent_at) == (Edition.Status.SENDING, None)
