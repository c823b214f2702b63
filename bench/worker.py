"""The Celery app of the bench's workers: production's, plus a query counter.

`celery -A bench.worker worker` runs the same tasks and code as
`celery -A config worker`, under bench.settings; with BENCH_QUERY_LOG set it
also appends, for each task, the number of database queries it made, the
digests it rendered and the emails it sent.
"""

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

from celery import Task
from celery.signals import task_postrun, task_prerun, worker_process_init
from django.db import connection

from config.celery import app

__all__ = ["app"]


@dataclass
class RenderCounter:
    """How many digests a worker process rendered (newsletter.sending renders once per content)."""

    count: int = 0

    def install(self) -> None:
        from newsletter import emails, sending

        counter = self

        class CountedDigestTemplate(emails.DigestTemplate):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                counter.count += 1
                super().__init__(*args, **kwargs)

        # Only the sender's renders: the name sending.digest_template builds with.
        sending.DigestTemplate = CountedDigestTemplate  # type: ignore[attr-defined]


@dataclass
class QueryCounter:
    count: int = 0

    def __call__(
        self,
        execute: Callable[[str, Sequence[object] | None, bool, dict[str, object]], object],
        sql: str,
        params: Sequence[object] | None,
        many: bool,
        context: dict[str, object],
    ) -> object:
        self.count += 1
        return execute(sql, params, many, context)


_counter = QueryCounter()
_renders = RenderCounter()


@worker_process_init.connect
def _count_queries(**kwargs: object) -> None:
    if os.environ.get("BENCH_QUERY_LOG"):
        connection.execute_wrappers.append(_counter)
        _renders.install()


@task_prerun.connect
def _reset_count(**kwargs: object) -> None:
    _counter.count = 0
    _renders.count = 0


@task_postrun.connect
def _log_count(task: Task, retval: object = None, **kwargs: object) -> None:
    path = os.environ.get("BENCH_QUERY_LOG")
    if not path:
        return
    sent = retval.get("sent", 0) if isinstance(retval, dict) else 0
    record = {
        "task": task.name,
        "queries": _counter.count,
        "sent": sent,
        "renders": _renders.count,
    }
    with open(path, "a") as log:
        log.write(json.dumps(record) + "\n")
