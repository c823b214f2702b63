"""Over a far relay's pool a batch reads its claimed rows a part at a time.

Its first emails go once its first rows are read, and the rest are read
while those are on the wire, so the pool's connections do not wait for the
whole batch to be read. Each part is checked as it is read (the reader
still entitled, their sections), and whatever stops the batch hands back
the rows it never read as well as those it read and did not send. Over one
connection to a near relay, where the batch's own thread is the one at
work, the batch reads its rows at once.
"""

import collections

import pytest

from delivery import batches, by_hand
from delivery.models import Delivery
from newsletter.tests.factories import built_edition, make_article
from subscriptions.models import Subscriber
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


@pytest.fixture
def pool_of_two(pooled, settings):
    """A pool (conftest's `pooled`) of two connections: a window of six readers."""
    settings.MAILERS["default"]["OPTIONS"]["connections"] = 2
    return pooled


@pytest.fixture
def readers(settings, monkeypatch):
    # One batch of ten, read as 2 + 3 + 3 + 2 over a pool.
    settings.DIGEST_BATCH_SIZE = 10
    monkeypatch.setattr(batches, "FIRST_PART", 2)
    monkeypatch.setattr(batches, "PART", 3)
    make_article()
    return [make_subscriber(f"reader{n:02d}@example.com") for n in range(10)]


def statuses() -> collections.Counter:
    return collections.Counter(Delivery.objects.values_list("status", flat=True))


def recording_reads(
    monkeypatch, carrier: type[batches.SMTPPool | batches.Sender]
) -> list[tuple[int, int]]:
    """(emails handed to the carrier so far, rows read) for each read of the batch's rows."""
    handed: list[int] = []
    reads: list[tuple[int, int]] = []
    real_read, real_send = batches.read_claimed, carrier.send

    def read(ids):
        reads.append((len(handed), len(ids)))
        return real_read(ids)

    def send(self, delivery, digest):
        handed.append(delivery.pk)
        return real_send(self, delivery, digest)

    monkeypatch.setattr(batches, "read_claimed", read)
    monkeypatch.setattr(carrier, "send", send)
    return reads


def test_over_a_pool_the_first_emails_go_before_the_rest_of_the_batch_is_read(
    pool_of_two, readers, monkeypatch
):
    reads = recording_reads(monkeypatch, batches.SMTPPool)

    report = by_hand.send_edition_in_process(built_edition(MONDAY).pk)

    assert reads == [(0, 2), (2, 3), (5, 3), (8, 2)]
    assert report.sent == 10
    assert collections.Counter(pool_of_two.recipients()) == {r.email: 1 for r in readers}
    assert statuses() == {Delivery.Status.SENT: 10}


def test_over_one_connection_to_a_near_relay_the_batch_is_read_at_once(
    smtp_server, readers, monkeypatch
):
    reads = recording_reads(monkeypatch, batches.Sender)

    report = by_hand.send_edition_in_process(built_edition(MONDAY).pk)

    assert reads == [(0, 10)]
    assert report.sent == 10
    assert collections.Counter(smtp_server.recipients()) == {r.email: 1 for r in readers}


def test_a_reader_who_stopped_being_entitled_is_skipped_in_any_part(pool_of_two, readers):
    edition = built_edition(MONDAY)
    batch: list[tuple[int, int]] = []
    by_hand.send_edition(edition, on_batch=lambda first, last: batch.append((first, last)))
    # After the audience was written: one reader of the first part and one
    # of the last unsubscribe.
    gone = [readers[1].email, readers[8].email]
    Subscriber.objects.filter(email__in=gone).update(
        email_status=Subscriber.EmailStatus.UNSUBSCRIBED
    )

    ((first, last),) = batch
    report = batches.send_batch(edition.pk, first, last)

    assert (report.sent, report.skipped) == (8, 2)
    assert sorted(pool_of_two.recipients()) == sorted({r.email for r in readers} - set(gone))
    skipped = Delivery.objects.filter(status=Delivery.Status.SKIPPED)
    assert sorted(skipped.values_list("subscriber__email", flat=True)) == sorted(gone)
    assert set(skipped.values_list("last_error", flat=True)) == {batches.NOT_ENTITLED}


def never_read(count: int) -> list[Delivery]:
    """The batch's last `count` rows."""
    return list(Delivery.objects.order_by("-pk")[:count])


@pytest.mark.faults
def test_rows_never_read_go_back_to_the_queue_when_the_server_stops_the_batch(
    pool_of_two, readers, monkeypatch
):
    # Every DATA meets a 451: the first answer stops the batch, with seven
    # readers handed to the pool (its window of six, and one more), three read
    # and not handed, and the last part of two never read.
    pool_of_two.inject_faults(refuse_data_after=0, data_reply=[451, "4.3.0 Try again later"])
    reads = recording_reads(monkeypatch, batches.SMTPPool)
    edition = built_edition(MONDAY)

    with pytest.raises(batches.TransientSendError, match="451"):
        by_hand.send_edition_in_process(edition.pk)

    assert [rows for _handed, rows in reads] == [2, 3, 3]
    assert pool_of_two.received() == []
    assert statuses() == {Delivery.Status.QUEUED: 10}
    assert {(d.attempts, d.lease_until) for d in never_read(2)} == {(0, None)}

    pool_of_two.clear_faults()
    by_hand.send_edition_in_process(edition.pk)
    assert collections.Counter(pool_of_two.recipients()) == {r.email: 1 for r in readers}
    assert statuses() == {Delivery.Status.SENT: 10}


@pytest.mark.faults
def test_rows_never_read_go_back_to_the_queue_when_the_batch_breaks(
    pool_of_two, readers, monkeypatch
):
    real_read = batches.read_claimed
    reads: list[int] = []

    def read_then_break(ids):
        reads.append(len(ids))
        if len(reads) == 3:
            raise RuntimeError("the database went away while reading the third part")
        return real_read(ids)

    monkeypatch.setattr(batches, "read_claimed", read_then_break)
    edition = built_edition(MONDAY)
    with pytest.raises(RuntimeError, match="third part"):
        by_hand.send_edition_in_process(edition.pk)

    # Of the five handed to the pool, those the server accepted are recorded
    # sent; one a lane was writing is dropped with its connection, never
    # delivered. The rest, the part that failed to read and the one after it
    # wait in the queue at once, not for the claim to expire.
    received = collections.Counter(pool_of_two.recipients())
    assert set(received.values()) <= {1}
    sent = len(received)
    assert statuses() == collections.Counter({"sent": sent, "queued": 10 - sent})
    assert {(d.status, d.attempts, d.lease_until) for d in never_read(5)} == {
        (Delivery.Status.QUEUED, 0, None)
    }

    monkeypatch.setattr(batches, "read_claimed", real_read)
    by_hand.send_edition_in_process(edition.pk)
    assert collections.Counter(pool_of_two.recipients()) == {r.email: 1 for r in readers}
