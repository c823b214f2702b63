"""The dashboard's queries at a million readers and years of history.

    make bench-dashboard                      # SQLite, var/bench-dashboard.sqlite3
    BENCH_DASHBOARD_DATABASE_URL=postgres://127.0.0.1/bench_dashboard make bench-dashboard

or, by hand, against a migrated database of its own:

    DJANGO_SETTINGS_MODULE=bench.settings DATABASE_URL=... \\
        python manage.py bench_dashboard --readers 1000000 --years 5

It fills an empty database with readers who joined over `--years` (more of
them lately), their trials, payments, failed cards, cancellations and
returns as dashboard.models.MembershipChange rows, an edition every weekday
of those years, and a delivery to every reader entitled on each of the last
`--delivered-editions` mornings (the dashboard reads the last 30; at a
million readers five years of deliveries would be over a billion rows, and
no figure reads editions older than its range: see the EXPLAIN output).
Rows go in with executemany (SQLite) or COPY (PostgreSQL), not the ORM.

Then it times each figure of the dashboard as the page builds it (the
median of `--runs`), over the longest range the page offers, and the
periodic task that snapshots the sends; prints EXPLAIN for each query of a
figure slower than `--slow` ms; and writes its section of
docs/dashboard-performance.md (one section per database engine; the rest of
the file is left as it is). `--reuse` measures a database built before.
"""

import bisect
import datetime
import itertools
import json
import platform
import random
import re
import statistics
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard import daily, sends
from dashboard.figures import FIGURES
from dashboard.metrics import DateRange
from dashboard.models import MembershipChange
from delivery.models import Delivery
from newsletter.models import Edition
from subscriptions.models import Membership, Subscriber

DOC = Path(settings.BASE_DIR) / "docs" / "dashboard-performance.md"
CHUNK = 50_000
FULL, DISCOUNTED = 4600, 3680
ZONES = [
    ("America/New_York", 40),
    ("America/Los_Angeles", 20),
    ("Europe/London", 20),
    ("Europe/Berlin", 10),
    ("Asia/Tokyo", 6),
    ("Australia/Sydney", 4),
]
Status = Membership.Status
EmailStatus = Subscriber.EmailStatus
Row = tuple[Any, ...]


class Writer:
    """Rows into a table, as fast as the engine takes them."""

    def __init__(self) -> None:
        self.vendor = connection.vendor
        if self.vendor not in ("sqlite", "postgresql"):
            raise CommandError(f"bench_dashboard runs on SQLite or PostgreSQL, not {self.vendor}.")

    def when(self, moment: datetime.datetime | None) -> str | None:
        """A UTC datetime as the engine stores it (SQLite: naive text in UTC)."""
        if moment is None:
            return None
        moment = moment.astimezone(datetime.UTC)
        if self.vendor == "sqlite":
            return moment.replace(tzinfo=None).isoformat(" ")
        return moment.isoformat(" ")

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Row]) -> int:
        count = 0
        names = ", ".join(columns)
        # One transaction per call: SQLite in autocommit would sync each row.
        with transaction.atomic(), connection.cursor() as cursor:
            if self.vendor == "sqlite":
                sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608 - our own table names
                raw = connection.connection
                iterator = iter(rows)
                while batch := list(itertools.islice(iterator, 100_000)):
                    raw.executemany(sql, batch)
                    count += len(batch)
            else:
                with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                        count += 1
        return count


def weekdays(first: datetime.date, last: datetime.date) -> list[datetime.date]:
    days = (last - first).days + 1
    return [
        first + datetime.timedelta(days=n)
        for n in range(days)
        if (first + datetime.timedelta(days=n)).weekday() < 5
    ]


class History:
    """Readers' timelines, generated a chunk at a time so a million fit in memory."""

    def __init__(self, writer: Writer, readers: int, years: int, delivered: int, seed: int):
        self.w = writer
        self.readers = readers
        self.now = timezone.now().replace(microsecond=0)
        self.start = self.now - datetime.timedelta(days=365 * years)
        self.rng = random.Random(seed)  # noqa: S311 - made-up data, repeatable on purpose
        zone = ZoneInfo(settings.DIGEST_TIMEZONE)
        today = self.now.astimezone(zone).date()
        self.dates = weekdays(
            self.start.astimezone(zone).date(), today - datetime.timedelta(days=1)
        )
        # The newsroom's send moment of each edition; each zone's own morning
        # is derived from it (same date, DIGEST_SEND_TIME in the zone).
        self.mornings = [
            datetime.datetime.combine(d, settings.DIGEST_SEND_TIME, tzinfo=zone) for d in self.dates
        ]
        self.delivered_from = max(0, len(self.dates) - delivered)
        self.zone_names = [z for z, _ in ZONES]
        self.zone_weights = [w for _, w in ZONES]
        # Per edition and zone: the zone's morning, and 32 send moments
        # spread over its first minutes (already in the engine's format).
        self.due: dict[tuple[int, str], str | None] = {}
        self.sent: dict[tuple[int, str], list[str | None]] = {}
        for e in range(self.delivered_from, len(self.dates)):
            for zone_name in self.zone_names:
                due = datetime.datetime.combine(
                    self.dates[e], settings.DIGEST_SEND_TIME, tzinfo=ZoneInfo(zone_name)
                )
                self.due[e, zone_name] = writer.when(due)
                self.sent[e, zone_name] = [
                    writer.when(due + datetime.timedelta(seconds=s * 9 + 3)) for s in range(32)
                ]
        self.counts = {"readers": 0, "changes": 0, "deliveries": 0, "editions": 0}

    def editions(self) -> Iterator[Row]:
        w = self.w
        for n, (date, morning) in enumerate(zip(self.dates, self.mornings, strict=True), 1):
            started = morning - datetime.timedelta(hours=11)  # Sydney's morning comes first
            yield (
                n,
                date.isoformat(),
                w.when(started - datetime.timedelta(minutes=30)),
                "",
                Edition.Status.SENT,
                w.when(started),
                w.when(started),
                w.when(morning + datetime.timedelta(hours=3)),
            )

    def build(self) -> None:
        w = self.w
        self.counts["editions"] = w.insert(
            "newsletter_edition",
            [
                "id",
                "date",
                "cutoff",
                "editor_note",
                "status",
                "created_at",
                "send_started_at",
                "sent_at",
            ],
            self.editions(),
        )
        change_id = delivery_id = 0
        for first in range(0, self.readers, CHUNK):
            subscribers: list[Row] = []
            memberships: list[Row] = []
            changes: list[Row] = []
            deliveries: list[Row] = []
            for pk in range(first + 1, min(first + CHUNK, self.readers) + 1):
                sub, mem, timeline, entitled, left = self.reader(pk)
                subscribers.append(sub)
                memberships.append(mem)
                for at, from_status, to_status, from_amount, amount in timeline:
                    change_id += 1
                    changes.append(
                        (change_id, pk, from_status, to_status, from_amount, amount, w.when(at))
                    )
                zone_name = sub[3]
                for begin, end in entitled:
                    if left is not None:
                        end = min(end, left)
                    lo = max(bisect.bisect_left(self.mornings, begin), self.delivered_from)
                    hi = bisect.bisect_left(self.mornings, end)
                    for e in range(lo, hi):
                        delivery_id += 1
                        roll = (pk * 7 + e * 13) % 1000
                        status = (
                            Delivery.Status.FAILED
                            if roll < 3
                            else Delivery.Status.MISSED
                            if roll < 5
                            else Delivery.Status.SENT
                        )
                        sent = (
                            self.sent[e, zone_name][pk % 32]
                            if status == Delivery.Status.SENT
                            else None
                        )
                        deliveries.append(
                            (
                                delivery_id,
                                e + 1,
                                pk,
                                status,
                                self.due[e, zone_name],
                                zone_name,
                                1,
                                self.due[e, zone_name],
                                sent,
                                "",
                                self.due[e, zone_name],
                            )
                        )
            w.insert(
                "subscriptions_subscriber",
                [
                    "id",
                    "email",
                    "name",
                    "time_zone",
                    "email_status",
                    "email_status_changed_at",
                    "created_at",
                    "updated_at",
                    "send_time",
                    "session_epoch",
                ],
                subscribers,
            )
            w.insert(
                "subscriptions_membership",
                [
                    "id",
                    "subscriber_id",
                    "status",
                    "trial_end",
                    "current_period_end",
                    "cancel_at_period_end",
                    "stripe_customer_id",
                    "stripe_subscription_id",
                    "created_at",
                    "updated_at",
                    "amount",
                    "complimentary",
                    "past_due_since",
                ],
                memberships,
            )
            self.counts["changes"] += w.insert(
                "dashboard_membershipchange",
                ["id", "membership_id", "from_status", "to_status", "from_amount", "amount", "at"],
                changes,
            )
            self.counts["deliveries"] += w.insert(
                "newsletter_delivery",
                [
                    "id",
                    "edition_id",
                    "subscriber_id",
                    "status",
                    "scheduled_for",
                    "time_zone",
                    "attempts",
                    "claimed_at",
                    "sent_at",
                    "last_error",
                    "created_at",
                ],
                deliveries,
            )
            self.counts["readers"] += len(subscribers)
        if w.vendor == "postgresql":
            # Explicit ids: move each table's sequence past them.
            from django.core.management.color import no_style

            models = [Subscriber, Membership, MembershipChange, Edition, Delivery]
            with connection.cursor() as cursor:
                for sql in connection.ops.sequence_reset_sql(no_style(), models):
                    cursor.execute(sql)
                cursor.execute("ANALYZE")
        else:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")

    def reader(
        self, pk: int
    ) -> tuple[
        Row,
        Row,
        list[tuple[datetime.datetime, str, str, int | None, int | None]],
        list[tuple[datetime.datetime, datetime.datetime]],
        datetime.datetime | None,
    ]:
        """One reader's rows, their membership's changes, and when they were entitled."""
        rng, w, now = self.rng, self.w, self.now
        span = (now - self.start).total_seconds()
        joined = self.start + datetime.timedelta(seconds=span * rng.random() ** 0.5)
        trial_end = joined + datetime.timedelta(days=settings.TRIAL_DAYS)
        timeline: list[tuple[datetime.datetime, str, str, int | None, int | None]] = []
        entitled: list[tuple[datetime.datetime, datetime.datetime]] = []
        status: str = Status.TRIALING
        amount: int | None = None
        past_due_since: datetime.datetime | None = None

        def move(at: datetime.datetime, to: str, new_amount: int | None = None) -> None:
            nonlocal status, amount
            timeline.append((at, status if timeline else "", to, amount, new_amount or amount))
            status, amount = to, new_amount or amount

        move(joined, Status.TRIALING)
        if trial_end > now:
            entitled.append((joined, now))
        elif rng.random() < 0.45:
            move(trial_end, Status.CANCELED)
            entitled.append((joined, trial_end))
        else:
            move(trial_end, Status.ACTIVE, DISCOUNTED if rng.random() < 0.2 else FULL)
            stop = trial_end + datetime.timedelta(days=rng.expovariate(0.025 / 30))
            if stop > now:
                entitled.append((joined, now))
                if rng.random() < 0.01:
                    past_due_since = now - datetime.timedelta(days=rng.uniform(0.5, 10))
                    move(max(past_due_since, trial_end), Status.PAST_DUE)
            else:
                move(stop, Status.CANCELED)
                entitled.append((joined, stop))
                back = stop + datetime.timedelta(days=rng.uniform(20, 200))
                if back < now and rng.random() < 0.1:
                    move(back, Status.ACTIVE, FULL)
                    entitled.append((back, now))
        left = None
        email_status = EmailStatus.ACTIVE
        roll = rng.random()
        if roll < 0.08:
            email_status = (
                EmailStatus.UNSUBSCRIBED
                if roll < 0.06
                else EmailStatus.BOUNCED
                if roll < 0.075
                else EmailStatus.COMPLAINED
            )
            left = joined + (now - joined) * rng.random()
        zone_name = rng.choices(self.zone_names, self.zone_weights)[0]
        subscriber = (
            pk,
            f"reader{pk}@bench.example.com",
            "",
            zone_name,
            email_status,
            w.when(left),
            w.when(joined),
            w.when(joined),
            "06:00:00",
            0,
        )
        paying = status in (Status.ACTIVE, Status.PAST_DUE)
        membership = (
            pk,
            pk,
            status,
            w.when(trial_end),
            w.when(now + datetime.timedelta(days=200)) if paying else w.when(trial_end),
            False,
            f"cus_bench{pk}",
            f"sub_bench{pk}",
            w.when(joined),
            w.when(timeline[-1][0]),
            amount,
            False,
            w.when(past_due_since) if status == Status.PAST_DUE else None,
        )
        return subscriber, membership, timeline, entitled, left


def median_ms(run: Any, runs: int) -> tuple[float, list[str]]:
    """The median wall time of `runs` calls, and the SQL of the last one."""
    times = []
    for _ in range(runs):
        connection.queries_log.clear()  # a full log would capture nothing
        with CaptureQueriesContext(connection) as queries:
            began = time.perf_counter()
            run()
            times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), [q["sql"] for q in queries.captured_queries]


def explain(sql: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            return "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
        return "\n".join(f"{'  ' * (row[1] and 1)}{row[3]}" for row in cursor.fetchall())


class Command(BaseCommand):
    help = "Time the dashboard's queries over a large history in a database of its own."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--readers", type=int, default=1_000_000)
        parser.add_argument("--years", type=int, default=5)
        parser.add_argument(
            "--delivered-editions",
            type=int,
            default=35,
            help="The last N editions get a delivery per entitled reader (default 35).",
        )
        parser.add_argument("--runs", type=int, default=5)
        parser.add_argument("--slow", type=float, default=200.0, help="EXPLAIN above this (ms)")
        parser.add_argument("--days", type=int, default=365, help="The range measured.")
        parser.add_argument("--reuse", action="store_true", help="Measure what is there.")
        parser.add_argument("--no-doc", action="store_true", help="Do not write the docs.")
        parser.add_argument("--seed", type=int, default=5)

    def handle(self, *args: str, **options: Any) -> None:
        name = str(connection.settings_dict["NAME"])
        if "bench" not in Path(name).name:
            raise CommandError(
                f"bench_dashboard fills the database it runs on; {name!r} is not named for a "
                "bench. Run it with DATABASE_URL naming a database of its own "
                "(make bench-dashboard does)."
            )
        writer = Writer()
        build_seconds = None
        if options["reuse"]:
            if not Subscriber.objects.exists():
                raise CommandError("--reuse: this database has no readers; run without it.")
        else:
            if Subscriber.objects.exists() or Edition.objects.exists():
                raise CommandError(
                    "The database has readers or editions already: start from an empty, migrated "
                    "one, or measure it again with --reuse."
                )
            history = History(
                writer,
                options["readers"],
                options["years"],
                options["delivered_editions"],
                options["seed"],
            )
            began = time.perf_counter()
            history.build()
            build_seconds = time.perf_counter() - began
            self.stdout.write(
                f"Built {history.counts} in {build_seconds:.0f} s ({connection.vendor})."
            )
        now = timezone.now()
        sizes = {
            "readers": Subscriber.objects.count(),
            "membership changes": MembershipChange.objects.count(),
            "editions": Edition.objects.count(),
            "deliveries": Delivery.objects.count(),
        }
        self.stdout.write(f"Sizes: {sizes}")

        # The periodic task the sending figures read from: the first run
        # snapshots every edition of the range, the later ones only the
        # editions still open to change (that is what beat runs).
        began = time.perf_counter()
        snapshotted = sends.do_snapshot_sends(now, since=now - datetime.timedelta(days=400))
        first_snapshot = time.perf_counter() - began
        refresh_ms, _ = median_ms(lambda: sends.do_snapshot_sends(now), options["runs"])
        self.stdout.write(
            f"Snapshot of the sends: {snapshotted} editions in {first_snapshot:.1f} s; "
            f"the periodic refresh {refresh_ms:.0f} ms"
        )
        began = time.perf_counter()
        days_counted = daily.do_snapshot_days(now)
        first_days = time.perf_counter() - began
        days_ms, _ = median_ms(lambda: daily.do_snapshot_days(now), options["runs"])
        self.stdout.write(
            f"Snapshot of the days: {days_counted} days in {first_days:.1f} s; "
            f"the hourly refresh {days_ms:.0f} ms"
        )

        count_ms, count_queries = median_ms(lambda: daily.do_count_readers(now), options["runs"])
        self.stdout.write(f"Counting readers by state (every 15 minutes): {count_ms:.0f} ms")

        dates = DateRange.last_days(options["days"], now)
        results = []
        for figure in FIGURES.values():
            ms, queries = median_ms(lambda f=figure: f.build(dates, now), options["runs"])
            results.append((figure, ms, queries))
            self.stdout.write(f"{figure.title:32} {ms:9.1f} ms  {len(queries)} queries")
        plans = []
        if count_ms > options["slow"]:
            for sql in [q for q in count_queries if q.lstrip().upper().startswith("SELECT")]:
                plan = explain(sql)
                plans.append(("Counting readers by state (periodic)", sql, plan))
                self.stdout.write(f"\nCounting readers: {sql}\n{plan}")
        for figure, ms, queries in results:
            if ms <= options["slow"]:
                continue
            for sql in [q for q in queries if q.lstrip().upper().startswith("SELECT")]:
                plan = explain(sql)
                plans.append((figure.title, sql, plan))
                self.stdout.write(f"\n{figure.title}: {sql}\n{plan}")
        record = {
            "vendor": connection.vendor,
            "sizes": sizes,
            "build_seconds": build_seconds,
            "snapshot_first_seconds": first_snapshot,
            "snapshot_refresh_ms": refresh_ms,
            "days_first_seconds": first_days,
            "days_counted": days_counted,
            "days_refresh_ms": days_ms,
            "count_readers_ms": count_ms,
            "figures": {figure.slug: ms for figure, ms, _ in results},
        }
        self.stdout.write(json.dumps(record))
        if not options["no_doc"]:
            write_section(record, results, plans, options, now)
            self.stdout.write(f"Wrote its section of {DOC}.")


def write_section(
    record: dict[str, Any],
    results: list[tuple[Any, float, list[str]]],
    plans: list[tuple[str, str, str]],
    options: dict[str, Any],
    now: datetime.datetime,
) -> None:
    vendor = record["vendor"]
    engine = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[vendor]
    with connection.cursor() as cursor:
        cursor.execute("SELECT sqlite_version()" if vendor == "sqlite" else "SHOW server_version")
        version = cursor.fetchone()[0]
    sizes = record["sizes"]
    start, end = f"<!-- bench_dashboard:{vendor} -->", f"<!-- /bench_dashboard:{vendor} -->"
    text = DOC.read_text() if DOC.exists() else ""
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    if record["build_seconds"] is not None:
        built = f"built in {record['build_seconds'] / 60:.1f} minutes"
    else:
        # Measured again (--reuse): keep what the section said of the build.
        previous = pattern.search(text)
        found = re.search(r"built in [0-9.]+ minutes", previous.group(0)) if previous else None
        built = (found.group(0) + " by an earlier run") if found else "built by an earlier run"
    lines = [
        f"## {engine} {version}",
        "",
        f"Measured on {now:%Y-%m-%d %H:%M} UTC ({platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}): {sizes['readers']:,} readers over "
        f"{options['years']} years, {sizes['membership changes']:,} membership changes, "
        f"{sizes['editions']:,} editions, {sizes['deliveries']:,} deliveries; {built}. "
        f"Each figure as the page builds it over the last {options['days']} days, "
        f"the median of {options['runs']} runs.",
        "",
        "| Figure | Median | Queries |",
        "|---|---:|---:|",
        *(f"| {f.title} | {ms:,.1f} ms | {len(q)} |" for f, ms, q in results),
        f"| The whole page (sum) | {sum(ms for _, ms, _ in results):,.1f} ms | "
        f"{sum(len(q) for _, _, q in results)} |",
        "",
        f"The periodic snapshot of the sends (dashboard.sends, every "
        f"{sends.SNAPSHOT_EVERY_MINUTES} minutes): {record['snapshot_refresh_ms']:,.0f} ms a run; "
        f"the first run, over every edition of the last 400 days, "
        f"{record['snapshot_first_seconds']:.1f} s. The daily snapshot of membership history "
        f"(dashboard.daily, hourly): {record['days_refresh_ms']:,.0f} ms a run (it recounts the "
        f"last {daily.COHORT_OPEN_DAYS} days' trial cohorts); the first run, "
        f"{record['days_counted']} days, {record['days_first_seconds']:.1f} s. Counting readers "
        f"by state (dashboard.daily, every 15 minutes): {record['count_readers_ms']:,.0f} ms.",
        "",
    ]
    if plans:
        lines += [f"Figures over {options['slow']:.0f} ms, their query plans:", ""]
        for title, sql, plan in plans:
            lines += [f"**{title}**", "", "```sql", sql, "```", "", "```", plan, "```", ""]
    else:
        lines += [f"No figure took over {options['slow']:.0f} ms.", ""]
    section = "\n".join(lines)
    block = f"{start}\n{section}{end}"
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + f"\n\n{block}\n"
    DOC.write_text(text)
