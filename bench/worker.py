"""The Celery app of the bench's workers: production's, plus a query counter.

`celery -A bench.worker worker` runs the same tasks and code as
`celery -A config worker`, under bench.settings; with BENCH_QUERY_LOG set it
also appends, for each task, the number of database queries it made (and
the time spent in each kind), the digests it rendered and the emails it sent.
"""

import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

from celery import Task
from celery.signals import task_postrun, task_prerun, worker_process_init
from django.db import connection

from config.celery import app

__all__ = ["app"]


# A statement's shape: its SQL up to the WHERE, with quoting and lists dropped.
SHAPE = re.compile(r"\s+(WHERE|ORDER BY|LIMIT|RETURNING)\b.*", re.DOTALL)


@dataclass
class QueryCounter:
    """Queries a task made, and the seconds spent in each shape of statement."""

    count: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def __call__(
        self,
        execute: Callable[[str, Sequence[object] | None, bool, dict[str, object]], object],
        sql: str,
        params: Sequence[object] | None,
        many: bool,
        context: dict[str, object],
    ) -> object:
        self.count += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            shape = SHAPE.sub("", sql.replace('"', ""))[:90]
            self.seconds[shape] = self.seconds.get(shape, 0.0) + time.perf_counter() - started

    def reset(self) -> None:
        self.count = 0
        self.seconds = {}


_counter = QueryCounter()


@worker_process_init.connect
def _count_queries(**kwargs: object) -> None:
    if os.environ.get("BENCH_QUERY_LOG"):
        connection.execute_wrappers.append(_counter)


# The renders counted before the task (delivery.emails counts them per process).
_blocks_before = _contents_before = 0


@task_prerun.connect
def _reset_count(**kwargs: object) -> None:
    from delivery import emails

    global _blocks_before, _contents_before
    _counter.reset()
    _blocks_before = emails.block_renders
    _contents_before = emails.content_renders


@task_postrun.connect
def _log_count(task: Task, retval: object = None, **kwargs: object) -> None:
    from delivery import emails

    path = os.environ.get("BENCH_QUERY_LOG")
    if not path:
        return
    sent = retval.get("sent", 0) if isinstance(retval, dict) else 0
    record = {
        "task": task.name,
        "queries": _counter.count,
        "query_seconds": _counter.seconds,
        "sent": sent,
        "renders": emails.content_renders - _contents_before,
        "block_renders": emails.block_renders - _blocks_before,
    }
    with open(path, "a") as log:
        log.write(json.dumps(record) + "\n")
