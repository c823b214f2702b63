"""Real worker processes, really killed; a real broker, really flushed.

Each test starts Celery workers as shipped (`python -m celery -A config
worker`) in their own processes, with the environment a deployment gives
them (SMTP_URL at this test's SMTP sink, the test run's database and
broker) and a Celery queue of the test's own (testing/process_settings.py).
The data they read is committed (transaction=True): on SQLite the test
database is a file the workers open too, on PostgreSQL the test database by
its name.

The sink is made slow and far (delay_data_seconds, per message on each of a
batch's SMTP_CONNECTIONS connections; delay_noop_seconds) so that a kill or
a flush lands while a batch is half sent. Then the documented recovery runs (the sweep
`resume_stalled_sends`, as beat runs it every minute, here every half
second) and the test checks that every entitled reader got the digest,
repeats stay within the documented bound, the Delivery table says what
happened, and how long it took (`make faults` prints it). Leases are
LEASE_SECONDS here, for the workers and for the sweep alike, instead of
production's DIGEST_LEASE_SECONDS (45).
"""

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from config.celery import app
from delivery import recovery, tasks
from delivery.models import Delivery
from newsletter.models import Edition
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY
from testing.concurrency import wait_for

# The workers are other processes, on the machine's clock: so is the test.
pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True), pytest.mark.real_clock]

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 4
# The workers mark rows sent every 50 emails here, so that a batch of 80
# has passed its first checkpoint and not yet its end when a worker is killed.
CHECKPOINT_EVERY = 50
# The sink answers a NOOP this late, as a relay far away does: a batch then
# sends over SMTP_CONNECTIONS connections (delivery.batches.relay_is_far),
# this test's own number (SMTP_URL's ?connections=), not the product's.
SMTP_CONNECTIONS = 8
FAR_NOOP_SECONDS = 0.01
# Production's bound: every reader has it within 2 minutes of the fault.
RECOVERY_BOUND_SECONDS = 120


@pytest.fixture(autouse=True)
def short_leases(settings):
    settings.DIGEST_LEASE_SECONDS = LEASE_SECONDS


def sweep_until_resumed(edition_id: int) -> bool:
    """Beat's sweep, run until it restarts the send (every half second here)."""
    return wait_for(lambda: tasks.resume_stalled_sends() == [edition_id], interval=0.5)


def swept_and_sent(edition_id: int) -> bool:
    """One run of beat's sweep; then whether the edition is sent."""
    tasks.resume_stalled_sends()
    return Edition.objects.get(pk=edition_id).status == Edition.Status.SENT


def database_url() -> str:
    """The URL of the database this test writes to, for other processes."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    if connection.vendor == "postgresql":
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        return f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    pytest.skip(f"no worker URL for a {connection.vendor} database")


# Celery's INFO lines for a task taken from the broker, and for its end.
TAKEN = re.compile(r"Task [\w.]+\[([0-9a-f-]+)\] received")
ENDED = re.compile(r"Task [\w.]+\[([0-9a-f-]+)\] (?:succeeded|raised|retry|failed)")


class Worker:
    """`python -m celery -A config worker` in its own process group."""

    def __init__(
        self,
        queue: str,
        smtp_url: str,
        log: Path,
        concurrency: int,
        batch_size: int,
        extra_env: dict[str, str],
    ):
        env = {
            **os.environ,
            **extra_env,
            "DATABASE_URL": database_url(),
            "SMTP_URL": f"{smtp_url}?timeout=10&connections={SMTP_CONNECTIONS}",
            # The advanced settings are constants, not variables: these are the test's.
            "DJANGO_SETTINGS_MODULE": "testing.process_settings",
            "TEST_SETTINGS": json.dumps(
                {
                    "CELERY_TASK_DEFAULT_QUEUE": queue,
                    "DIGEST_BATCH_SIZE": batch_size,
                    "DIGEST_LEASE_SECONDS": LEASE_SECONDS,
                    "DIGEST_CHECKPOINT_EVERY": CHECKPOINT_EVERY,
                }
            ),
        }
        self.log = log
        command = [sys.executable, "-m", "celery", "-A", "config", "worker"]
        command += ["--concurrency", str(concurrency), "--loglevel", "INFO"]
        command += ["--hostname", f"{queue}-{uuid.uuid4().hex[:6]}@%h"]
        # Startup speed only: no waiting for other workers' hello.
        command += ["--without-mingle", "--without-gossip"]
        # The worker writes to its own copy of the file; ours closes at once.
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: the pool children die with it
            )
        if not wait_for(lambda: " ready." in self.output() or self.process.poll() is not None):
            self.kill()
            pytest.fail(f"worker did not start:\n{self.output()}")
        if self.process.poll() is not None:
            pytest.fail(f"worker exited:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def idle(self) -> bool:
        """Every task this worker took from the broker has ended (its log says how each did)."""
        log = self.output()
        return collections.Counter(TAKEN.findall(log)) <= collections.Counter(ENDED.findall(log))

    def kill(self) -> None:
        """SIGKILL the main process and its pool: no cleanup, no acknowledgements."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.process.wait(timeout=10)


@pytest.fixture
def workers(celery_queue, smtp_server, tmp_path):
    started: list[Worker] = []

    def start(*, concurrency: int = 2, batch_size: int = 500, **extra_env: str) -> Worker:
        log = tmp_path / f"worker{len(started)}.log"
        worker = Worker(celery_queue, smtp_server.url, log, concurrency, batch_size, extra_env)
        started.append(worker)
        return worker

    yield start
    # The test has its answer: no warm shutdown to wait for (a batch mid-send would hold it).
    for worker in started:
        worker.kill()


def make_readers(count: int) -> list[str]:
    make_article(title="Under fire")
    return [make_subscriber(f"reader{n:03d}@example.com").email for n in range(count)]


def statuses() -> collections.Counter:
    return collections.Counter(Delivery.objects.values_list("status", flat=True))


def test_a_worker_killed_mid_batch_is_resumed_with_a_bounded_repeat(
    smtp_server, workers, fault_table
):
    readers = make_readers(160)
    edition = built_edition(MONDAY)
    # Two batches of 80, one for each of the worker's two processes; each
    # marks its rows sent every CHECKPOINT_EVERY (50) emails.
    smtp_server.inject_faults(
        delay_data_seconds=0.02 * SMTP_CONNECTIONS, delay_noop_seconds=FAR_NOOP_SECONDS
    )
    first = workers(concurrency=2, batch_size=80)
    tasks.send_edition.delay(edition.pk)

    # Kill once both batches are past their first checkpoint, before their end.
    assert wait_for(lambda: statuses()[Delivery.Status.SENT] >= 2 * CHECKPOINT_EVERY)
    first.kill()
    killed_at = time.monotonic()
    received_before = len(smtp_server.received())
    counts = statuses()
    assert received_before < len(readers), "the kill came too late to be mid-batch"
    assert counts[Delivery.Status.SENDING] > 0

    # The dead worker's leases hold for a little longer: the sweep leaves
    # its rows alone until they run out...
    held = dict(
        Delivery.objects.filter(status=Delivery.Status.SENDING).values_list("pk", "lease_until")
    )
    resumed = tasks.resume_stalled_sends()
    # A lease still running once the sweep is over ran throughout it. (On a
    # loaded machine some may run out before the sweep: those it may take.)
    live = {pk for pk, until in held.items() if until is not None and until > timezone.now()}
    still_held = Delivery.objects.filter(pk__in=live, status=Delivery.Status.SENDING)
    assert set(still_held.values_list("pk", flat=True)) == live
    if live == set(held):
        assert resumed == []
    # ...and then hands them to a live worker: beat sweeps until the edition
    # is sent (here every half second), since the two batches' leases may run
    # out at different sweeps (a first sweep on a loaded machine can find one
    # batch's rows free and the other's still held).
    workers(concurrency=2, batch_size=80)
    assert wait_for(
        lambda: swept_and_sent(edition.pk), timeout=RECOVERY_BOUND_SECONDS, interval=0.5
    )
    row = fault_table("one worker SIGKILLed mid-batch (2 processes)", readers, killed_at)
    assert row.lost == 0 and row.recovered_after < RECOVERY_BOUND_SECONDS
    received = collections.Counter(smtp_server.recipients())
    assert set(received) == set(readers)
    repeated = [email for email, times in received.items() if times > 1]
    # Usually some readers got it twice; none if the kill fell just after a
    # checkpoint. Never three times.
    assert max(received.values()) <= 2
    # At most CHECKPOINT_EVERY unmarked emails per batch in flight (two), and
    # the pool's window (two a connection) whose outcomes were not yet read.
    assert len(repeated) <= 2 * (CHECKPOINT_EVERY + 2 * SMTP_CONNECTIONS)
    assert statuses() == {Delivery.Status.SENT: len(readers)}
    noted = set(
        Delivery.objects.filter(last_error=recovery.RESUMED_NOTE).values_list(
            "subscriber__email", flat=True
        )
    )
    # Every row the dead worker held says the reader may have had it twice.
    assert len(noted) >= counts[Delivery.Status.SENDING]
    assert set(repeated) <= noted


def flush_broker(queue: str) -> int:
    """Lose every message waiting in the broker, as a flushed Redis would."""
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        waiting = client.llen(queue)
        client.flushdb()
        return waiting
    # The filesystem transport: one file per message, named after its queue.
    folder_name = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
    assert isinstance(folder_name, str)
    folder = Path(folder_name)
    lost = list(folder.glob(f"*.{queue}.msg"))
    for path in lost:
        path.unlink()
    return len(lost)


def test_the_broker_flushed_mid_send_is_repaired_by_the_sweep(smtp_server, workers, fault_table):
    readers = make_readers(40)
    edition = built_edition(MONDAY)
    smtp_server.inject_faults(
        delay_data_seconds=0.05 * SMTP_CONNECTIONS, delay_noop_seconds=FAR_NOOP_SECONDS
    )
    # One process, batches of 10: while it sends the first batch, the other
    # three wait in the broker.
    worker = workers(concurrency=1, batch_size=10)
    tasks.send_edition.delay(edition.pk)

    assert wait_for(lambda: len(smtp_server.received()) >= 3)
    assert flush_broker(app.conf.task_default_queue) >= 1
    flushed_at = time.monotonic()
    # The batch in hand finishes, and whatever else the worker had taken;
    # the lost ones leave their readers queued.
    assert wait_for(lambda: statuses()[Delivery.Status.SENDING] == 0 and worker.idle())
    stalled = statuses()
    assert stalled[Delivery.Status.QUEUED] > 0
    assert Edition.objects.get().status == Edition.Status.SENDING

    # The sweep sees a send nobody works on: no lease holds its queued
    # rows and nothing was sent for a lease's length.
    assert sweep_until_resumed(edition.pk)

    assert wait_for(lambda: Edition.objects.get().status == Edition.Status.SENT)
    row = fault_table("broker flushed mid-send (queued batches lost)", readers, flushed_at)
    assert row.recovered_after < RECOVERY_BOUND_SECONDS
    assert collections.Counter(smtp_server.recipients()) == {email: 1 for email in readers}
    assert statuses() == {Delivery.Status.SENT: len(readers)}


def test_two_worker_processes_on_one_edition_send_each_reader_once(
    smtp_server, workers, fault_table
):
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL: concurrent claims there use SELECT ... FOR UPDATE SKIP LOCKED; "
            "SQLite serialises writers (CI's second pass runs this on PostgreSQL)"
        )
    readers = make_readers(60)
    edition = built_edition(MONDAY)
    smtp_server.inject_faults(
        delay_data_seconds=0.01 * SMTP_CONNECTIONS, delay_noop_seconds=FAR_NOOP_SECONDS
    )
    started_workers = [workers(concurrency=2, batch_size=10) for _ in range(2)]

    # The same edition sent twice at once (the command and beat, say): every
    # batch is queued twice, and four processes race for the same rows.
    started = time.monotonic()
    tasks.send_edition.delay(edition.pk)
    tasks.send_edition.delay(edition.pk)

    assert wait_for(lambda: Edition.objects.get().status == Edition.Status.SENT)
    # Any duplicate batch still running would send now: wait until none is.
    assert wait_for(lambda: all(worker.idle() for worker in started_workers))
    fault_table("the same send started twice, 4 processes on PostgreSQL", readers, started)
    assert collections.Counter(smtp_server.recipients()) == {email: 1 for email in readers}
    assert statuses() == {Delivery.Status.SENT: len(readers)}


def test_redis_restarted_without_persistence_mid_send_is_repaired_within_minutes(
    smtp_server, workers, private_redis, fault_table
):
    readers = make_readers(60)
    edition = built_edition(MONDAY)
    smtp_server.inject_faults(
        delay_data_seconds=0.05 * SMTP_CONNECTIONS, delay_noop_seconds=FAR_NOOP_SECONDS
    )
    # One process, batches of 10: five wait in Redis while it sends the first.
    workers(concurrency=1, batch_size=10, REDIS_URL=private_redis.url)

    def queue_send() -> None:
        with app.connection_for_write(private_redis.url) as broker:
            # `connection` is apply_async's documented option; the stubs lack it.
            tasks.send_edition.apply_async((edition.pk,), connection=broker)  # type: ignore[call-arg]

    queue_send()
    assert wait_for(lambda: len(smtp_server.received()) >= 3)
    private_redis.restart()
    restarted_at = time.monotonic()
    # The waiting batches went with it; their readers wait in the database.
    assert redis.Redis.from_url(private_redis.url).llen(app.conf.task_default_queue) == 0
    assert statuses()[Delivery.Status.QUEUED] > 0

    # Beat's sweep, here every half second, against the same Redis.
    def sweep() -> bool:
        if recovery.editions_to_resume() == [edition]:
            queue_send()
        return Edition.objects.get().status == Edition.Status.SENT

    assert wait_for(sweep, timeout=RECOVERY_BOUND_SECONDS, interval=0.5)
    row = fault_table(
        "Redis restarted without persistence mid-send (queued batches lost)",
        readers,
        restarted_at,
    )
    assert row.recovered_after < RECOVERY_BOUND_SECONDS
    # The batch in hand carried on through the broker's restart: nobody twice.
    assert collections.Counter(smtp_server.recipients()) == {email: 1 for email in readers}
    assert statuses() == {Delivery.Status.SENT: len(readers)}


def pool_children(pid: int) -> list[int]:
    """The worker's pool processes: the children of its main process."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def test_one_pool_process_killed_is_replaced_and_its_batch_resumed(
    smtp_server, workers, fault_table
):
    readers = make_readers(160)
    edition = built_edition(MONDAY)
    smtp_server.inject_faults(
        delay_data_seconds=0.02 * SMTP_CONNECTIONS, delay_noop_seconds=FAR_NOOP_SECONDS
    )
    worker = workers(concurrency=2, batch_size=80)
    tasks.send_edition.delay(edition.pk)

    assert wait_for(lambda: statuses()[Delivery.Status.SENT] >= 2 * CHECKPOINT_EVERY)
    os.kill(pool_children(worker.process.pid)[0], signal.SIGKILL)
    killed_at = time.monotonic()
    assert len(smtp_server.received()) < len(readers), "the kill came too late to be mid-batch"

    # The main process starts a new pool process and gets the batch back
    # (reject_on_worker_lost); its rows come back once the lease runs out.
    assert sweep_until_resumed(edition.pk)
    assert wait_for(lambda: Edition.objects.get().status == Edition.Status.SENT)
    row = fault_table("one pool process SIGKILLed mid-batch", readers, killed_at)
    assert row.lost == 0 and row.recovered_after < RECOVERY_BOUND_SECONDS
    assert row.copies_at_most <= 2 and row.doubled <= CHECKPOINT_EVERY
    assert statuses() == {Delivery.Status.SENT: len(readers)}


def test_the_workers_database_connections_terminated_mid_send_repeat_nobody(
    smtp_server, workers, fault_table
):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL to terminate backends (CI's second pass runs it)")
    readers = make_readers(160)
    edition = built_edition(MONDAY)
    smtp_server.inject_faults(
        delay_data_seconds=0.02 * SMTP_CONNECTIONS, delay_noop_seconds=FAR_NOOP_SECONDS
    )
    # Two batches of 80: each checkpoints at 50, then has 30 to record at its end.
    worker = workers(concurrency=2, batch_size=80)
    tasks.send_edition.delay(edition.pk)

    assert wait_for(lambda: statuses()[Delivery.Status.SENT] >= 2 * CHECKPOINT_EVERY)
    with connection.cursor() as cursor:
        # Every backend of this database but the test's own: the workers'.
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (terminated,) = cursor.fetchone()
    terminated_at = time.monotonic()
    assert terminated >= 1
    assert len(smtp_server.received()) < len(readers), "terminated too late to be mid-send"

    def done() -> bool:
        tasks.resume_stalled_sends()  # as beat would, in case a task was lost
        return Edition.objects.get().status == Edition.Status.SENT

    assert wait_for(done, timeout=RECOVERY_BOUND_SECONDS, interval=0.5)
    row = fault_table(
        "the workers' PostgreSQL backends terminated mid-send", readers, terminated_at
    )
    assert (row.lost, row.doubled) == (0, 0)
    assert row.recovered_after < RECOVERY_BOUND_SECONDS
    assert statuses() == {Delivery.Status.SENT: len(readers)}
    # The senders met the dead connections and wrote again on new ones. The
    # first write after the kill is a checkpoint or a lease's renewal (each
    # renewed every second here), whichever comes first in that batch.
    assert re.search(
        r"Database connection lost while (marking digests sent|renewing a lease) \(",
        worker.output(),
    )
