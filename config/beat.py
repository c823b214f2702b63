"""When each of beat's periodic tasks last succeeded, for the metrics (/metrics).

Kept in the shared cache (Redis in production, var/cache in the demo), not
a table: the record is one timestamp per task, rewritten every minute, and
a flushed cache loses nothing that the next minute's run does not write
again. The Celery signal in config/celery.py records a run; a task run by
hand under the same name counts too (it did the same work).
"""

import datetime
import logging

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

KEY_PREFIX = "config.beat.last_success:"
# What the cache raises when it cannot be reached: Redis down, var/ unwritable.
CACHE_ERRORS = (RedisError, OSError)


def scheduled_tasks() -> list[str]:
    """The names of the tasks beat runs (CELERY_BEAT_SCHEDULE), sorted."""
    return sorted({str(entry["task"]) for entry in settings.CELERY_BEAT_SCHEDULE.values()})


def record_success(task_name: str, now: datetime.datetime) -> None:
    """Note that `task_name`, one of beat's, has just succeeded (others are ignored)."""
    if task_name not in scheduled_tasks():
        return
    try:
        cache.set(KEY_PREFIX + task_name, now.timestamp(), timeout=None)
    except CACHE_ERRORS as error:
        # The task did its work; only this record of it is lost.
        logger.warning("Could not record beat task %s's run: %s", task_name, error)


def last_successes() -> dict[str, float]:
    """{task name: Unix time of its last success} for beat's tasks that have succeeded."""
    names = scheduled_tasks()
    found = cache.get_many([KEY_PREFIX + name for name in names])
    return {name: float(found[KEY_PREFIX + name]) for name in names if KEY_PREFIX + name in found}
