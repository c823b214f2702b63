"""Failures of the cache are not failures of the send (issue 28).

The carriers' bookkeeping (delivery.wire.carriers) lives in the shared cache:
Redis restarting must not fail a batch that sent and recorded every reader.
The cache here is a real Redis client pointed at a port nothing listens on.
"""

import socket

import pytest
from django.core.cache import caches

from delivery import by_hand
from delivery.models import Delivery
from delivery.wire import carriers
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_down(settings):
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        },
    }
    yield
    caches["default"].close()


@pytest.mark.parametrize("with_fallback", [False, True])
def test_a_batch_that_sent_everyone_is_not_failed_by_the_cache(
    redis_down, smtp_server, settings, with_fallback, caplog
):
    if with_fallback:
        settings.MAILERS = {**settings.MAILERS, "fallback": settings.MAILERS["default"]}
    make_article()
    readers = [make_subscriber(f"reader{n}@example.com") for n in range(3)]
    edition = built_edition(MONDAY)

    report = by_hand.send_edition_in_process(edition.pk)

    assert report.sent == 3 and report.carried == {"default": 3}
    assert sorted(smtp_server.recipients()) == sorted(r.email for r in readers)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    if with_fallback:
        # The bookkeeping was tried, failed, and was only logged.
        assert "Carrier bookkeeping (forgetting failures) skipped" in caplog.text


def test_with_the_cache_down_the_primary_carries_and_failures_are_only_logged(
    redis_down, settings, caplog
):
    settings.MAILERS = {**settings.MAILERS, "fallback": settings.MAILERS["default"]}

    assert carriers.choose() == carriers.PRIMARY
    carriers.failed(carriers.PRIMARY)
    carriers.succeeded(carriers.PRIMARY)

    assert "Carrier bookkeeping (reading) skipped" in caplog.text
    assert "Carrier bookkeeping (counting a failure) skipped" in caplog.text
