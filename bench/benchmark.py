"""Benchmark support: a bench population, an SMTP sink, the raw smtplib limit.

Used by `manage.py bench_digest`. The send itself is the production one: the
`send_edition` task and its batch tasks, run by `celery worker` processes
(started with bench.worker, which adds a query counter).
"""

import datetime
import multiprocessing
import os
import shutil
import smtplib
import socket
import subprocess
import time
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from newsletter.models import Article, Edition, EditionArticle
from subscriptions.models import Membership, Subscriber

BENCH_DOMAIN = "bench.invalid"
BENCH_DATE = datetime.date(2099, 1, 5)  # a Monday no real edition will have
CREATE_BATCH = 5000


# ---------------------------------------------------------------- population


def clear_population() -> None:
    """Remove everything an earlier bench run created."""
    Edition.objects.filter(date=BENCH_DATE).delete()
    Article.objects.filter(slug__startswith="bench-").delete()
    while ids := list(
        Subscriber.objects.filter(email__endswith=f"@{BENCH_DOMAIN}").values_list("pk", flat=True)[
            :CREATE_BATCH
        ]
    ):
        Subscriber.objects.filter(pk__in=ids).delete()


def build_population(entitled: int, not_entitled: int) -> None:
    """`entitled` paying readers and `not_entitled` who must get nothing."""
    kinds = [
        (Membership.Status.CANCELED, Subscriber.EmailStatus.ACTIVE),
        (Membership.Status.ACTIVE, Subscriber.EmailStatus.UNSUBSCRIBED),
        (Membership.Status.INCOMPLETE, Subscriber.EmailStatus.ACTIVE),
    ]
    total = entitled + not_entitled
    for start in range(0, total, CREATE_BATCH):
        numbers = range(start, min(start + CREATE_BATCH, total))
        with transaction.atomic():
            readers = Subscriber.objects.bulk_create(
                Subscriber(
                    email=f"reader{n:07d}@{BENCH_DOMAIN}",
                    name=f"Reader {n}" if n % 3 else "",
                    email_status=(
                        Subscriber.EmailStatus.ACTIVE if n < entitled else kinds[n % 3][1]
                    ),
                )
                for n in numbers
            )
            Membership.objects.bulk_create(
                Membership(
                    subscriber=reader,
                    status=Membership.Status.ACTIVE if n < entitled else kinds[n % 3][0],
                )
                for n, reader in zip(numbers, readers, strict=True)
            )


BENCH_ARTICLES = [
    ("Six nations sign a treaty to share the river they fought over", "World"),
    ("The central bank holds rates and signals patience", "Business"),
    ("A comet brightens enough to see without a telescope", "Science"),
    ("Libraries that dropped late fees got their books back", "Culture"),
    ("Ports automate, and the queues move to the gates", "Business"),
]


def build_edition() -> Edition:
    """A five-article edition like a real morning's, ready to send."""
    now = timezone.now()
    edition = Edition.objects.create(date=BENCH_DATE, cutoff=now)
    for position, (title, section) in enumerate(BENCH_ARTICLES, start=1):
        article = Article.objects.create(
            title=title,
            slug=f"bench-{position}",
            dek=f"{section}: the standfirst, one or two sentences that say why it matters today.",
            body="<p>Body.</p>",
            status=Article.Status.PUBLISHED,
            published_at=now,
        )
        EditionArticle.objects.create(edition=edition, article=article, position=position)
    return edition


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


# ---------------------------------------------------------------- the raw limit


def _raw_sender(args: tuple[str, int, bytes, int, int]) -> int:
    host, port, message, first, count = args
    with smtplib.SMTP(host, port) as smtp:
        for n in range(first, first + count):
            smtp.sendmail("bench@localhost", [f"raw{n:07d}@{BENCH_DOMAIN}"], message)
    return count


def raw_smtp_rate(host: str, port: int, message: bytes, count: int, connections: int) -> float:
    """Emails per second of pre-built messages through smtplib, `connections` at once."""
    share = count // connections
    jobs = [(host, port, message, i * share, share) for i in range(connections)]
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
