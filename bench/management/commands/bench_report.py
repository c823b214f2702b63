"""Write docs/performance.md and its plot from the results `make bench` collected."""

import json
import os
import platform
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.template.loader import render_to_string
from django.utils import timezone


class Command(BaseCommand):
    help = "Render docs/performance.md and docs/throughput.png from benchmark results."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("send_results", type=Path, help="JSON lines from bench_digest --json")
        parser.add_argument("page_results", type=Path, help="JSON from bench_pages --json")
        parser.add_argument("--docs", type=Path, default=settings.BASE_DIR / "docs")

    def handle(
        self, *args: str, send_results: Path, page_results: Path, docs: Path, **options: object
    ) -> None:
        results = [json.loads(line) for line in send_results.read_text().splitlines() if line]
        runs = median_runs(results)
        sends = [r for r in runs if r.get("zones", 1) == 1 and r.get("send_times", 1) == 1]
        single = {r["subscribers"]: r for r in sends}
        zoned = [r for r in runs if r not in sends]
        for r in zoned:
            beside = single.get(r["subscribers"])
            r["single_zone_rate"] = beside["rate"] if beside else None
            r["single_zone_renders"] = beside.get("renders") if beside else None
        pages = json.loads(page_results.read_text())
        docs.mkdir(exist_ok=True)
        plot(sends, docs / "throughput.png")
        baseline = pages["pages"][0]["rps"]
        for page in pages["pages"]:
            page["share_of_baseline"] = round(page["rps"] / baseline, 2)
        smallest, largest = sends[0], sends[-1]
        context = {
            "sends": sends,
            "zoned": zoned,
            "run_count": max(r["runs"] for r in runs),
            "pages": pages,
            "machine": machine(),
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            "broker": "Redis" if settings.REDIS_URL else "filesystem (kombu)",
            "date": timezone.now().date(),
            "memory_growth_percent": round((largest["rss_mb"] / smallest["rss_mb"] - 1) * 100),
            "per_worker_rate": round(largest["rate"] / largest["workers"]),
            "readers_per_minute_per_worker": round(largest["rate"] / largest["workers"] * 60),
        }
        (docs / "performance.md").write_text(render_to_string("bench/performance.md", context))
        self.stdout.write(f"Wrote {docs / 'performance.md'} and {docs / 'throughput.png'}")


def median_runs(results: list[dict]) -> list[dict]:
    """One result per measurement (size, zones, delivery times): its median run by rate.

    The whole run is kept, so every figure beside the rate (the raw limit
    above all) is of that same run; `runs` and `rates` say what it was the
    median of. With an even number of runs, the lower middle one.
    """
    groups: dict[tuple[int, int, int], list[dict]] = {}
    for result in results:
        key = (result.get("zones", 1), result.get("send_times", 1), result["subscribers"])
        groups.setdefault(key, []).append(result)
    medians = []
    for _key, group in sorted(groups.items()):
        group.sort(key=lambda result: result["rate"])
        median = dict(group[(len(group) - 1) // 2])
        median["runs"] = len(group)
        median["rates"] = ", ".join(f"{result['rate']}" for result in group)
        medians.append(median)
    return medians


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

    sizes = [result["subscribers"] for result in sends]
    figure, axes = pyplot.subplots(figsize=(7, 4), dpi=120)
    axes.plot(sizes, [r["rate"] for r in sends], marker="o", label="End to end (tasks, workers)")
    axes.plot(sizes, [r["raw"] for r in sends], marker="s", linestyle="--",
              label="Raw smtplib, same server")  # fmt: skip
    axes.axhline(2000, color="grey", linewidth=0.8, linestyle=":", label="Target: 2,000/s")
    axes.set_xscale("log")
    axes.set_xlabel("Entitled readers")
    axes.set_ylabel("Emails per second")
    axes.set_ylim(bottom=0)
    axes.set_title("Digest throughput by list size (2 worker processes)")
    axes.legend(loc="lower left")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
