"""Settings for the test suite: the application's own, made faster where truth allows.

Everything else comes from config.settings and the environment, so CI's runs
on PostgreSQL and Redis (DATABASE_URL, REDIS_URL) test what production runs.
"""

import os
from urllib.parse import urlsplit, urlunsplit

from config.private_files import private_folder
from config.settings import *  # noqa: F403
from config.settings import (
    CACHES,
    INSTALLED_APPS,
    MAILERS,
    OUTBOX_BACKEND,
    REDIS_URL,
    VAR_DIR,
    file_caches,
    filesystem_broker,
    outbox_mailer,
)

# Hashing a password the slow, safe way costs a third of the suite's time and
# tests nothing of ours: tests only need a hasher that works.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests play the keyless demo as well as Stripe (they change STRIPE_SECRET_KEY
# and DEBUG per test), so the demo's local test checkout is installed whatever
# the environment says.
if "demo_checkout" not in INSTALLED_APPS:
    INSTALLED_APPS = [*INSTALLED_APPS, "demo_checkout"]

# No DNS in tests: domains are judged by their form only (email-validator).
EMAIL_CHECK_DELIVERABILITY = False

# make test runs the suite in several processes (pytest-xdist). Each keeps
# its own var/ (outbox, embedded broker, file caches) and, on Redis, its own
# database (caches, broker, rate-limit counts): the first worker the one
# REDIS_URL names, the second the one 7 below it, the third 8 below, ...
# (pytest-django gives each its own test database). No test then reads
# another process's mail, tasks, counts or pages.
if _worker := os.environ.get("PYTEST_XDIST_WORKER"):
    _number = int(_worker.removeprefix("gw"))
    VAR_DIR = private_folder(VAR_DIR / "test-workers" / _worker)
    OUTBOX_DIR = VAR_DIR / "outbox"
    if MAILERS["default"]["BACKEND"] == OUTBOX_BACKEND:
        MAILERS = {**MAILERS, "default": outbox_mailer(OUTBOX_DIR)}
    if REDIS_URL and _number:
        _parts = urlsplit(REDIS_URL)
        _database = (int(_parts.path.strip("/") or 0) - 6 - _number) % 16
        REDIS_URL = urlunsplit(_parts._replace(path=f"/{_database}"))
        # The processes tests start (Celery workers, manage.py) read it too.
        os.environ["REDIS_URL"] = REDIS_URL
        CELERY_BROKER_URL = REDIS_URL
        CACHES = {name: {**cache, "LOCATION": REDIS_URL} for name, cache in CACHES.items()}
    elif not REDIS_URL:
        CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker(VAR_DIR / "broker")
        CACHES = file_caches(VAR_DIR)
