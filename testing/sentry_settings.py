"""Settings of the error-reporting tests' processes: the application's own, and what fails.

Gunicorn, the Celery worker and beat run with these (DJANGO_SETTINGS_MODULE),
so Sentry is set up exactly as in production (SENTRY_DSN points at the
test's local server), with testing.sentry_app's failing view mounted and,
in beat's schedule instead of the real tasks, its entries: one that
succeeds, one that fails in the worker, one that fails in beat. The
address and token they fail with come from the test (SENTRY_TEST_EMAIL,
SENTRY_TEST_TOKEN), and so does the worker's queue (SENTRY_TEST_QUEUE).
"""

import os

from config.settings import *  # noqa: F403
from config.settings import CELERY_TASK_DEFAULT_QUEUE
from testing.sentry_app import EVERY_MINUTE, FirstRunNow

ROOT_URLCONF = "testing.sentry_urls"
# A Celery queue of the test's own (an advanced setting, not a variable).
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("SENTRY_TEST_QUEUE") or CELERY_TASK_DEFAULT_QUEUE
CELERY_IMPORTS = ["testing.sentry_app"]
# Tracing on for the test that checks transactions are scrubbed too (an advanced setting).
SENTRY_TRACES_SAMPLE_RATE = float(os.environ.get("SENTRY_TEST_TRACES_SAMPLE_RATE") or 0)
_secrets = [os.environ.get("SENTRY_TEST_EMAIL", ""), os.environ.get("SENTRY_TEST_TOKEN", "")]
CELERY_BEAT_SCHEDULE = {
    "briefing-test-succeeds": {
        "task": "testing.sentry_app.succeed",
        "schedule": FirstRunNow(EVERY_MINUTE),
    },
    "briefing-test-fails": {
        "task": "testing.sentry_app.task_fails_with_secrets",
        "schedule": FirstRunNow(EVERY_MINUTE),
        "args": _secrets,
    },
    "briefing-test-refused": {
        "task": "testing.sentry_app.refused_by_beat",
        "schedule": FirstRunNow(EVERY_MINUTE),
        "args": _secrets,
    },
}
