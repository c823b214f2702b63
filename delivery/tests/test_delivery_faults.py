"""The send survives a mail server that fails, senders that die, and duplicates.

Each test ends with the same check: every entitled reader got the digest
exactly once (or, after a crash, at most the documented bounded repeat), and
the Delivery table says what happened.
"""

import collections
import datetime
import time

import pytest
import time_machine
from django.utils import timezone

from delivery import batches, by_hand, recovery, tasks
from delivery.leases import lease_length
from delivery.models import Delivery
from newsletter.models import Edition
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND
from testing.concurrency import run_at_once

pytestmark = [pytest.mark.faults, pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


@pytest.fixture
def readers(settings):
    settings.DIGEST_BATCH_SIZE = 4
    make_article()
    return [make_subscriber(f"reader{n:02d}@example.com") for n in range(10)]


def received_counts(smtp_server) -> collections.Counter:
    return collections.Counter(smtp_server.recipients())


def statuses() -> collections.Counter:
    return collections.Counter(Delivery.objects.values_list("status", flat=True))


def test_server_refusing_mid_batch_then_recovering_loses_and_doubles_nothing(
    smtp_server, readers, fault_table
):
    smtp_server.inject_faults(refuse_data_after=6, data_reply=[451, "4.3.0 Try again later"])
    edition = built_edition(MONDAY)

    with pytest.raises(batches.TransientSendError, match="451"):
        by_hand.send_edition_in_process(edition.pk)

    assert len(smtp_server.received()) == 6
    assert statuses() == {Delivery.Status.SENT: 6, Delivery.Status.QUEUED: 4}
    # The rows of the interrupted batch say why; only the one whose send met
    # the 451 used an attempt; the next batch was not tried at all.
    interrupted = Delivery.objects.filter(status=Delivery.Status.QUEUED, last_error__contains="451")
    assert interrupted.count() == 2
    assert sorted(interrupted.values_list("attempts", flat=True)) == [0, 1]
    edition.refresh_from_db()
    assert edition.status == Edition.Status.SENDING

    smtp_server.clear_faults()
    cleared_at = time.monotonic()
    by_hand.send_edition_in_process(edition.pk)

    assert received_counts(smtp_server) == {reader.email: 1 for reader in readers}
    assert statuses() == {Delivery.Status.SENT: 10}
    edition.refresh_from_db()
    assert edition.status == Edition.Status.SENT
    fault_table(
        "SMTP answers 451 mid-batch, then recovers (the retry's wait not counted)",
        [reader.email for reader in readers],
        cleared_at,
    )


def test_a_permanently_refused_address_is_recorded_and_others_are_sent(smtp_server, readers):
    bad = readers[3]
    # A refusal of the message, not of the address: one soft bounce, no suppression.
    smtp_server.inject_faults(refuse_recipients={bad.email: [554, "5.7.1 Message refused"]})
    edition = built_edition(MONDAY)

    report = by_hand.send_edition_in_process(edition.pk)

    assert (report.sent, report.failed) == (9, 1)
    failed = Delivery.objects.get(subscriber=bad)
    assert failed.status == Delivery.Status.FAILED
    assert "554" in failed.last_error and "Message refused" in failed.last_error
    assert bad.email not in smtp_server.recipients()
    edition.refresh_from_db()
    assert edition.status == Edition.Status.SENT

    # Staff fix the address's problem and resend to the failed ones only.
    smtp_server.clear_faults()
    assert recovery.resend_failed(edition) == 1
    by_hand.send_edition_in_process(edition.pk)
    assert received_counts(smtp_server) == {reader.email: 1 for reader in readers}


def test_a_sender_that_died_mid_batch_is_resumed_with_a_bounded_repeat(
    smtp_server, readers, settings, monkeypatch
):
    settings.DIGEST_BATCH_SIZE = 10
    settings.DIGEST_CHECKPOINT_EVERY = 3
    edition = built_edition(MONDAY)
    by_hand.send_edition(edition)
    ((first_id, last_id),) = batches.batch_ranges(edition)

    # The worker is killed once its 5th email is through: SystemExit stands in
    # for the SIGKILL, which runs no cleanup either (the ledger is not flushed).
    real_send = batches.Sender.send
    sent_so_far: list[str] = []

    def send_then_die(self, delivery, digest):
        if len(sent_so_far) == 5:
            self.finish()  # the 5th, in flight, is accepted; nobody records it
            raise SystemExit("killed")
        sent_so_far.append(delivery.subscriber.email)
        return real_send(self, delivery, digest)

    monkeypatch.setattr(batches.Sender, "send", send_then_die)
    with pytest.raises(SystemExit):
        batches.send_batch(edition.pk, first_id, last_id)
    monkeypatch.setattr(batches.Sender, "send", real_send)

    # 3 rows reached the checkpoint; the other claimed rows stay "sending".
    assert statuses() == {Delivery.Status.SENT: 3, Delivery.Status.SENDING: 7}
    # While the dead sender's lease holds nobody takes them over...
    by_hand.send_edition_in_process(edition.pk)
    assert len(smtp_server.received()) == 5
    # ...after its lease runs out (a minute), they are sent again.
    later = timezone.now() + lease_length() + datetime.timedelta(seconds=1)
    with time_machine.travel(later):
        assert recovery.editions_to_resume() == [edition]
        by_hand.send_edition_in_process(edition.pk)

    counts = received_counts(smtp_server)
    assert set(counts) == {reader.email for reader in readers}
    repeated = [email for email, count in counts.items() if count > 1]
    # The two sent after the last checkpoint are the bounded repeat.
    assert repeated == sent_so_far[3:5]
    assert max(counts.values()) == 2
    assert statuses() == {Delivery.Status.SENT: 10}
    # The table says which readers may have had it twice: the 7 rows the dead
    # sender had claimed (the 2 it sent unmarked and the 5 it never reached).
    noted = Delivery.objects.filter(last_error=recovery.RESUMED_NOTE)
    assert noted.count() == 7
    assert set(repeated) <= set(noted.values_list("subscriber__email", flat=True))


@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_send_each_reader_once(smtp_server, readers, fault_table):
    edition = built_edition(MONDAY)
    started = time.monotonic()

    run_at_once(lambda: by_hand.send_edition_in_process(edition.pk), times=2)
    fault_table("two senders at once on one edition", [r.email for r in readers], started)

    assert received_counts(smtp_server) == {reader.email: 1 for reader in readers}
    assert statuses() == {Delivery.Status.SENT: 10}


def test_beat_firing_twice_sends_once(smtp_server, readers, eager_celery, fault_table):
    started = time.monotonic()
    # Monday 06:01 in New York, the readers' zone.
    with time_machine.travel("2026-11-30T11:01:00Z"):
        first = tasks.send_due_digests.delay().get()
        second = tasks.send_due_digests.delay().get()

    assert (first, second) == (3, 0)  # 10 readers in batches of 4; then nothing new
    assert Edition.objects.get().date == MONDAY
    assert received_counts(smtp_server) == {reader.email: 1 for reader in readers}
    fault_table("beat firing twice", [r.email for r in readers], started)


def test_batch_task_retries_with_backoff_when_the_server_is_down(smtp_server, readers, monkeypatch):
    edition = built_edition(MONDAY)
    by_hand.send_edition(edition)
    first_id, last_id = next(batches.batch_ranges(edition))
    smtp_server.inject_faults(refuse_data_after=0)
    retries = []

    def fake_retry(*, exc, countdown):
        retries.append((type(exc).__name__, countdown))
        return RuntimeError("retry scheduled")

    monkeypatch.setattr(tasks.send_delivery_batch, "retry", fake_retry)
    with pytest.raises(RuntimeError, match="retry scheduled"):
        tasks.send_delivery_batch.run(edition.pk, first_id, last_id)

    assert retries == [("TransientSendError", tasks.RETRY_BASE_SECONDS)]
    assert statuses()[Delivery.Status.QUEUED] == 10


def test_only_the_reader_tried_uses_up_attempts_while_the_server_is_down(smtp_server, readers):
    smtp_server.inject_faults(refuse_data_after=0)
    edition = built_edition(MONDAY)
    for _ in range(batches.MAX_ATTEMPTS):
        with pytest.raises(batches.TransientSendError):
            by_hand.send_edition_in_process(edition.pk)

    # Each run stopped at its first send: that reader, tried five times, is
    # failed; the others were never tried and still wait in the queue.
    (failed,) = Delivery.objects.filter(status=Delivery.Status.FAILED)
    assert f"after {batches.MAX_ATTEMPTS} attempts" in failed.last_error
    assert statuses() == {Delivery.Status.FAILED: 1, Delivery.Status.QUEUED: 9}
    assert set(Delivery.objects.exclude(pk=failed.pk).values_list("attempts", flat=True)) == {0}

    # Staff resend once the server is back: a fresh set of attempts.
    smtp_server.clear_faults()
    assert recovery.resend_failed(edition) == 1
    assert Delivery.objects.get(pk=failed.pk).attempts == 0
    by_hand.send_edition_in_process(edition.pk)
    assert received_counts(smtp_server) == {reader.email: 1 for reader in readers}


def test_a_greylisted_reader_is_deferred_and_the_batch_goes_on(smtp_server, readers):
    greylisted = readers[2]
    smtp_server.inject_faults(
        refuse_recipients={greylisted.email: [450, "4.2.0 Greylisted, try again later"]}
    )
    edition = built_edition(MONDAY)

    report = by_hand.send_edition_in_process(edition.pk)

    assert (report.sent, report.requeued) == (9, 1)
    deferred = Delivery.objects.get(subscriber=greylisted)
    assert (deferred.status, deferred.attempts) == (Delivery.Status.QUEUED, 1)
    assert "Greylisted" in deferred.last_error
    edition.refresh_from_db()
    assert edition.status == Edition.Status.SENDING  # not done until that reader has it

    smtp_server.clear_faults()
    by_hand.send_edition_in_process(edition.pk)
    assert received_counts(smtp_server) == {reader.email: 1 for reader in readers}
    edition.refresh_from_db()
    assert edition.status == Edition.Status.SENT


def test_an_unexpected_error_mid_batch_records_the_sent_and_frees_the_rest(
    smtp_server, readers, settings, monkeypatch
):
    settings.DIGEST_BATCH_SIZE = 10
    edition = built_edition(MONDAY)
    real_send = batches.Sender.send
    calls: list[int] = []

    def send_then_break(self, delivery, digest):
        if len(calls) == 4:
            raise RuntimeError("a bug in the fifth reader's email")
        calls.append(delivery.pk)
        return real_send(self, delivery, digest)

    monkeypatch.setattr(batches.Sender, "send", send_then_break)
    with pytest.raises(RuntimeError):
        by_hand.send_edition_in_process(edition.pk)

    # The three the server accepted are marked (no repeat later); the fourth,
    # in flight, is dropped with the connection, never delivered; it and the
    # rest are queued at once (no wait for the claim to expire).
    assert len(smtp_server.received()) == 3
    assert statuses() == {Delivery.Status.SENT: 3, Delivery.Status.QUEUED: 7}
    monkeypatch.setattr(batches.Sender, "send", real_send)
    by_hand.send_edition_in_process(edition.pk)
    assert received_counts(smtp_server) == {reader.email: 1 for reader in readers}


def test_a_send_still_stuck_when_the_morning_is_over_is_recorded_missed(smtp_server, readers):
    smtp_server.inject_faults(refuse_data_after=0)
    edition = built_edition(MONDAY)
    with pytest.raises(batches.TransientSendError):
        by_hand.send_edition_in_process(edition.pk)

    with time_machine.travel(
        timezone.now() + recovery.catch_up_window() + datetime.timedelta(minutes=1)
    ):
        assert recovery.editions_to_resume() == []

    assert statuses() == {Delivery.Status.MISSED: 10}
    errors = list(Delivery.objects.values_list("last_error", flat=True))
    assert all(e.startswith("Not sent within 3 hours of the reader's morning") for e in errors)
    # The readers whose send was tried say what the server answered.
    assert sum("451" in e for e in errors) == 4
    edition.refresh_from_db()
    assert edition.status == Edition.Status.SENT
