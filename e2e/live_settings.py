"""Settings of the live server the browser tests drive: the demo's, with state of its own.

Everything comes from config.settings and the environment the e2e conftest
sets (SQLite database, SMTP server, SITE_URL, DEBUG). Only the places of
local state that settings do not read from the environment move under
var/e2e/: the caches (so the signup and sign-in rate limits start at zero on
every run and are not shared with `make run`), the filesystem broker (so
a worker of `make run` never takes the tests' tasks, nor ours theirs) and
the outbox (/outbox/ shows the tests' emails only).
"""

from config.settings import *  # noqa: F403
from config.settings import (
    MAILERS,
    OUTBOX_BACKEND,
    VAR_DIR,
    file_caches,
    filesystem_broker,
    outbox_mailer,
)

STATE_DIR = VAR_DIR / "e2e"

CACHES = file_caches(STATE_DIR)

OUTBOX_DIR = STATE_DIR / "outbox"
if MAILERS["default"]["BACKEND"] == OUTBOX_BACKEND:
    MAILERS = {**MAILERS, "default": outbox_mailer(OUTBOX_DIR)}

# The conftest removes REDIS_URL, so the broker is the filesystem one.
CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker(STATE_DIR / "broker")
