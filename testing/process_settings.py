"""Settings of a process a test starts (a worker, a web server): the product's, plus the test's.

The advanced settings (config/settings, README.md "Advanced settings") are
not read from the environment, so a test that needs one otherwise in
another process (a Celery queue of its own, shorter leases, an outbox of its
own) names this module as DJANGO_SETTINGS_MODULE and gives those settings
as a JSON object in TEST_SETTINGS. Everything else comes from the
environment, as in production. The product never names this module.
"""

import json
import os
from pathlib import Path

from config.settings import *  # noqa: F403
from config.settings import (
    MAILERS,
    OUTBOX_BACKEND,
    REDIS_URL,
    VAR_DIR,
    file_caches,
    filesystem_broker,
    outbox_mailer,
)

# Started by a test of one of make test's several pytest processes
# (pytest-xdist), whose name it inherits: that process's var/, as
# config/settings/test.py gives it (its Redis database comes in REDIS_URL).
if _worker := os.environ.get("PYTEST_XDIST_WORKER"):
    VAR_DIR = VAR_DIR / "test-workers" / _worker
    OUTBOX_DIR = VAR_DIR / "outbox"
    if MAILERS["default"]["BACKEND"] == OUTBOX_BACKEND:
        MAILERS = {**MAILERS, "default": outbox_mailer(OUTBOX_DIR)}
    if not REDIS_URL:
        CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker(VAR_DIR / "broker")
        CACHES = file_caches(VAR_DIR)

_overrides: dict[str, object] = json.loads(os.environ.get("TEST_SETTINGS", "{}"))
unknown = [name for name in _overrides if not name.isupper() or name not in globals()]
if unknown:
    raise ValueError(f"TEST_SETTINGS names no setting of config.settings: {unknown}")
globals().update(_overrides)

if "OUTBOX_DIR" in _overrides and MAILERS["default"]["BACKEND"] == OUTBOX_BACKEND:
    MAILERS = {**MAILERS, "default": outbox_mailer(Path(str(_overrides["OUTBOX_DIR"])))}
