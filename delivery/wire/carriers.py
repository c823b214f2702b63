"""Which mail connection carries a batch: the primary, or FALLBACK_SMTP_URL when it keeps failing.

A relay or ESP that is down for a few minutes is ridden out by the batch
task's retries. One that keeps failing would leave the morning's digests
queued until their catch-up window ends; with FALLBACK_SMTP_URL set, once
the primary has failed FALLBACK_AFTER_FAILURES times in a row the fallback
carries every batch for FALLBACK_MINUTES (the rest of a send), then the
primary is tried again. Each delivery records which carried it
(Delivery.carrier), and the desk's send report counts them.

The failure count lives in the shared cache (Redis in production), so every
worker sees the same state; losing it costs at most a few retries more. And
so a cache that fails (Redis restarting, say) is only logged here: a batch
that sent and recorded every reader is not failed by its bookkeeping, and
one that cannot read the count sends over the primary.
"""

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from redis import RedisError

logger = logging.getLogger(__name__)

# What the cache raises when it cannot answer: Redis's errors, or the file
# cache's (the embedded default) OSError.
CACHE_ERRORS = (RedisError, OSError)

PRIMARY = "default"
FALLBACK = "fallback"
# Named when this module was newsletter.carriers, and kept: during an upgrade
# the workers of both releases count the same failures.
FAILURES_KEY = "newsletter.carriers.primary_failures"
BENCHED_KEY = "newsletter.carriers.primary_benched"


def has_fallback() -> bool:
    return FALLBACK in settings.MAILERS


def bookkeeping[T](what: str, step: Callable[[], T], otherwise: T) -> T:
    """`step()`, or `otherwise` (logged) when the cache fails: never the batch's failure."""
    try:
        return step()
    except CACHE_ERRORS as error:
        logger.warning("Carrier bookkeeping (%s) skipped, the cache failed: %s", what, error)
        return otherwise


def choose() -> str:
    """The mailer alias the next batch sends with."""
    if has_fallback() and bookkeeping("reading", lambda: cache.get(BENCHED_KEY), False):
        return FALLBACK
    return PRIMARY


def failed(carrier: str) -> None:
    """A batch could not send over `carrier`: after enough primary failures, switch."""
    if carrier != PRIMARY or not has_fallback():
        return
    bookkeeping("counting a failure", _count_failure, None)


def _count_failure() -> None:
    window = settings.FALLBACK_MINUTES * 60
    cache.add(FAILURES_KEY, 0, window)
    try:
        failures = cache.incr(FAILURES_KEY)
    except ValueError:  # expired between add and incr
        cache.set(FAILURES_KEY, 1, window)
        failures = 1
    if failures >= settings.FALLBACK_AFTER_FAILURES:
        cache.set(BENCHED_KEY, True, window)
        cache.delete(FAILURES_KEY)


def succeeded(carrier: str) -> None:
    """The primary works: its failures so far were passing ones."""
    # Without a fallback nothing counts failures: nothing to forget.
    if carrier == PRIMARY and has_fallback():
        bookkeeping("forgetting failures", lambda: cache.delete(FAILURES_KEY), False)


def reset() -> None:
    cache.delete_many([FAILURES_KEY, BENCHED_KEY])
