"""Workers of the previous release and of this one share a send (docs/operations.md, "Upgrades").

During a rolling upgrade both releases' workers consume one queue. Two
real-process tests, on the test run's database and broker:

- a send batch queued in the shape config/task_contract.json records
  (by name, arguments in the recorded order, as any release's code queues
  it) is sent by this release's worker exactly once, and once only when the
  same message comes twice;
- the previous release itself, taken from git (the commit before the newest
  change to a task module) and run as its own worker, starts a send that
  this release's code queued; it is stopped the way a roll stops it (SIGTERM:
  warm shutdown, its batch finished) while this release's worker takes over
  the batches it queued. Every reader gets the digest exactly once. Skipped,
  saying why, where git or that history is not at hand.
"""

import collections
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection

from config import task_contract
from config.celery import app
from delivery import by_hand, tasks
from delivery.models import Delivery
from newsletter.models import Edition
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY
from testing.concurrency import wait_for

# The workers are other processes, on the machine's clock: so is the test.
# Run as the fault tests are, once per database (make test, make faults), not
# under CI's faketime: there the previous release's worker once did not end
# its warm shutdown within the bound (the cause is not yet found).
pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True), pytest.mark.real_clock]

ROOT = Path(__file__).resolve().parents[2]
# Where the tasks are (delivery's keep their newsletter.tasks names, readers'
# side effects their subscriptions.tasks ones).
TASK_MODULES = [
    "newsletter/tasks.py",
    "delivery/tasks.py",
    "subscriptions/tasks.py",
    "subscriptions/side_effects.py",
    "dashboard/tasks.py",
]
BATCH_SIZE = 8
BATCH_DONE = re.compile(r"newsletter\.tasks\.send_delivery_batch\[[^\]]+\] succeeded")
# Each email waits this long at the SMTP sink, so a batch is still going when a
# worker is stopped: BATCH_SIZE of them take about a second.
SMTP_DELAY_SECONDS = 0.12
# A worker's start and a send of a few batches, on a loaded 2-core machine.
START_SECONDS = 90
SEND_SECONDS = 120


def database_url() -> str:
    """The URL of the database this test writes to, for the workers."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


class WorkerProcess:
    """`python -m celery -A config worker` of the release in `tree`: one process, its own group."""

    def __init__(self, tree: Path, environment: dict[str, str], log: Path) -> None:
        self.log = log
        command = [sys.executable, "-m", "celery", "-A", "config", "worker"]
        command += ["--concurrency", "1", "--loglevel", "INFO"]
        command += ["--hostname", f"upgrade-{uuid.uuid4().hex[:6]}@%h"]
        command += ["--without-mingle", "--without-gossip"]
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                command,
                cwd=tree,
                env={**environment, "PYTHONPATH": str(tree)},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        started = wait_for(
            lambda: " ready." in self.output() or self.process.poll() is not None, START_SECONDS
        )
        if not started or self.process.poll() is not None:
            self.kill()
            pytest.fail(f"worker did not start:\n{self.output()[-4000:]}")

    def batches_done(self) -> int:
        return len(BATCH_DONE.findall(self.output()))

    def warm_shutdown(self) -> None:
        """SIGTERM to the main process, as `docker compose stop` sends it."""
        self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def worker_environment(celery_queue, smtp_server) -> Callable[[Path], dict[str, str]]:
    """The environment of a worker of the release in a tree: the test's queue and batch size.

    Both are advanced settings (README.md), constants that this release takes
    through testing/process_settings.py and refuses from the environment; a
    release from before them read CELERY_QUEUE and DIGEST_BATCH_SIZE instead.
    """
    common = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "SMTP_URL": f"{smtp_server.url}?timeout=10",
    }

    def of_release(tree: Path) -> dict[str, str]:
        if (tree / "testing" / "process_settings.py").is_file():
            constants = {"CELERY_TASK_DEFAULT_QUEUE": celery_queue, "DIGEST_BATCH_SIZE": BATCH_SIZE}
            return {
                **common,
                "DJANGO_SETTINGS_MODULE": "testing.process_settings",
                "TEST_SETTINGS": json.dumps(constants),
            }
        return {**common, "CELERY_QUEUE": celery_queue, "DIGEST_BATCH_SIZE": str(BATCH_SIZE)}

    return of_release


@pytest.fixture
def workers(tmp_path):
    started: list[WorkerProcess] = []

    def start(tree: Path, environment: dict[str, str]) -> WorkerProcess:
        worker = WorkerProcess(tree, environment, tmp_path / f"worker{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def make_readers(count: int) -> list[str]:
    make_article(title="Across two releases")
    return [make_subscriber(f"reader{n:02d}@example.com").email for n in range(count)]


def assert_each_got_one(smtp_server, readers: list[str]) -> None:
    received = collections.Counter(smtp_server.recipients())
    assert set(received) == set(readers)
    assert {email: times for email, times in received.items() if times > 1} == {}
    statuses = set(Delivery.objects.values_list("status", flat=True))
    assert statuses == {Delivery.Status.SENT}


def test_a_batch_in_the_recorded_shape_is_sent_once_by_this_release(
    smtp_server, worker_environment, workers, settings
):
    settings.DIGEST_BATCH_SIZE = BATCH_SIZE
    readers = make_readers(2 * BATCH_SIZE)
    edition = built_edition(MONDAY)
    ranges: list[tuple[int, int]] = []
    by_hand.send_edition(edition, on_batch=lambda first, last: ranges.append((first, last)))
    assert len(ranges) == 2

    # The message as any release queues it: the task's name, and the
    # arguments in the order the recorded contract gives them.
    batch = "newsletter.tasks.send_delivery_batch"
    names = [str(parameter["name"]) for parameter in task_contract.recorded()[batch]]
    messages = [
        [{"edition_id": edition.pk, "first_id": first, "last_id": last}[n] for n in names]
        for first, last in ranges
    ]
    for arguments in messages:
        app.send_task(batch, args=arguments)
    worker = workers(ROOT, worker_environment(ROOT))
    worker.wait_ready()

    assert wait_for(lambda: worker.batches_done() == len(messages), SEND_SECONDS), worker.output()
    assert_each_got_one(smtp_server, readers)
    assert Edition.objects.get().status == Edition.Status.SENT

    # The same message again (a broker's redelivery): nobody gets a second copy.
    app.send_task(batch, args=messages[0])
    assert wait_for(lambda: worker.batches_done() == len(messages) + 1, SEND_SECONDS)
    assert_each_got_one(smtp_server, readers)


def git(*arguments: str) -> bytes:
    executable = shutil.which("git")
    if executable is None:
        pytest.skip("the previous release is not at hand: no git on this machine")
    result = subprocess.run(
        [executable, *arguments], cwd=ROOT, capture_output=True, timeout=60, check=False
    )
    if result.returncode != 0:
        pytest.skip(f"the previous release is not at hand: git {arguments[0]}: {result.stderr!r}")
    return result.stdout


@pytest.fixture
def previous_release(tmp_path, settings) -> Path:
    """The tree of the commit before the newest change to a task module, sharing our broker."""
    git("rev-parse", "--is-inside-work-tree")
    newest_change = git("log", "-1", "--format=%H", "--", *TASK_MODULES).decode().strip()
    if not newest_change:
        pytest.skip("the previous release is not at hand: no commit changed a task module")
    # In a shallow clone the change's parent may be missing.
    previous = git("rev-parse", "--verify", "--quiet", f"{newest_change}~1").decode().strip()
    tree = tmp_path / f"release-{previous[:8]}"
    with tarfile.open(fileobj=io.BytesIO(git("archive", "--format=tar", previous))) as tar:
        tar.extractall(tree, filter="data")
    assert any(
        not (tree / path).exists() or (tree / path).read_text() != (ROOT / path).read_text()
        for path in TASK_MODULES
    )
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        # The embedded broker is a folder under each checkout's var/: both
        # releases' workers must read the same one, as on one host.
        (tree / "var").mkdir(mode=0o700)
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        (tree / "var" / "broker").symlink_to(folder, target_is_directory=True)
    return tree


def test_workers_of_the_previous_release_and_this_one_share_a_send(
    smtp_server, worker_environment, workers, previous_release
):
    readers = make_readers(5 * BATCH_SIZE)
    edition = built_edition(MONDAY)
    smtp_server.inject_faults(delay_data_seconds=SMTP_DELAY_SECONDS)

    old = workers(previous_release, worker_environment(previous_release))
    wait_for(lambda: " ready." in old.output() or old.process.poll() is not None, START_SECONDS)
    if old.process.poll() is not None and "ModuleNotFoundError" in old.output():
        # In production each release runs in its own image, with its own packages.
        pytest.skip(f"the previous release needs packages not installed here:\n{old.output()}")
    old.wait_ready()

    # Queued by this release's code, started by the previous release's
    # worker, which queues the batches in its own code's shape.
    tasks.send_edition.delay(edition.pk)
    assert wait_for(lambda: len(smtp_server.received()) > 0, SEND_SECONDS), old.output()

    # The roll: the old worker is told to stop mid-batch, the new one starts.
    old.warm_shutdown()
    new = workers(ROOT, worker_environment(ROOT))
    old.process.wait(timeout=SEND_SECONDS)  # it finishes its batch first
    new.wait_ready()

    assert wait_for(lambda: Edition.objects.get().status == Edition.Status.SENT, SEND_SECONDS), (
        new.output()
    )
    assert_each_got_one(smtp_server, readers)
    # Each release sent part of it: the old its batch, the new the rest.
    assert old.batches_done() >= 1, old.output()
    assert new.batches_done() >= 1, new.output()
