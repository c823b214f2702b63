"""Which mail connection carries a batch: the primary, or FALLBACK_SMTP_URL when it keeps failing.

A relay or ESP that is down for a few minutes is ridden out by the batch
task's retries. One that keeps failing would leave the morning's digests
queued until their catch-up window ends; with FALLBACK_SMTP_URL set, once
the primary has failed FALLBACK_AFTER_FAILURES times in a row the fallback
carries every batch for FALLBACK_MINUTES (the rest of a send), then the
primary is tried again. Each delivery records which carried it
(Delivery.carrier), and the desk's send report counts them.

The failure count lives in the shared cache (Redis in production), so every
worker sees the same state; losing it costs at most a few retries more.
"""

from django.conf import settings
from django.core.cache import cache

PRIMARY = "default"
FALLBACK = "fallback"
# Named when this module was newsletter.carriers, and kept: during an upgrade
# the workers of both releases count the same failures.
FAILURES_KEY = "newsletter.carriers.primary_failures"
BENCHED_KEY = "newsletter.carriers.primary_benched"


def has_fallback() -> bool:
    return FALLBACK in settings.MAILERS


def choose() -> str:
    """The mailer alias the next batch sends with."""
    if has_fallback() and cache.get(BENCHED_KEY):
        return FALLBACK
    return PRIMARY


def failed(carrier: str) -> None:
    """A batch could not send over `carrier`: after enough primary failures, switch."""
    if carrier != PRIMARY or not has_fallback():
        return
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
    if carrier == PRIMARY:
        cache.delete(FAILURES_KEY)


def reset() -> None:
    cache.delete_many([FAILURES_KEY, BENCHED_KEY])
