"""The send-rate cap: SEND_RATE_LIMIT emails a second, across every worker on every host.

ESP accounts have quotas (Amazon SES a maximum send rate, Mailgun and
Postmark per-account limits), and relays their own. Each email takes its
place in one shared schedule kept in Redis (the generic cell rate
algorithm: the key holds the instant the next email may go; a reservation
of n emails moves it n / limit seconds on, and waits until its own
instant). Redis's own clock (TIME) is the one every host reads, so hosts
whose clocks differ share one rate. A sender reserves a block of emails at
a time (a few per cent of a second's worth: one Redis call per block, not
per email) and gives back what it did not use.

Without Redis (the embedded default) the same schedule is kept in the
process: the cap then holds per worker process.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

KEY = "briefing:send-rate:next"
# Reserve the next emails' places; the seconds to wait before the first of them.
RESERVE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local next_at = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_at < t then next_at = t end
local after = next_at + tonumber(ARGV[1]) / tonumber(ARGV[2])
if after < t then after = t end
redis.call('SET', KEYS[1], string.format('%.6f', after), 'EX', 3600)
return string.format('%.6f', next_at - t)
"""


class Schedule(Protocol):
    def reserve(self, emails: int, limit: float) -> float:
        """Reserve the places of `emails` (negative: give them back); the seconds to wait."""
        ...


class RedisSchedule:
    """The schedule every worker on every host shares."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.script = self.client.register_script(RESERVE)

    def reserve(self, emails: int, limit: float) -> float:
        try:
            return float(self.script(keys=[KEY], args=[emails, limit]))
        except redis.RedisError as error:
            # Redis restarting is no reason to stop sending: this process
            # keeps to the cap on its own meanwhile.
            logger.warning("Send-rate cap kept in this process, Redis failed: %s", error)
            return _local.reserve(emails, limit)


class LocalSchedule:
    """The schedule in this process (no Redis): the cap holds per process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.next_at = 0.0

    def reserve(self, emails: int, limit: float) -> float:
        with self.lock:
            now = self.clock()
            start = max(self.next_at, now)
            self.next_at = max(start + emails / limit, now)
            return start - now


class RateCap:
    """Paces one sender's emails to its share of the shared rate."""

    def __init__(
        self,
        limit: int,
        schedule: Schedule,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self.schedule = schedule
        self.sleep = sleep
        # A 20th of a second's worth, at most 50: the cap's grain, and the
        # most a sender gives back unused.
        self.block = max(1, min(limit // 20, 50))
        self.left = 0
        self.waited = 0.0

    def take(self) -> None:
        """Wait, if need be, until the next email may go."""
        if self.left == 0:
            wait = self.schedule.reserve(self.block, self.limit)
            if wait > 0:
                self.waited += wait
                self.sleep(wait)
            self.left = self.block
        self.left -= 1

    def release(self) -> None:
        """Give back the places reserved and not used (the sender is done)."""
        if self.left:
            self.schedule.reserve(-self.left, self.limit)
            self.left = 0


_local = LocalSchedule()
_shared: dict[str, RedisSchedule] = {}


def cap() -> RateCap | None:
    """The cap a sender paces its emails with, or None when SEND_RATE_LIMIT is 0 (none)."""
    if not settings.SEND_RATE_LIMIT:
        return None
    schedule: Schedule = _local
    if settings.REDIS_URL:
        if settings.REDIS_URL not in _shared:
            _shared[settings.REDIS_URL] = RedisSchedule(settings.REDIS_URL)
        schedule = _shared[settings.REDIS_URL]
    return RateCap(settings.SEND_RATE_LIMIT, schedule)
