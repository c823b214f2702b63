import logging.config
import os

from celery import Celery, Task
from celery.signals import (
    beat_init,
    celeryd_init,
    setup_logging,
    task_postrun,
    task_prerun,
    task_success,
)
from kombu.transport import TRANSPORT_ALIASES

from config import logcontext
from config.filesystem_broker import SCHEME
from config.sentry import init_from_settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# The embedded broker's URL (`embedded://`, config/settings) names our
# filesystem transport, as `redis://` names kombu's Redis one. Registered by
# name, not set as broker_transport: that setting would win over any URL,
# Redis ones included.
TRANSPORT_ALIASES[SCHEME] = "config.filesystem_broker:Transport"

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_connections(task: Task, **kwargs: object) -> None:
    """Database connections outlive a task as they outlive a web request: CONN_MAX_AGE.

    What Django does at each request's start and end: a connection that is
    too old, or broken (a restarted database, checked by CONN_HEALTH_CHECKS),
    is closed, and the next query opens a new one. (Celery's own rule, one
    connection per task, is turned off by CELERY_DB_REUSE_MAX.) A task run
    eagerly, in its caller's process, leaves the caller's connection alone.
    """
    from django import db

    if not task.request.is_eager:
        db.close_old_connections()


@task_success.connect
def record_beat_task(sender: Task, **kwargs: object) -> None:
    """Beat's tasks note each success (config.beat): the metrics say when beat last ran."""
    from django.utils import timezone

    from config import beat

    beat.record_success(sender.name, timezone.now())


@setup_logging.connect
def keep_django_logging(loglevel: int | None = None, **kwargs: object) -> None:
    """The worker and beat log through settings.LOGGING's handlers, not Celery's own.

    Celery replaces the root logger's handlers with its own when nothing
    answers this signal (worker_hijack_root_logger): lines without the
    filters that redact addresses and tokens, in neither of LOG_FORMAT's
    shapes. Answering it, Celery leaves logging as configured here, and
    prints to standard output stay prints (no stdout redirection).
    `--loglevel` still sets the level.
    """
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)


@celeryd_init.connect
@beat_init.connect
def report_errors(**kwargs: object) -> None:
    """Sentry in the worker (before its pool forks) and in beat, when SENTRY_DSN is set."""
    init_from_settings()


LOG_CONTEXT_KEY = "log_context_token"


@task_prerun.connect
def log_task(task: Task, task_id: str, **kwargs: object) -> None:
    """Every line logged while the task runs carries its id and name (config.logcontext)."""
    # Kept on this run's request, so the run inside it (an eager task) has its own.
    setattr(task.request, LOG_CONTEXT_KEY, logcontext.enter_task(task_id, task.name))


@task_postrun.connect
def end_log_task(task: Task, **kwargs: object) -> None:
    token = getattr(task.request, LOG_CONTEXT_KEY, None)
    if token is not None:
        logcontext.leave_task(token)
