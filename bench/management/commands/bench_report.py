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
        sends = [json.loads(line) for line in send_results.read_text().splitlines() if line]
        sends.sort(key=lambda result: result["subscribers"])
        pages = json.loads(page_results.read_text())
        docs.mkdir(exist_ok=True)
        plot(sends, docs / "throughput.png")
        baseline = pages["pages"][0]["rps"]
        for page in pages["pages"]:
            page["share_of_baseline"] = round(page["rps"] / baseline, 2)
        smallest, largest = sends[0], sends[-1]
        context = {
            "sends": sends,
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
