"""The cap on connections to one SMTP relay, held by every worker on every host together.

A relay limits the connections one client holds at once (Postfix's
smtpd_client_connection_count_limit, 50 by default) and answers the next
with a 421. Each worker process's batches open SMTP_URL's `?connections=`
to a relay far away (delivery.batches.SMTPPool); processes times connections,
over every worker container, can pass that limit. So a pool takes a place
for each connection in one count per relay, shared through Redis, and opens
only the connections it got places for; `?max_connections=` (default 50) is
the count's size. Workers behind one address (one host, or one NAT) are one
client to the relay: the count is per relay, whatever host the worker runs
on.

Each place has an expiry, renewed while its pool works and dropped when the
batch ends: a worker killed mid-batch gives its places back when they run
out. A pool's first connection (the batch's own, opened before the pool)
always counts, even past the cap: a batch never waits for a place, it
sends over fewer connections. Without Redis (the embedded default) the
count is kept in the process.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

# How long a place outlives its pool's last renewal (a killed worker's places
# are free again after this); pools renew at a third of it.
PLACE_SECONDS = 60.0
KEY_PREFIX = "briefing:relay-places:"
# Take the places: drop the expired ones, add the forced, then the rest while
# the count is under the cap. Returns how many of the rest were granted.
TAKE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local cap, seconds, forced = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
for i = 4, 3 + forced do
  redis.call('ZADD', KEYS[1], t + seconds, ARGV[i])
end
local granted = 0
for i = 4 + forced, #ARGV do
  if redis.call('ZCARD', KEYS[1]) >= cap then break end
  redis.call('ZADD', KEYS[1], t + seconds, ARGV[i])
  granted = granted + 1
end
redis.call('EXPIRE', KEYS[1], math.ceil(seconds) + 1)
return granted
"""
RENEW = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', t + tonumber(ARGV[1]), ARGV[i])
end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1])) + 1)
return 1
"""


class Count(Protocol):
    def take(self, relay: str, forced: list[str], wanted: list[str], cap: int) -> int:
        """Hold `forced` and as many of `wanted` as the cap allows; how many of `wanted`."""
        ...

    def renew(self, relay: str, places: list[str]) -> None: ...

    def give_back(self, relay: str, places: list[str]) -> None: ...


class RedisCount:
    """The count every worker on every host shares."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.take_script = self.client.register_script(TAKE)
        self.renew_script = self.client.register_script(RENEW)

    def take(self, relay: str, forced: list[str], wanted: list[str], cap: int) -> int:
        try:
            args: list[str | int | float] = [cap, PLACE_SECONDS, len(forced), *forced, *wanted]
            return int(self.take_script(keys=[KEY_PREFIX + relay], args=args))
        except redis.RedisError as error:
            # Redis restarting is no reason to stop sending: this process
            # counts its own connections meanwhile.
            logger.warning("Relay connections counted in this process, Redis failed: %s", error)
            return _local.take(relay, forced, wanted, cap)

    def renew(self, relay: str, places: list[str]) -> None:
        try:
            self.renew_script(keys=[KEY_PREFIX + relay], args=[PLACE_SECONDS, *places])
        except redis.RedisError as error:
            logger.warning("Relay places not renewed, Redis failed: %s", error)

    def give_back(self, relay: str, places: list[str]) -> None:
        try:
            self.client.zrem(KEY_PREFIX + relay, *places)
        except redis.RedisError as error:
            # They run out by themselves within PLACE_SECONDS.
            logger.warning("Relay places not given back, Redis failed: %s", error)


class LocalCount:
    """The count in this process (no Redis)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.places: dict[str, dict[str, float]] = {}

    def take(self, relay: str, forced: list[str], wanted: list[str], cap: int) -> int:
        with self.lock:
            now = self.clock()
            held = self.places.setdefault(relay, {})
            for place in [place for place, until in held.items() if until <= now]:
                del held[place]
            for place in forced:
                held[place] = now + PLACE_SECONDS
            granted = 0
            for place in wanted:
                if len(held) >= cap:
                    break
                held[place] = now + PLACE_SECONDS
                granted += 1
            return granted

    def renew(self, relay: str, places: list[str]) -> None:
        with self.lock:
            held = self.places.get(relay, {})
            for place in places:
                if place in held:
                    held[place] = self.clock() + PLACE_SECONDS

    def give_back(self, relay: str, places: list[str]) -> None:
        with self.lock:
            held = self.places.get(relay, {})
            for place in places:
                held.pop(place, None)


class Places:
    """One pool's places at one relay: renewed while it works, given back when it ends."""

    def __init__(
        self,
        count: Count,
        relay: str,
        places: list[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.count = count
        self.relay = relay
        self.places = places
        self.clock = clock
        self.renewed_at = clock()

    def keep(self) -> None:
        """Renew the places once a third of their life has passed (cheap to call per email)."""
        if self.places and self.clock() - self.renewed_at >= PLACE_SECONDS / 3:
            self.count.renew(self.relay, self.places)
            self.renewed_at = self.clock()

    def give_back(self) -> None:
        if self.places:
            self.count.give_back(self.relay, self.places)
            self.places = []


def take(relay: str, connections: int, cap: int) -> tuple[int, Places]:
    """Places for a pool of up to `connections` at `relay` ("host:port"); how many it may open.

    The first connection is the batch's own, already open: it always counts,
    and the answer is at least 1.
    """
    names = [uuid.uuid4().hex for _ in range(connections)]
    count = shared_count()
    granted = count.take(relay, names[:1], names[1:], cap)
    held = names[: 1 + granted]
    return 1 + granted, Places(count, relay, held)


_local = LocalCount()
_shared: dict[str, RedisCount] = {}


def shared_count() -> Count:
    if not settings.REDIS_URL:
        return _local
    if settings.REDIS_URL not in _shared:
        _shared[settings.REDIS_URL] = RedisCount(settings.REDIS_URL)
    return _shared[settings.REDIS_URL]
