"""Settings of the error-reporting tests' processes: the application's own, and what fails.

Gunicorn, the Celery worker and beat run with these (DJANGO_SETTINGS_MODULE),
so Sentry is set up exactly as in production (SENTRY_DSN points at the
test's local server), with testing.sentry_app's failing view mounted and,
in beat's schedule instead of the real tasks, its entries: one that
succeeds, one that fails in the worker, one that fails in beat. The
address and token they fail with come from the test (SENTRY_TEST_EMAIL,
SENTRY_TEST_TOKEN).
"""

import os

from config.settings import *  # noqa: F403
from testing.sentry_app import EVERY_MINUTE, FirstRunNow

ROOT_URLCONF = "testing.sentry_urls"
CELERY_IMPORTS = ["testing.sentry_app"]
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
