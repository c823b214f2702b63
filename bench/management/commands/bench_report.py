"""Write docs/performance.md and its plot from the results `make bench` collected."""

import json
import os
import platform
import re
from collections import Counter
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.template.loader import render_to_string
from django.utils import timezone

DATABASE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
# The targets of docs/performance.md, for 100,000 readers on this machine.
TARGET_RATE = 3000
TARGET_RATIO = 0.75
TARGET_FIRST_EMAIL = 0.5
TARGET_MILLION_SECONDS = 6 * 60


class Command(BaseCommand):
    help = "Render docs/performance.md and docs/throughput.png from benchmark results."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("send_results", type=Path, help="JSON lines from bench_digest --json")
        parser.add_argument("page_results", type=Path, help="JSON from bench_pages --json")
        parser.add_argument(
            "--profile", type=Path, help="py-spy's raw stacks (bench_digest --profile)"
        )
        parser.add_argument("--docs", type=Path, default=settings.BASE_DIR / "docs")

    def handle(self, *args: str, send_results: Path, page_results: Path, profile: Path | None,
               docs: Path, **options: object) -> None:  # fmt: skip
        results = [json.loads(line) for line in send_results.read_text().splitlines() if line]
        measured = [r for r in results if not r.get("profiled")]
        runs = median_runs(
            [
                r
                for r in measured
                if r.get("tag", "") in ("", "large") and r.get("wire", "loopback") == "loopback"
            ]
        )
        for r in runs:
            r["database_name"] = DATABASE_NAMES.get(r.get("database", "sqlite"), r.get("database"))
            if r.get("database") == "postgresql" and not r.get("cpu_counts_ended_processes"):
                # Counted before ended processes' time was: PostgreSQL's
                # backends that closed mid-run were missed (and reused pids
                # miscounted), so its figure is left out rather than shown wrong.
                r.get("cpu_per_1k", {}).pop("database", None)
                r["database_cpu_missing"] = True
            r["cpu"] = ", ".join(f"{group} {sec}" for group, sec in r.get("cpu_per_1k", {}).items())
            r["minutes"] = round(r["seconds"] / 60, 1)
        single = [r for r in runs if one_morning(r) and choices(r) == PLAIN]
        large = [r for r in single if r.get("tag") == "large"]
        sends = [r for r in single if r not in large]
        formats = format_runs(sends, [r for r in runs if one_morning(r) and is_one_format(r)])
        zoned = zoned_runs([r for r in runs if r not in single and not is_one_format(r)], sends)
        default_workers = sends[0]["workers"] if sends else 2
        scaling = scaling_runs(measured, runs, default_workers)
        wires = wire_runs(measured, sends + large)
        capped = cap_runs(measured)
        pages = json.loads(page_results.read_text())
        docs.mkdir(exist_ok=True)
        plot(sends + large, docs / "throughput.png")
        baseline = pages["pages"][0]["rps"]
        for page in pages["pages"]:
            page["share_of_baseline"] = round(page["rps"] / baseline, 2)
        context = {
            "sends": sends,
            "large": large,
            "zoned": zoned,
            "formats": formats,
            "wires": wires,
            "capped": capped,
            "scaling": scaling,
            "database_cpu_missing": any(r.get("database_cpu_missing") for r in runs),
            "million_process_seconds": million_process_seconds(scaling, default_workers),
            "targets": targets(sends, large)
            + choice_targets(zoned, formats)
            + wire_targets(wires)
            + cap_targets(capped),
            "profile": profile_table(profile) if profile and profile.exists() else None,
            "run_count": max(r["runs"] for r in runs),
            "databases": sorted({r["database_name"] for r in runs}),
            "workers": default_workers,
            "pages": pages,
            "machine": machine(),
            "broker": "Redis" if settings.REDIS_URL else "filesystem (kombu)",
            "date": timezone.now().date(),
        }
        (docs / "performance.md").write_text(render_to_string("bench/performance.md", context))
        self.stdout.write(f"Wrote {docs / 'performance.md'} and {docs / 'throughput.png'}")


def measurement(result: dict) -> tuple:
    return (
        result.get("wire", "loopback"),
        result.get("database", "sqlite"),
        result.get("zones", 1),
        result.get("send_times", 1),
        *choices(result),
        result["subscribers"],
        result.get("workers", 2),
        result.get("smtp_connections") or 0,
        result.get("rate_limit") or 0,
    )


# What readers chose (bench_digest --section-sets, --formats, --format): the
# plain run's readers follow every section and take headlines.
PLAIN = (1, 1, "headlines")


def choices(result: dict) -> tuple[int, int, str]:
    return (
        result.get("section_sets", 1),
        result.get("formats", 1),
        result.get("digest_format", "headlines"),
    )


def one_morning(result: dict) -> bool:
    return result.get("zones", 1) == 1 and result.get("send_times", 1) == 1


def is_one_format(result: dict) -> bool:
    """A run of one zone whose readers all take one format other than headlines."""
    return choices(result)[:2] == (1, 1) and choices(result) != PLAIN


def format_runs(sends: list[dict], others: list[dict]) -> list[dict]:
    """Each format on loopback, beside raw smtplib on messages of the same size.

    The headlines rows are the plain runs'; a size is shown only when it was
    also sent in another format.
    """
    sizes = {(r.get("database"), r["subscribers"]) for r in others}
    rows = [r for r in sends if (r.get("database"), r["subscribers"]) in sizes] + others
    for r in rows:
        r["format_name"] = choices(r)[2]
    return sorted(rows, key=lambda r: (r.get("database"), r["subscribers"], r["format_name"]))


def zoned_runs(runs: list[dict], sends: list[dict]) -> list[dict]:
    """Runs over many mornings or many readers' choices, beside their single-zone runs.

    Each beside the run of one zone with the same readers' choices (section
    sets, formats) and the same size, and beside the plain single-zone run.
    """
    by_choices = {
        (r.get("database"), r["subscribers"], choices(r)): r for r in runs if one_morning(r)
    }
    plain = {(r.get("database"), r["subscribers"]): r for r in sends}
    for r in runs:
        same = (
            plain.get((r.get("database"), r["subscribers"]))
            if choices(r) == PLAIN
            else by_choices.get((r.get("database"), r["subscribers"], choices(r)))
        )
        if same is r:
            same = None  # a single-zone run of choices is the others' baseline
        first = plain.get((r.get("database"), r["subscribers"]))
        r["single_zone_rate"] = same["rate"] if same else None
        r["single_zone_rss_mb"] = same["rss_mb"] if same else None
        r["single_zone_renders"] = same.get("renders") if same else None
        r["share_of_single_zone"] = round(r["rate"] / same["rate"], 2) if same else None
        r["plain_rate"] = first["rate"] if first else None
        r["plain_rss_mb"] = first["rss_mb"] if first else None
        r["section_sets"], r["formats"] = choices(r)[:2]
    return sorted(
        runs, key=lambda r: (r.get("database"), r["subscribers"], choices(r), r.get("zones", 1))
    )


# Each reader's own digest (sections, formats): the targets beside the send's.
TARGET_SHARE_OF_SINGLE_ZONE = 0.9
TARGET_RSS_GROWTH = 10


def choice_targets(zoned: list[dict], formats: list[dict]) -> list[dict]:
    """The targets of readers' own digests against the median runs: met or not."""
    rows = []
    for r in zoned:
        if r["subscribers"] != 100_000 or choices(r) == PLAIN or one_morning(r):
            continue
        name = f"{r['database_name']}: {r['zones']} zones x {r['send_times']} times x " + (
            f"{r['section_sets']} section sets x {r['formats']} formats"
        )
        if r["single_zone_rate"]:
            rows.append(target(
                f"{name}, against one zone of the same readers", f"≥ {TARGET_SHARE_OF_SINGLE_ZONE}",
                r["share_of_single_zone"],
                r["share_of_single_zone"] >= TARGET_SHARE_OF_SINGLE_ZONE,
            ))  # fmt: skip
        if r["plain_rss_mb"]:
            growth = round((r["rss_mb"] / r["plain_rss_mb"] - 1) * 100)
            rows.append(target(
                f"{name}: peak worker memory against the plain single-zone run",
                f"within {TARGET_RSS_GROWTH}%",
                f"{r['rss_mb']} MB against {r['plain_rss_mb']} MB ({growth:+d}%)",
                growth <= TARGET_RSS_GROWTH,
            ))  # fmt: skip
    for r in formats:
        if r["subscribers"] != 100_000:
            continue
        rows.append(target(
            f"{r['database_name']}: {r['format_name']} digests, ratio to raw smtplib of the "
            "same size", f"≥ {TARGET_RATIO}", r["ratio"], r["ratio"] >= TARGET_RATIO,
        ))  # fmt: skip
    return rows


def median_runs(results: list[dict]) -> list[dict]:
    """One result per measurement (database, size, zones, delivery times, workers): its median run.

    The whole run is kept, so every figure beside the rate (the raw limit
    above all) is of that same run; `runs`, `rates` and the spread say what
    it was the median of. With an even number of runs, the lower middle one.
    """
    groups: dict[tuple, list[dict]] = {}
    for result in results:
        groups.setdefault(measurement(result), []).append(result)
    medians = []
    for _key, group in sorted(groups.items()):
        group.sort(key=lambda result: result["rate"])
        median = dict(group[(len(group) - 1) // 2])
        median["runs"] = len(group)
        median["rates"] = ", ".join(f"{result['rate']}" for result in group)
        median["min_rate"], median["max_rate"] = group[0]["rate"], group[-1]["rate"]
        ratios = sorted(result["ratio"] for result in group)
        median["min_ratio"], median["max_ratio"] = ratios[0], ratios[-1]
        medians.append(median)
    return medians


WIRE_NAMES = {
    "relay": "SMTP relay (pipelined, through the latency proxy)",
    "relay-chunking": (
        "SMTP relay offering CHUNKING (BDAT; bench.chunking_sink, through the latency proxy)"
    ),
    "mailgun": "Mailgun's batch API (fake, answering after the round trip)",
    "postmark": "Postmark's /email/batch (fake, answering after the round trip)",
    "sendgrid": "SendGrid's mail send (fake, answering after the round trip)",
}


# How close a capped send keeps to SEND_RATE_LIMIT over a whole send.
CAP_TOLERANCE = 0.05


def cap_runs(results: list[dict]) -> list[dict]:
    """The capped sends (bench_digest --rate-limit): the rate each held against its cap."""
    runs = median_runs([r for r in results if r.get("rate_limit")])
    for r in runs:
        r["database_name"] = DATABASE_NAMES.get(r.get("database", "sqlite"), r.get("database"))
        r["wire_name"] = WIRE_NAMES.get(r.get("wire", "loopback"), "smtp-sink on loopback")
        r["deviation_percent"] = round((r["rate"] / r["rate_limit"] - 1) * 100, 1)
        extremes = (r["min_rate"], r["max_rate"])
        r["worst_percent"] = max(
            round(abs(rate / r["rate_limit"] - 1) * 100, 1) for rate in extremes
        )
    return runs


def cap_targets(capped: list[dict]) -> list[dict]:
    return [
        target(
            f"{r['database_name']}: a cap of {r['rate_limit']:,}/s over {r['subscribers']:,}",
            f"within {CAP_TOLERANCE:.0%}, no throttled reader failed",
            f"{r['rate']:,}/s ({r['deviation_percent']:+g}%), {r['failed']} failed",
            abs(r["deviation_percent"]) <= CAP_TOLERANCE * 100 and r["failed"] == 0,
        )
        for r in capped
    ]


TARGET_RELAY_RATE = 800
RELAY_CONNECTIONS_PER_HOST = 50  # Postfix's default limit per client host
TARGET_ESP_SHARE = 0.75


def wire_targets(wires: list[dict]) -> list[dict]:
    """The real wire's targets at 100,000 readers: the relay's rate, an ESP's share of loopback."""
    rows = []
    plain_relay = {(r.get("database"), r["subscribers"]): r for r in wires if r["wire"] == "relay"}
    for r in wires:
        if r["subscribers"] != 100_000:
            continue
        name = f"{r['database_name']}: {r['wire_name']}, {r.get('rtt_ms', 50):g} ms away"
        if r["wire"] == "relay-chunking":
            # "With CHUNKING offered, more" than the same relay without it.
            plain = plain_relay.get((r.get("database"), r["subscribers"]))
            host_connections = (r.get("smtp_connections") or 0) * r["workers"]
            rows.append(target(
                name,
                f"more than without CHUNKING, ≤ {RELAY_CONNECTIONS_PER_HOST} connections",
                f"{r['rate']:,}/s against {plain['rate']:,}/s, {host_connections} connections"
                if plain else f"{r['rate']:,}/s (no run without CHUNKING)",
                plain is not None and r["rate"] > plain["rate"]
                and host_connections <= RELAY_CONNECTIONS_PER_HOST,
            ))  # fmt: skip
        elif r["wire"] == "relay":
            host_connections = (r.get("smtp_connections") or 0) * r["workers"]
            rows.append(target(
                name, f"≥ {TARGET_RELAY_RATE}/s, ≤ {RELAY_CONNECTIONS_PER_HOST} connections",
                f"{r['rate']:,}/s, {host_connections} connections",
                r["rate"] >= TARGET_RELAY_RATE and host_connections <= RELAY_CONNECTIONS_PER_HOST,
            ))  # fmt: skip
        elif r["share_of_loopback"] is not None:
            rows.append(target(
                name, f"≥ {TARGET_ESP_SHARE} of loopback", r["share_of_loopback"],
                r["share_of_loopback"] >= TARGET_ESP_SHARE,
            ))  # fmt: skip
    return rows


def wire_runs(results: list[dict], loopback: list[dict]) -> list[dict]:
    """The runs over a wire (bench_digest --wire), beside the loopback run of the same size.

    Each wire's median beside the median loopback rate of the same database
    and list size, measured in the same `make bench` (the machine's state
    that day for both).
    """
    beside = {(r.get("database"), r["subscribers"]): r for r in loopback}
    runs = median_runs([r for r in results if r.get("wire", "loopback") != "loopback"])
    for r in runs:
        r["wire_name"] = WIRE_NAMES.get(r["wire"], r["wire"])
        if r["wire"] in ("relay", "relay-chunking") and r.get("smtp_connections"):
            r["wire_name"] += f", {r['smtp_connections']} connections per process"
        r["database_name"] = DATABASE_NAMES.get(r.get("database", "sqlite"), r.get("database"))
        r["minutes"] = round(r["seconds"] / 60, 1)
        other = beside.get((r.get("database"), r["subscribers"]))
        r["loopback_rate"] = other["rate"] if other else None
        r["share_of_loopback"] = round(r["rate"] / other["rate"], 2) if other else None
    return runs


def scaling_runs(results: list[dict], medians: list[dict], default_workers: int) -> list[dict]:
    """The scaling runs (1, 4... worker processes) beside the median run of the default number."""
    scaled = median_runs([r for r in results if r.get("tag") == "scaling"])
    databases = {(r.get("database"), r["subscribers"]) for r in scaled}
    rows = scaled + [
        r
        for r in medians
        if (r.get("database"), r["subscribers"]) in databases
        and r.get("zones", 1) == 1
        and r.get("send_times", 1) == 1
        and r["workers"] == default_workers
        and r.get("tag", "") == ""
    ]
    for r in rows:
        r["per_worker"] = round(r["rate"] / r["workers"])
        r["database_name"] = DATABASE_NAMES.get(r.get("database", "sqlite"))
    return sorted(rows, key=lambda r: (r.get("database"), r["workers"]))


def million_process_seconds(scaling: list[dict], default_workers: int) -> int | None:
    """Process-seconds a million emails take at the per-process rate of the default run."""
    for r in scaling:
        if r["workers"] == default_workers:
            return round(1_000_000 / r["per_worker"])
    return None


def targets(sends: list[dict], large: list[dict]) -> list[dict]:
    """Each target of the issue against the median runs, per database: met or not."""
    rows = []
    for r in sends:
        if r["subscribers"] != 100_000:
            continue
        name = r["database_name"]
        rows += [
            target(f"{name}: emails/s at 100,000", f"≥ {TARGET_RATE:,}", r["rate"],
                   r["rate"] >= TARGET_RATE),
            target(f"{name}: ratio to raw smtplib", f"≥ {TARGET_RATIO}", r["ratio"],
                   r["ratio"] >= TARGET_RATIO),
            target(f"{name}: time to first email", f"< {TARGET_FIRST_EMAIL} s",
                   f"{r['first_email']} s", (r["first_email"] or 99) < TARGET_FIRST_EMAIL),
        ]  # fmt: skip
    smallest = {r.get("database"): r for r in sorted(sends, key=lambda r: -r["subscribers"])}
    for r in large:
        name = r["database_name"]
        small = smallest.get(r.get("database"))
        if small is not None:
            growth = round((r["rss_mb"] / small["rss_mb"] - 1) * 100)
            rows.append(target(
                f"{name}: peak worker memory at {r['subscribers']:,} against "
                f"{small['subscribers']:,}", "within 20%",
                f"{r['rss_mb']} MB against {small['rss_mb']} MB ({growth:+d}%)", growth <= 20,
            ))  # fmt: skip
        # From queueing the send, so the audience snapshot is included.
        total = r["seconds"]
        rows.append(target(
            f"{name}: {r['subscribers']:,} readers end to end", "< 6 min",
            f"{total / 60:.1f} min", total < TARGET_MILLION_SECONDS,
        ))  # fmt: skip
    return rows


def target(name: str, goal: str, measured: object, met: bool) -> dict:
    return {
        "name": name,
        "goal": goal,
        "measured": measured,
        "met": "met" if met else "**not met**",
    }


TASK_FRAME = "send_delivery_batch (delivery/tasks.py)"


def profile_table(path: Path, rows: int = 20) -> dict:
    """Where the workers' time went: the functions in most samples, from py-spy's raw stacks.

    Each line of the file is a stack (frames joined by ";", the process
    first) and its sample count. Within the batch task, a function's share
    is of all the workers' samples whose stack contains it (inclusive) or
    ends in it (self); samples outside the task are Celery's own work
    (receiving tasks, the broker, acknowledging).
    """
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = outside = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        # "function (file.py:line)" -> "function (file.py)": lines of one function together.
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")[1:]]
        total += count
        if TASK_FRAME not in frames:
            outside += count
            continue
        frames = frames[frames.index(TASK_FRAME) :]
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    share = lambda count: round(100 * count / total, 1) if total else 0.0  # noqa: E731
    return {
        "samples": total,
        "outside_task": share(outside),
        "inclusive": [(frame, share(count)) for frame, count in inclusive.most_common(rows)],
        "self": [(frame, share(count)) for frame, count in own.most_common(12)],
    }


def machine() -> dict:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024),
        "python": platform.python_version(),
        "system": platform.platform(terse=True),
    }


def plot(sends: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4), dpi=120)
    for database in sorted({r.get("database", "sqlite") for r in sends}):
        runs = sorted((r for r in sends if r.get("database", "sqlite") == database),
                      key=lambda r: r["subscribers"])  # fmt: skip
        name = DATABASE_NAMES.get(database, database)
        sizes = [r["subscribers"] for r in runs]
        line = axes.plot(sizes, [r["rate"] for r in runs], marker="o",
                         label=f"End to end, {name}")[0]  # fmt: skip
        axes.fill_between(sizes, [r["min_rate"] for r in runs], [r["max_rate"] for r in runs],
                          color=line.get_color(), alpha=0.15)  # fmt: skip
        axes.plot(sizes, [r["raw"] for r in runs], marker="s", linestyle="--",
                  color=line.get_color(), alpha=0.6, label=f"Raw smtplib ({name} run)")  # fmt: skip
    axes.axhline(TARGET_RATE, color="grey", linewidth=0.8, linestyle=":",
                 label=f"Target: {TARGET_RATE:,}/s")  # fmt: skip
    axes.set_xscale("log")
    axes.set_xlabel("Entitled readers")
    axes.set_ylabel("Emails per second")
    axes.set_ylim(bottom=0)
    axes.set_title("Digest throughput by list size (median, min-max shaded)")
    axes.legend(loc="lower left", fontsize="small")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
