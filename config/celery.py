import os

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun, task_success
from kombu.transport import TRANSPORT_ALIASES

from config.filesystem_broker import SCHEME

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
