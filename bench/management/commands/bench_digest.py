"""Measure the morning send end to end, against the raw SMTP limit of the machine."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.models import Count, Exists, Min, OuterRef
from django.utils import timezone

from bench import benchmark
from config.celery import app as celery_app
from config.env import SMTP_CONNECTIONS
from delivery import tasks
from delivery.emails import DigestTemplate
from delivery.models import Delivery
from delivery.wire.mime import FastDigest, new_message_id
from newsletter.models import Edition
from subscriptions.models import Subscriber

POLL_SECONDS = 0.1
WIRES = ("loopback", "relay", "relay-chunking", "mailgun", "postmark", "sendgrid")


class Command(BaseCommand):
    help = (
        "Send a digest to N bench readers through the real tasks and Celery workers "
        "into a local SMTP server, and compare with raw smtplib into the same server."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--subscribers", type=int, default=100_000)
        parser.add_argument(
            "--others",
            type=int,
            help="Readers who must get nothing (cancelled, unsubscribed); default N/10.",
        )
        parser.add_argument("--smtp", help="HOST:PORT of an SMTP server (default: start smtp-sink)")
        parser.add_argument(
            "--workers", type=int, default=os.cpu_count() or 2, help="Worker processes"
        )
        parser.add_argument(
            "--json", dest="json_path", type=Path, help="Append the results to this JSON-lines file"
        )
        parser.add_argument("--keep", action="store_true", help="Keep the bench readers afterwards")
        parser.add_argument(
            "--zones",
            type=int,
            default=1,
            choices=range(1, len(benchmark.ZONES) + 1),
            metavar=f"1-{len(benchmark.ZONES)}",
            help="Spread the readers over this many time zones, each morning scheduled "
            "by the production scheduler (default 1: the by-hand send to the newsroom's zone)",
        )
        parser.add_argument(
            "--send-times",
            type=int,
            default=1,
            choices=range(1, len(benchmark.SEND_TIMES) + 1),
            metavar=f"1-{len(benchmark.SEND_TIMES)}",
            help="...and over this many delivery times (06:00, 06:30, 07:00, 07:30)",
        )
        parser.add_argument(
            "--section-sets",
            type=int,
            default=1,
            choices=range(1, len(benchmark.SECTION_SETS) + 1),
            metavar=f"1-{len(benchmark.SECTION_SETS)}",
            help="...and readers following this many section sets (1: every section; "
            "16: every section and each other combination of the four)",
        )
        parser.add_argument(
            "--formats",
            type=int,
            default=1,
            choices=[1, 2],
            help="...in this many formats (1: --format's; 2: headlines and full stories)",
        )
        parser.add_argument(
            "--format",
            dest="digest_format",
            choices=benchmark.FORMATS,
            default=benchmark.FORMATS[0],
            help="The format of every reader's digest when --formats is 1 (default headlines)",
        )
        parser.add_argument(
            "--tag", default="", help="A label for the report: large, scaling (make bench's)"
        )
        parser.add_argument(
            "--wire",
            choices=WIRES,
            default="loopback",
            help="Where the mail goes: smtp-sink on loopback (default); smtp-sink behind a "
            "latency proxy (relay); a sink of the bench's own that offers CHUNKING "
            "(bench.chunking_sink) behind the proxy (relay-chunking); a fake Mailgun, "
            "Postmark or SendGrid API answering after the round trip, the ESP's batch endpoint",
        )
        parser.add_argument(
            "--rtt-ms", type=float, default=50, help="The wire's round trip (default 50 ms)"
        )
        parser.add_argument(
            "--smtp-connections",
            type=int,
            help="SMTP_URL's ?connections= (default: the product's, "
            "delivery's SMTP_CONNECTIONS); 1 is the send before the pool",
        )
        parser.add_argument(
            "--rate-limit",
            type=int,
            default=0,
            help="SEND_RATE_LIMIT for the workers: emails a second over all of them "
            "(default 0, no cap)",
        )
        parser.add_argument(
            "--profile",
            type=Path,
            help="Sample the workers with py-spy during the send and write the stacks "
            "(py-spy's raw format) here; slows the send, so not a run to measure",
        )

    def handle(self, *args: str, subscribers: int, others: int | None, smtp: str | None,
               workers: int, json_path: Path | None, keep: bool, zones: int, send_times: int,
               section_sets: int, formats: int, digest_format: str, profile: Path | None,
               tag: str, wire: str,
               rtt_ms: float, smtp_connections: int | None, rate_limit: int,
               **options: object) -> None:  # fmt: skip
        others = subscribers // 10 if others is None else others
        work_dir = settings.VAR_DIR / "bench"
        work_dir.mkdir(parents=True, exist_ok=True)
        run_id = uuid.uuid4().hex[:8]

        self.say(f"Building {subscribers:,} entitled and {others:,} other readers...")
        started = time.perf_counter()
        benchmark.clear_population()
        self.multi_zone = zones > 1 or send_times > 1 or section_sets > 1 or formats > 1
        self.formats = benchmark.FORMATS if formats > 1 else [digest_format]
        if self.multi_zone:
            benchmark.build_population(
                subscribers,
                others,
                benchmark.ZONES[:zones],
                benchmark.SEND_TIMES[:send_times],
                section_sets=section_sets,
                formats=self.formats,
            )
            edition = benchmark.build_edition(benchmark.MULTI_ZONE_PUBLISHED_AT)
        else:
            benchmark.build_population(subscribers, others, formats=self.formats)
            edition = benchmark.build_edition()
        benchmark.settle_database()
        self.say(f"  done in {time.perf_counter() - started:.1f} s")

        helpers: list[subprocess.Popen] = []
        if smtp:
            host, _, port_text = smtp.rpartition(":")
            port = int(port_text)
        else:
            try:
                sink, port = benchmark.start_smtp_sink()
            except FileNotFoundError as error:
                raise CommandError(str(error)) from error
            helpers.append(sink)
            host = "127.0.0.1"
        # What the workers send through: SMTP_URL, or EMAIL_ESP at a fake API.
        query = f"?connections={smtp_connections}" if smtp_connections else ""
        mail_env = {"SMTP_URL": f"smtp://{host}:{port}{query}"}
        cap_env = {"SEND_RATE_LIMIT": str(rate_limit)}
        try:
            if wire in ("relay", "relay-chunking"):
                relay_host, relay_port = host, port
                if wire == "relay-chunking":
                    chunking, relay_port = benchmark.start_chunking_sink()
                    helpers.append(chunking)
                    relay_host = "127.0.0.1"
                proxy, proxy_port = benchmark.start_latency_proxy(relay_host, relay_port, rtt_ms)
                helpers.append(proxy)
                mail_env = {"SMTP_URL": f"smtp://127.0.0.1:{proxy_port}{query}"}
            elif wire in ("mailgun", "postmark", "sendgrid"):
                fake, fake_port = benchmark.start_fake_esp(work_dir / f"esp-{run_id}", rtt_ms)
                helpers.append(fake)
                mail_env = benchmark.esp_environment(wire, fake_port)
            result = self.measure(
                edition, host, port, mail_env | cap_env, workers, work_dir, run_id, profile
            )
        finally:
            for helper in helpers:
                helper.terminate()
                helper.wait()
            if not keep:
                benchmark.clear_population()

        result |= {
            "database": connection.vendor,
            "profiled": profile is not None,
            "tag": tag,
            "subscribers": subscribers,
            "others": others,
            "workers": workers,
            "zones": zones,
            "send_times": send_times,
            "wire": wire,
            "rtt_ms": rtt_ms if wire != "loopback" else 0,
            "smtp_connections": smtp_connections or SMTP_CONNECTIONS,
            "rate_limit": rate_limit,
            "section_sets": section_sets,
            "formats": formats,
            "digest_format": "mixed" if formats > 1 else digest_format,
        }
        self.report(result)
        if json_path:
            with open(json_path, "a") as out:
                out.write(json.dumps(result, default=str, sort_keys=True) + "\n")

    def say(self, text: str) -> None:
        self.stderr.write(text)

    def measure(self, edition: Edition, host: str, port: int, mail_env: dict[str, str],
                workers: int, work_dir: Path, run_id: str,
                profile: Path | None) -> dict:  # fmt: skip
        queue = f"bench-{run_id}"
        query_log = work_dir / f"queries-{run_id}.jsonl"
        worker_log = work_dir / f"worker-{run_id}.log"
        env = {k: v for k, v in os.environ.items() if k not in ("SMTP_URL", "EMAIL_ESP")} | {
            **mail_env,
            "BENCH_CELERY_QUEUE": queue,
            "BENCH_QUERY_LOG": str(query_log),
            # The workers run under this command's settings (bench.settings),
            # as production runs them: DEBUG off (on, every query is kept).
            "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE,
            "DJANGO_DEBUG": "0",
        }
        # The worker as shipped (docker-compose.yml), on a queue of the bench's own.
        command = [
            sys.executable, "-m", "celery", "-A", "bench.worker", "worker",
            "--loglevel", "INFO", "--concurrency", str(workers), "-Q", queue,
            "-n", f"{queue}@%h",
        ]  # fmt: skip
        with open(worker_log, "w") as log:
            # Our own interpreter and module, fixed arguments.
            worker = subprocess.Popen(  # noqa: S603
                command, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self.wait_until_ready(worker, worker_log)
            where = mail_env.get("SMTP_URL") or mail_env["EMAIL_ESP"].partition("://")[0]
            self.say(f"Sending through {where} with {workers} workers...")
            sampler = benchmark.start_profiler(worker.pid, profile) if profile else None
            cpu_before = benchmark.cpu_by_group()
            result = self.run_send(edition, queue)
            if sampler is not None:
                benchmark.stop_profiler(sampler)
            cpu = benchmark.cpu_used(cpu_before, benchmark.cpu_by_group())
            # CPU seconds per 1,000 emails, by process: what each email costs
            # the machine, the workers' share against the SMTP server's.
            result["cpu_counts_ended_processes"] = True
            result["cpu_per_1k"] = {
                group: round(seconds / result["emails"] * 1000, 3)
                for group, seconds in sorted(cpu.items())
                if result["emails"]
            }
            children = benchmark.child_pids(worker.pid)
            result["rss_mb"] = round(max(benchmark.peak_rss_mb(pid) for pid in children), 1)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)

        records = [json.loads(line) for line in query_log.read_text().splitlines()]
        query_log.unlink()
        batches = [r for r in records if r["task"] == tasks.send_delivery_batch.name]
        total_queries = sum(r["queries"] for r in records)
        full = [r["queries"] for r in batches if r["sent"] == max(b["sent"] for b in batches)]
        result["queries_per_1k"] = round(total_queries / result["emails"] * 1000, 1)
        result["queries_per_batch"] = f"{min(full)}-{max(full)}"
        result["batches"] = len(batches)
        # Where the workers' database time went, per kind of statement.
        by_shape: dict[str, float] = {}
        for record in records:
            for shape, seconds in record.get("query_seconds", {}).items():
                by_shape[shape] = by_shape.get(shape, 0.0) + seconds
        result["query_seconds"] = round(sum(by_shape.values()), 2)
        result["slowest_statements"] = [
            [shape, round(seconds, 2)]
            for shape, seconds in sorted(by_shape.items(), key=lambda item: -item[1])[:6]
        ]
        # Contents composed in all worker processes (delivery.emails.composed),
        # against the distinct (window, zone, format) sends: each process
        # composes each content it meets once, and the mornings of a day
        # share theirs (the "Since" line is a reader slot).
        result["renders"] = sum(r.get("renders", 0) for r in records)
        # Story blocks rendered (delivery.emails.story_block): per story and
        # format in each process, whatever the number of contents.
        result["block_renders"] = sum(r.get("block_renders", 0) for r in records)
        result["contents"] = (
            Delivery.objects.filter(edition=edition, status=Delivery.Status.SENT)
            .values("window_start", "scheduled_for", "time_zone", "digest_format")
            .distinct()
            .count()
        )

        # The raw limit: smtplib into the same server, on loopback (through
        # the proxy it would measure four round trips an email, nothing more).
        self.say("Measuring raw smtplib into the SMTP server on loopback...")
        samples = [self.sample_message(edition, digest_format) for digest_format in self.formats]
        raw_count = min(result["emails"], 100_000)
        result["raw"] = round(benchmark.raw_smtp_rate(host, port, samples, raw_count, workers))
        result["message_bytes"] = round(sum(map(len, samples)) / len(samples))
        result["message_bytes_by_format"] = {
            digest_format: len(sample)
            for digest_format, sample in zip(self.formats, samples, strict=True)
        }
        result["ratio"] = round(result["rate"] / result["raw"], 2)
        return result

    def wait_until_ready(self, worker: subprocess.Popen, log: Path) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise CommandError(f"The worker exited:\n{log.read_text()}")
            if " ready." in log.read_text():
                return
            time.sleep(0.1)
        raise CommandError(f"The worker did not start:\n{log.read_text()}")

    def run_send(self, edition: Edition, queue: str) -> dict:
        celery_app.conf.task_default_queue = queue
        deliveries = Delivery.objects.filter(edition=edition)
        started = time.perf_counter()
        started_at = timezone.now()
        if self.multi_zone:
            # Every zone's morning written by the scheduler, then its batches
            # queued, as send_due_digests does each minute.
            for batch in benchmark.schedule_mornings():
                tasks.send_delivery_batch.delay(*batch)
        else:
            tasks.send_edition.delay(edition.pk)
        while True:
            time.sleep(POLL_SECONDS)
            edition.refresh_from_db(fields=["status"])
            if edition.status == Edition.Status.SENT:
                break
        elapsed = time.perf_counter() - started
        counts = dict(deliveries.values_list("status").annotate(n=Count("pk")))
        sent = deliveries.filter(status=Delivery.Status.SENT).count()
        # NOT EXISTS, not NOT IN: PostgreSQL runs NOT IN over a million rows
        # (more than work_mem hashes) as a scan of the subquery per reader.
        had_one = Delivery.objects.filter(edition=edition, subscriber=OuterRef("pk"))
        not_entitled = Subscriber.objects.filter(
            ~Exists(had_one), email__endswith=f"@{benchmark.BENCH_DOMAIN}"
        )
        first_sent_at = deliveries.aggregate(first=Min("sent_at"))["first"]
        # The first row the workers marked sent (the first checkpoint), by
        # the clock this process and the workers share.
        first_email = (first_sent_at - started_at).total_seconds() if first_sent_at else None
        return {
            "emails": sent,
            "failed": counts.get(Delivery.Status.FAILED, 0),
            "not_sent_to_others": not_entitled.count(),
            "seconds": round(elapsed, 2),
            "rate": round(sent / elapsed),
            # None when no email went out at all (every delivery failed).
            "first_email": round(first_email, 2) if first_email is not None else None,
            "first_sent_at": first_sent_at.isoformat() if first_sent_at else None,
        }

    def sample_message(self, edition: Edition, digest_format: str) -> bytes:
        """A reader's digest of every story in this format, as the fast path assembles it."""
        reader = Subscriber(pk=1, email=f"reader0000001@{benchmark.BENCH_DOMAIN}", name="Reader 1")
        digest = DigestTemplate(
            edition, list(edition.ordered_articles()), digest_format=digest_format
        )
        data = FastDigest(digest).bytes_for(reader, new_message_id())
        if data is None:
            raise CommandError("The sample reader's digest cannot be assembled on the fast path.")
        return data

    def report(self, r: dict) -> None:
        rows = [
            ("Entitled readers", f"{r['subscribers']:,} (+{r['others']:,} who get nothing)"),
            ("Emails sent", f"{r['emails']:,} in {r['seconds']} s ({r['failed']} failed)"),
            ("End-to-end rate", f"{r['rate']:,} emails/s"),
            ("Raw smtplib rate", f"{r['raw']:,} emails/s ({r['message_bytes']:,}-byte messages)"),
            ("Ratio", f"{r['ratio']:.2f}"),
            ("Time to first email", f"{r['first_email']} s"),
            ("Peak worker memory", f"{r['rss_mb']} MB (largest worker process)"),
            ("Queries per 1,000 emails", f"{r['queries_per_1k']}"),
            ("Queries per full batch", f"{r['queries_per_batch']} ({r['batches']} batches)"),
            (
                "Zones x delivery times x section sets x formats",
                f"{r['zones']} x {r['send_times']} x {r.get('section_sets', 1)} x "
                f"{r.get('formats', 1)}",
            ),
            ("Renders", f"{r['renders']} in all workers, for {r['contents']} distinct contents"),
            ("Story block renders", f"{r.get('block_renders', 0)} in all workers"),
            ("CPU per 1,000 emails", ", ".join(f"{g} {s} s" for g, s in r["cpu_per_1k"].items())),
            ("Time in queries", f"{r['query_seconds']} s in all worker processes"),
            *((f"- {shape}", f"{seconds} s") for shape, seconds in r["slowest_statements"]),
        ]
        self.stdout.write("| Measure | Value |\n|---|---|")
        for name, value in rows:
            self.stdout.write(f"| {name} | {value} |")
        self.stdout.write(
            f"bench: subscribers={r['subscribers']} emails={r['emails']} rate={r['rate']}/s "
            f"raw={r['raw']}/s ratio={r['ratio']:.2f} first_email={r['first_email']}s "
            f"rss_mb={r['rss_mb']:.0f} queries_per_1k={r['queries_per_1k']:g} "
            f"zones={r['zones']}x{r['send_times']} sections={r.get('section_sets', 1)} "
            f"formats={r.get('formats', 1)} renders={r['renders']} "
            f"block_renders={r.get('block_renders', 0)}"
        )
