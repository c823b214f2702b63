"""Fixtures shared by every app's tests."""

import email
import email.policy
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
import time_machine

from testing.clock import MONDAY_BEFORE_SEND

# The instant every test runs at unless it names its own (@pytest.mark.clock).
DEFAULT_NOW = MONDAY_BEFORE_SEND


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "clock(instant, tick=False): run the test, its fixtures and factories at this "
        "instant (an ISO 8601 string or an aware datetime); with tick, time moves on from it",
    )
    config.addinivalue_line(
        "markers",
        "real_clock: run on the machine's clock, for tests whose other processes "
        "(Celery workers) must read the same time as the test",
    )


@pytest.fixture(autouse=True)
def clock(request: pytest.FixtureRequest):
    """Fix "now" for the whole test: setup, factories, the code and the assertions.

    Autouse, so no test depends on the day the suite runs (CI runs it again
    under faketime, far from today, to prove it). The test's own instant
    comes from a `clock` marker on the test, class or module, else
    DEFAULT_NOW. A test can move it on with `clock.move_to()` or
    `clock.shift()`, or nest `time_machine.travel()`. Tests marked
    `real_clock` run on the machine's clock: other processes cannot see a
    clock that only this one is travelling with.
    """
    if request.node.get_closest_marker("real_clock"):
        yield None
        return
    marker = request.node.get_closest_marker("clock")
    instant = marker.args[0] if marker else DEFAULT_NOW
    tick = marker.kwargs.get("tick", False) if marker else False
    with time_machine.travel(instant, tick=tick) as traveller:
        yield traveller


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    data: str

    @property
    def raw_headers(self) -> str:
        return self.data.partition("\r\n\r\n")[0]

    @property
    def text(self) -> str:
        return self._body("plain")

    @property
    def html(self) -> str:
        return self._body("html")

    def _body(self, subtype: str) -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None, f"The message has no text/{subtype} part."
        # SMTP carries CRLF line ends; tests compare with Python's "\n".
        return part.get_content().replace("\r\n", "\n")


class SMTPServer:
    """A real SMTP server process (testing.smtp_sink) and its mailbox."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process = subprocess.Popen(
            [sys.executable, "-m", "testing.smtp_sink", str(directory)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parent,
        )
        assert self.process.stdout is not None  # stdout=PIPE
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"SMTP sink did not start: {line!r}")
        self.port = int(line.split()[1])

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def mailers_setting(self) -> dict:
        return {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": self.port, "timeout": 10},
            }
        }

    def received(self) -> list[ReceivedMail]:
        mails = []
        for path in sorted(self.directory.glob("[0-9]*.json")):
            record = json.loads(path.read_text())
            message = email.message_from_string(record["data"], policy=email.policy.default)
            mails.append(
                ReceivedMail(record["mail_from"], record["rcpt_tos"], message, record["data"])
            )
        return mails

    def inject_faults(self, **faults) -> None:
        """See testing.smtp_sink for the faults it understands."""
        (self.directory / "faults.json").write_text(json.dumps(faults))

    def clear_faults(self) -> None:
        (self.directory / "faults.json").unlink(missing_ok=True)

    def clear_received(self) -> None:
        for path in self.directory.glob("[0-9]*.json"):
            path.unlink()

    def recipients(self) -> list[str]:
        """Every envelope recipient of every stored message, sorted."""
        return sorted(address for mail in self.received() for address in mail.rcpt_tos)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def smtp_server(tmp_path, settings):
    """Start a real SMTP server and point Django's default mailer at it."""
    server = SMTPServer(tmp_path / "smtp")
    settings.MAILERS = server.mailers_setting()
    yield server
    server.stop()


@pytest.fixture
def eager_celery():
    """Tasks run where they are queued (and their errors raise), so a test sees their effects."""
    from config.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False


@pytest.fixture
def celery_queue():
    """A Celery queue of this test's own: what it queues goes to its workers only."""
    from config.celery import app

    name = f"test-{uuid.uuid4().hex[:12]}"
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = name
    yield name
    app.conf.task_default_queue = previous


@pytest.fixture
def fault_table(smtp_server):
    """One row of `make faults`' table: what a fault cost, from what the SMTP server received.

    `record(fault, expected, fault_at)` counts readers of `expected` who got
    nothing (lost) and who got more than one copy (doubled), and the seconds
    from `fault_at` (time.monotonic()) until the last of them had it. Rows go
    to the file FAULT_TABLE names (`make faults`), and nowhere otherwise.
    """
    from testing import fault_table as table

    def record(fault: str, expected: list[str], fault_at: float) -> table.Row:
        row = table.Row.measure(fault, expected, smtp_server.recipients(), fault_at)
        table.append(row)
        return row

    return record


@pytest.fixture(autouse=True)
def fresh_page_cache():
    """Each test sees its own pages.

    The page cache outlives a test (files in var/, or Redis), and the
    rolled-back writes of a test never commit, so they never replace it.
    """
    from newsletter import pagecache

    pagecache.new_generation()


@pytest.fixture(autouse=True)
def fresh_digest_renders():
    """Each test renders its own digests.

    The sender keeps a render per content, keyed by the rows' ids and
    update times. Rolled-back tests reuse ids, and under a frozen clock the
    update times too: another test's digest could be taken for this one's.
    """
    from delivery import batches

    batches._rendered.clear()


@pytest.fixture(autouse=True)
def no_kept_relay_connections():
    """Each test's batches open their own relay connections, and leave none behind.

    A far relay's pool outlives its batch for the process's next one
    (delivery.batches.KeptPools); a later test's batch to a server on the
    same port must not send over an earlier test's connections and settings.
    """
    from delivery import batches

    yield
    batches.kept_pools.close_all()
