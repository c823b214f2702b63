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
from config.settings import MAILERS, OUTBOX_BACKEND, outbox_mailer

_overrides: dict[str, object] = json.loads(os.environ.get("TEST_SETTINGS", "{}"))
unknown = [name for name in _overrides if not name.isupper() or name not in globals()]
if unknown:
    raise ValueError(f"TEST_SETTINGS names no setting of config.settings: {unknown}")
globals().update(_overrides)

if "OUTBOX_DIR" in _overrides and MAILERS["default"]["BACKEND"] == OUTBOX_BACKEND:
    MAILERS = {**MAILERS, "default": outbox_mailer(Path(str(_overrides["OUTBOX_DIR"])))}
