"""Settings for e2e/test_run_demo.py: `bin/run-demo` with state of its own.

The demo's settings, with the caches, the filesystem broker and the outbox
under var/e2e-run-demo/, so the demo this test starts shares no tasks, rate
limits or emails with the browser tests' stack or with a developer's `make run`.
"""

from config.settings import *  # noqa: F403
from config.settings import VAR_DIR, file_caches, filesystem_broker, outbox_mailer

STATE_DIR = VAR_DIR / "e2e-run-demo"

CACHES = file_caches(STATE_DIR)
# No SMTP_URL here (the test removes it): every email goes to this outbox.
OUTBOX_DIR = STATE_DIR / "outbox"
MAILERS = {"default": outbox_mailer(OUTBOX_DIR)}
CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker(STATE_DIR / "broker")
