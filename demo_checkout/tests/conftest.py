"""The local test checkout's tests: the readers' test settings, and the keyless demo."""

import pytest

# The readers' settings (Stripe test keys, site URL, eager Celery tasks, a
# cache of each test's own) apply here too; the `demo` fixture then takes the
# Stripe keys away, as in `make run`.
from subscriptions.tests.conftest import reader_test_settings  # noqa: F401


@pytest.fixture
def demo(settings):
    settings.DEBUG = True
    settings.STRIPE_SECRET_KEY = None
    settings.STRIPE_WEBHOOK_SECRET = None
    settings.STRIPE_PRICE_ID = None
    return settings
