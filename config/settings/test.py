"""Settings for the test suite: the application's own, made faster where truth allows.

Everything else comes from config.settings and the environment, so CI's runs
on PostgreSQL and Redis (DATABASE_URL, REDIS_URL) test what production runs.
"""

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

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
