"""Benchmark support: a bench population, an SMTP sink, the raw smtplib limit.

Used by `manage.py bench_digest`. The send itself is the production one: the
`send_edition` task and its batch tasks, run by `celery worker` processes
(started with bench.worker, which adds a query counter).
"""

import datetime
import json
import multiprocessing
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from delivery import scheduler
from delivery.models import Delivery, SendSlot
from newsletter import schedule
from newsletter.models import Article, Edition, EditionArticle, Section
from subscriptions.models import DigestFormat, Membership, Subscriber

BENCH_DOMAIN = "bench.invalid"
BENCH_DATE = datetime.date(2099, 1, 5)  # a Monday no real edition will have
CREATE_BATCH = 5000

# The multi-zone run: one real zone per hour of offset in January (west to
# east), and the delivery times readers pick most after the default.
ZONES = [
    "Pacific/Pago_Pago", "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles",
    "America/Denver", "America/Chicago", "America/New_York", "America/Halifax",
    "America/Sao_Paulo", "Atlantic/South_Georgia", "Atlantic/Azores", "Europe/London",
    "Europe/Paris", "Europe/Athens", "Europe/Moscow", "Asia/Dubai", "Asia/Karachi",
    "Asia/Dhaka", "Asia/Bangkok", "Asia/Singapore", "Asia/Tokyo", "Australia/Brisbane",
    "Pacific/Noumea", "Pacific/Auckland",
]  # fmt: skip
SEND_TIMES = [datetime.time(6), datetime.time(6, 30), datetime.time(7), datetime.time(7, 30)]
# Inside every zone's window of the bench date's morning (from Friday's
# send to Monday's, wherever the reader lives): Sunday noon UTC.
MULTI_ZONE_PUBLISHED_AT = datetime.datetime(2099, 1, 4, 12, tzinfo=datetime.UTC)
# The bench's sections (those of BENCH_ARTICLES) and the section sets readers
# follow: every section, then each of the 15 non-empty combinations (the four
# named one by one too: a content of its own, whose header names them).
BENCH_SECTIONS = ["World", "Business", "Science", "Culture"]
SECTION_SETS: list[tuple[str, ...] | None] = [
    None,
    *(
        tuple(name for bit, name in enumerate(BENCH_SECTIONS) if mask & (1 << bit))
        for mask in range(1, 2 ** len(BENCH_SECTIONS))
    ),
]
FORMATS = [DigestFormat.HEADLINES, DigestFormat.FULL]
# A full story's body: about 800 words, as a long news story is.
FULL_BODY = "".join(
    f"<p>Paragraph {n} of the story, with the facts, the quotes and the context "
    "that a reader who wants the whole of it reads, forty words or so, then "
    "another sentence or two of the same to make a paragraph of the usual length.</p>"
    for n in range(20)
)


# ---------------------------------------------------------------- population


def clear_population() -> None:
    """Remove everything an earlier bench run created.

    In chunks: deleting an edition deletes its deliveries (and what refers
    to them) with the ids in a query's parameters, more than a database
    takes at a million readers.
    """
    deliveries = Delivery.objects.filter(edition__date=BENCH_DATE)
    while ids := list(deliveries.values_list("pk", flat=True)[:CREATE_BATCH]):
        Delivery.objects.filter(pk__in=ids).delete()
    Edition.objects.filter(date=BENCH_DATE).delete()
    SendSlot.objects.filter(date=BENCH_DATE).delete()
    Article.objects.filter(slug__startswith="bench-").delete()
    Section.objects.filter(slug__startswith="bench-").delete()
    while ids := list(
        Subscriber.objects.filter(email__endswith=f"@{BENCH_DOMAIN}").values_list("pk", flat=True)[
            :CREATE_BATCH
        ]
    ):
        Subscriber.objects.filter(pk__in=ids).delete()


def build_population(
    entitled: int,
    not_entitled: int,
    zones: Sequence[str] = (),
    send_times: Sequence[datetime.time] = (),
    section_sets: int = 1,
    formats: Sequence[str] = FORMATS[:1],
) -> None:
    """`entitled` paying readers and `not_entitled` who must get nothing.

    Readers take `zones` and then `send_times` in turn (by default all live in
    the newsroom's zone and take the default delivery time), then the first
    `section_sets` of SECTION_SETS (1: every section) and `formats` (by
    default headlines, the digest the single-zone figures were first
    measured with).
    """
    sections = bench_sections()
    zones = zones or [settings.DIGEST_TIMEZONE]
    send_times = send_times or [settings.DIGEST_SEND_TIME]
    kinds = [
        (Membership.Status.CANCELED, Subscriber.EmailStatus.ACTIVE),
        (Membership.Status.ACTIVE, Subscriber.EmailStatus.UNSUBSCRIBED),
        (Membership.Status.INCOMPLETE, Subscriber.EmailStatus.ACTIVE),
    ]
    total = entitled + not_entitled
    for start in range(0, total, CREATE_BATCH):
        numbers = range(start, min(start + CREATE_BATCH, total))
        with transaction.atomic():
            every = len(zones) * len(send_times)
            choice = [((n // every) % section_sets, (n // every // section_sets) % len(formats))
                      for n in numbers]  # fmt: skip
            readers = Subscriber.objects.bulk_create(
                Subscriber(
                    email=f"reader{n:07d}@{BENCH_DOMAIN}",
                    name=f"Reader {n}" if n % 3 else "",
                    time_zone=zones[n % len(zones)],
                    send_time=send_times[(n // len(zones)) % len(send_times)],
                    email_status=(
                        Subscriber.EmailStatus.ACTIVE if n < entitled else kinds[n % 3][1]
                    ),
                    all_sections=SECTION_SETS[set_index] is None,
                    digest_format=formats[format_index],
                )
                for n, (set_index, format_index) in zip(numbers, choice, strict=True)
            )
            Subscriber.sections.through.objects.bulk_create(
                Subscriber.sections.through(subscriber_id=reader.pk, section_id=sections[name].pk)
                for reader, (set_index, _) in zip(readers, choice, strict=True)
                for name in SECTION_SETS[set_index] or ()
            )
            Membership.objects.bulk_create(
                Membership(
                    subscriber=reader,
                    status=Membership.Status.ACTIVE if n < entitled else kinds[n % 3][0],
                )
                for n, reader in zip(numbers, readers, strict=True)
            )


def settle_database() -> None:
    """After building or clearing a population: what autovacuum would have done by morning.

    A real list is built over months and its tables vacuumed and analysed
    many times before a send; the bench's is built seconds before, after
    earlier runs deleted as many rows. Without this, PostgreSQL plans with
    no statistics and wades through the dead rows of earlier runs.
    """
    if connection.vendor != "postgresql":
        return
    tables = [Delivery, Subscriber, Membership, Edition]
    with connection.cursor() as cursor:
        for model in tables:
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


BENCH_ARTICLES = [
    ("Six nations sign a treaty to share the river they fought over", "World"),
    ("The central bank holds rates and signals patience", "Business"),
    ("A comet brightens enough to see without a telescope", "Science"),
    ("Libraries that dropped late fees got their books back", "Culture"),
    ("Ports automate, and the queues move to the gates", "Business"),
]


def bench_sections() -> dict[str, Section]:
    return {
        name: Section.objects.get_or_create(
            slug=f"bench-{name.lower()}", defaults={"name": f"Bench {name}", "position": 90}
        )[0]
        for name in BENCH_SECTIONS
    }


def build_edition(published_at: datetime.datetime | None = None) -> Edition:
    """A five-article edition like a real morning's, ready to send.

    Each story is in its section, with a body of about 800 words (what a
    full digest carries; a headlines digest shows the title and standfirst).
    """
    now = published_at or timezone.now()
    sections = bench_sections()
    edition = Edition.objects.create(date=BENCH_DATE, cutoff=now)
    for position, (title, section) in enumerate(BENCH_ARTICLES, start=1):
        article = Article.objects.create(
            title=title,
            slug=f"bench-{position}",
            dek=f"{section}: the standfirst, one or two sentences that say why it matters today.",
            body=FULL_BODY,
            section=sections[section],
            status=Article.Status.PUBLISHED,
            published_at=now,
        )
        EditionArticle.objects.create(edition=edition, article=article, position=position)
    return edition


def schedule_mornings() -> Iterator[tuple[int, int, int]]:
    """Every bench reader's morning of BENCH_DATE, scheduled as beat would; their batches.

    Each (zone, delivery time) is claimed and its audience written by the
    production scheduler at its own send moment, one after the other here,
    so the send is the whole day's in one go. A morning's batches are
    yielded as soon as it is written, as send_due_digests queues them.
    """
    slots = (
        Subscriber.objects.filter(email__endswith=f"@{BENCH_DOMAIN}")
        .order_by()
        .values_list("time_zone", "send_time")
        .distinct()
    )
    mornings = sorted(
        (schedule.send_moment(BENCH_DATE, send_time, zone), zone, send_time)
        for zone, send_time in slots
    )
    for moment, zone, send_time in mornings:
        yield from scheduler.schedule_slot(BENCH_DATE, zone, send_time, moment, moment, set())


# ---------------------------------------------------------------- the SMTP sink


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_smtp_sink() -> tuple[subprocess.Popen, int]:
    """Postfix's smtp-sink: accepts and discards mail, in C, far faster than we send."""
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not Path(binary).exists():
        raise FileNotFoundError(
            "smtp-sink not found: install Debian's postfix package "
            "(apt-get install postfix), or pass --smtp HOST:PORT."
        )
    port = free_port()
    # -u: run as this user; 1000: listen backlog, enough for every connection.
    process = subprocess.Popen(  # noqa: S603 - a fixed binary and arguments
        [binary, "-u", os.environ.get("USER", "root"), f"127.0.0.1:{port}", "1000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    _, stderr = process.communicate()
    raise RuntimeError(f"smtp-sink did not start: {stderr.decode()}")


# ---------------------------------------------------------------- a wire 50 ms away


def start_with_port(command: list[str], what: str) -> tuple[subprocess.Popen, int]:
    """Start a helper that prints "PORT <n>" once it listens; the process and its port."""
    process = subprocess.Popen(  # noqa: S603 - our own modules, fixed arguments
        command, stdout=subprocess.PIPE, text=True, cwd=settings.BASE_DIR
    )
    assert process.stdout is not None  # stdout=PIPE
    line = process.stdout.readline()
    if not line.startswith("PORT "):
        process.kill()
        raise RuntimeError(f"{what} did not start: {line!r}")
    return process, int(line.split()[1])


def start_latency_proxy(host: str, port: int, rtt_ms: float) -> tuple[subprocess.Popen, int]:
    """bench.latency_proxy in front of the SMTP server: a relay `rtt_ms` away."""
    command = [sys.executable, "-m", "bench.latency_proxy", f"{host}:{port}",
               "--rtt-ms", str(rtt_ms)]  # fmt: skip
    return start_with_port(command, "The latency proxy")


def start_chunking_sink() -> tuple[subprocess.Popen, int]:
    """bench.chunking_sink: smtp-sink's part for a relay that offers CHUNKING."""
    return start_with_port([sys.executable, "-m", "bench.chunking_sink"], "The chunking sink")


def start_fake_esp(directory: Path, rtt_ms: float) -> tuple[subprocess.Popen, int]:
    """The tests' fake Mailgun and Postmark APIs, answering each call after `rtt_ms`."""
    directory.mkdir(parents=True, exist_ok=True)
    # Counting only: a million readers' messages are not kept.
    (directory / "faults.json").write_text(json.dumps({"latency_ms": rtt_ms, "store": False}))
    command = [sys.executable, "-m", "testing.fake_esp", str(directory)]
    return start_with_port(command, "The fake ESP")


def esp_environment(esp: str, port: int) -> dict[str, str]:
    """EMAIL_ESP (and its webhook secret) for the workers, pointed at the fake API."""
    api = f"http://127.0.0.1:{port}/"
    urls = {
        "postmark": f"postmark://server-token@?api_url={api}",
        "mailgun": f"mailgun://key-test@/{BENCH_DOMAIN}?webhook_signing_key=bench&api_url={api}v3",
        "sendgrid": f"sendgrid://key-test@?api_url={api}v3/",
    }
    return {"EMAIL_ESP": urls[esp], "ANYMAIL_WEBHOOK_SECRET": "bench:bench-webhook-secret"}


# ---------------------------------------------------------------- the raw limit


def _raw_sender(args: tuple[str, int, list[bytes], int, int]) -> int:
    host, port, messages, first, count = args
    with smtplib.SMTP(host, port) as smtp:
        for n in range(first, first + count):
            message = messages[n % len(messages)]
            smtp.sendmail("bench@localhost", [f"raw{n:07d}@{BENCH_DOMAIN}"], message)
    return count


def raw_smtp_rate(
    host: str, port: int, messages: list[bytes], count: int, connections: int
) -> float:
    """Emails per second of pre-built messages through smtplib, `connections` at once.

    The messages are sent in turn: one per format the run's readers chose,
    so the limit is of messages of the sizes the send carried.
    """
    share = count // connections
    jobs = [(host, port, messages, i * share, share) for i in range(connections)]
    with multiprocessing.get_context("fork").Pool(connections) as pool:
        started = time.perf_counter()
        sent = sum(pool.map(_raw_sender, jobs))
        return sent / (time.perf_counter() - started)


# ---------------------------------------------------------------- worker stats


def peak_rss_mb(pid: int) -> float:
    """The high-water mark of a process's resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child_pids(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children.extend(int(child) for child in text)
    return children


# ---------------------------------------------------------------- where the CPU went

# The processes that share the machine during a send, by what /proc calls them.
CPU_GROUPS = {
    "workers": ("celery",),  # matched on the command line (python -m celery)
    "smtp-sink": ("smtp-sink",),
    "database": ("postgres",),
    "redis": ("redis-server",),
    "bench": ("bench_digest",),  # this command's own polling, matched on the command line
}


def _command(pid: Path) -> tuple[str, str]:
    comm = (pid / "comm").read_text().strip()
    cmdline = (pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return comm, cmdline


def cpu_by_group() -> dict[str, float]:
    """CPU seconds (user + system) used so far by each group's live processes, by pid."""
    ticks = os.sysconf("SC_CLK_TCK")
    usage: dict[str, float] = {}
    for pid in Path("/proc").iterdir():
        if not pid.name.isdigit():
            continue
        try:
            comm, cmdline = _command(pid)
            # Fields after the command's closing parenthesis: utime, stime, cutime and
            # cstime are the 12th to 15th. A parent's cutime and cstime hold its
            # ended children's time (PostgreSQL's backends come and go with the
            # workers' connections), so nothing is lost when one exits.
            fields = (pid / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # gone meanwhile
        for group, names in CPU_GROUPS.items():
            matched_by_command_line = {"workers": "-m celery", "bench": "bench_digest"}
            if comm in names or matched_by_command_line.get(group, "\0") in cmdline:
                usage[f"{group}:{pid.name}"] = sum(map(int, fields[11:15])) / ticks
                break
    return usage


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Seconds each group used between two cpu_by_group() readings."""
    used: dict[str, float] = {}
    for key, seconds in after.items():
        group = key.split(":", 1)[0]
        used[group] = used.get(group, 0.0) + seconds - before.get(key, 0.0)
    return used


# ---------------------------------------------------------------- the profile


def start_profiler(worker_pid: int, path: Path) -> subprocess.Popen:
    """py-spy sampling the worker and its pool processes until stopped."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(binary).exists():
        raise FileNotFoundError("py-spy not found: pip install -r requirements-bench.txt")
    command = [binary, "record", "--pid", str(worker_pid), "--subprocesses", "--rate", "200",
               "--format", "raw", "--nonblocking", "--output", str(path)]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


def stop_profiler(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    process.wait(timeout=60)
