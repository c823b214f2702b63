"""How a sender holds the rows it sends, and records what it sent even if the database blinks.

A claimed delivery is held by a lease (`Delivery.lease_until`): short, and
renewed by the live sender every quarter of its length between emails (the
heartbeat). A sender that dies stops renewing, so its rows are nobody's
within DIGEST_LEASE_SECONDS and the sweep hands them on; a live one never
loses them, as long as one SMTP call takes less than the lease (the mail
connection's timeout is shorter).

The writes that record what a sender did (sent, failed, handed back) are
the ones that must not be lost: a worker that sent 50 emails and cannot
say so sends them again later. `durably` retries such a write on a fresh
database connection, with backoff, for up to a minute (a PostgreSQL
failover, a pooler restart) before giving up.
"""

import datetime
import logging
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from delivery.models import Delivery

logger = logging.getLogger(__name__)

# The errors of a database connection that went away (terminated backend,
# restarted server or pooler, network): the write may be retried on a new one.
CONNECTION_ERRORS = (OperationalError, InterfaceError)
# How long a write is retried: within the batch task's soft time limit.
RETRY_FOR = datetime.timedelta(seconds=60)
RETRY_FIRST_PAUSE = 0.2


def lease_length() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.DIGEST_LEASE_SECONDS)


def heartbeat_every() -> float:
    """Seconds between renewals: a quarter of the lease."""
    return settings.DIGEST_LEASE_SECONDS / 4


def durably[T](write: Callable[[], T], what: str) -> T:
    """Run `write`; if the database connection is lost, again on a fresh one, with backoff.

    Only for writes that are safe to repeat (they set states, they do not
    count up twice: each is one statement or one transaction). Outside any
    transaction of the caller's, which a lost connection would have ended.
    """
    deadline = time.monotonic() + RETRY_FOR.total_seconds()
    pause = RETRY_FIRST_PAUSE
    while True:
        try:
            return write()
        except CONNECTION_ERRORS as error:
            if connection.in_atomic_block or time.monotonic() + pause > deadline:
                raise
            logger.warning("Database connection lost while %s (%s); retrying", what, error)
            # Throw the broken connection away; the next query opens a new one.
            connection.close()
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


class Lease:
    """The hold of one batch on its claimed rows, renewed while it works."""

    def __init__(self, delivery_ids: Iterable[int], now: datetime.datetime | None = None) -> None:
        self.ids = list(delivery_ids)
        self.until = (now or timezone.now()) + lease_length()
        self._renewed = time.monotonic()

    def keep_alive(self) -> None:
        """Renew the lease if a quarter of it has gone by (call between emails)."""
        if time.monotonic() - self._renewed >= heartbeat_every():
            self.renew()

    def renew(self) -> None:
        self._renewed = time.monotonic()
        until = timezone.now() + lease_length()
        durably(
            lambda: Delivery.objects.filter(pk__in=self.ids, status=Delivery.Status.SENDING).update(
                lease_until=until
            ),
            "renewing a lease",
        )
        self.until = until


class LeaseClock:
    """The end of a writer's lease, renewed: its `now`, moved on by the time gone by since.

    The clock is read once, by the caller; a long write (a million readers
    take tens of seconds) keeps its lease by the monotonic clock.
    """

    def __init__(self, now: datetime.datetime) -> None:
        self.now = now
        self.started = time.monotonic()

    def until(self) -> datetime.datetime:
        gone_by = datetime.timedelta(seconds=time.monotonic() - self.started)
        return self.now + gone_by + lease_length()
