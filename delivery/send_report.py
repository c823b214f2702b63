"""How an edition's send is going, for the editors' desk: counts by status, zone and mailer.

Read from the deliveries as they are; the dashboard keeps its own counts
(dashboard.sends) for its figures over many editions.
"""

import datetime
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models
from django.db.models import QuerySet

from delivery.batches import NOTHING_FOR_YOU
from delivery.models import Delivery
from delivery.recovery import RESUMED_NOTE
from newsletter.models import Edition


def delivery_counts(edition: Edition) -> dict[str, int]:
    """How many of the edition's deliveries are in each status (every status named, 0 or more)."""
    counts = dict.fromkeys(Delivery.Status.values, 0)
    for row in edition.deliveries.values("status").annotate(count=models.Count("pk")):
        counts[row["status"]] = row["count"]
    return counts


def progress(edition: Edition) -> "SendProgress":
    return SendProgress(delivery_counts(edition))


def carried(edition: Edition) -> dict[str, int]:
    """How many sent deliveries each mailer carried ({"default": n, "fallback": m})."""
    rows = (
        edition.deliveries.filter(status__in=[Delivery.Status.SENT, Delivery.Status.BOUNCED])
        .exclude(carrier="")
        .values_list("carrier")
        .annotate(count=models.Count("pk"))
        .order_by("carrier")
    )
    return dict(rows)


def unconfirmed(edition: Edition) -> int:
    """How many went out on a connection that dropped before the server confirmed them."""
    return edition.deliveries.filter(
        status=Delivery.Status.SENT, last_error=Delivery.UNCONFIRMED_NOTE
    ).count()


def may_have_had_twice(edition: Edition) -> int:
    """How many readers may have received the edition twice: rows resumed after an interruption.

    A worker killed mid-send leaves its unrecorded rows claimed; the sweep
    sends them again. At most the readers of the window or call in flight
    had it already (delivery.batches), but which of those rows did is not
    known: each says so (recovery.RESUMED_NOTE) and is counted here.
    """
    return edition.deliveries.filter(last_error=RESUMED_NOTE).count()


def formats(edition: Edition) -> dict[str, int]:
    """How many readers had the digest in each format ({"full": n, "headlines": m}).

    Sent (or sent and bounced) deliveries, by the format their reader had
    chosen when the audience was written; rows from before formats existed
    were headlines.
    """
    counts = {"full": 0, "headlines": 0}
    rows = (
        edition.deliveries.filter(status__in=[Delivery.Status.SENT, Delivery.Status.BOUNCED])
        .values_list("digest_format")
        .annotate(count=models.Count("pk"))
        .order_by()
    )
    for digest_format, count in rows:
        key = digest_format or "headlines"
        counts[key] = counts.get(key, 0) + count
    return counts


def nothing_for_you(edition: Edition) -> int:
    """How many readers had nothing new in the sections they follow: skipped, not emailed."""
    return edition.deliveries.filter(
        status=Delivery.Status.SKIPPED, last_error=NOTHING_FOR_YOU
    ).count()


def failures(edition: Edition, *, with_readers: bool) -> QuerySet[Delivery]:
    """The deliveries that did not arrive (failed, bounced).

    By the reader's address, with the reader, for staff who may see readers
    (subscriptions.admin_privacy); by id, without them, for the others.
    """
    rows = edition.deliveries.filter(
        status__in=[Delivery.Status.FAILED, Delivery.Status.BOUNCED]
    ).order_by("subscriber__email" if with_readers else "pk")
    return rows.select_related("subscriber") if with_readers else rows


def zone_sends(edition: Edition) -> list["ZoneSend"]:
    """Each zone's morning send of the edition, in the order they went."""
    sends: dict[tuple[str, datetime.datetime | None], ZoneSend] = {}
    pace = {
        (row["time_zone"], row["scheduled_for"]): (row["first"], row["last"])
        for row in edition.deliveries.filter(status=Delivery.Status.SENT, sent_at__isnull=False)
        .values("time_zone", "scheduled_for")
        .annotate(first=models.Min("sent_at"), last=models.Max("sent_at"))
        .order_by()
    }
    rows = (
        edition.deliveries.values("time_zone", "scheduled_for", "status")
        .annotate(count=models.Count("pk"))
        .order_by("scheduled_for", "time_zone")
    )
    for row in rows:
        key = (row["time_zone"], row["scheduled_for"])
        if key not in sends:
            first, last = pace.get(key, (None, None))
            sends[key] = ZoneSend(
                row["time_zone"],
                row["scheduled_for"],
                dict.fromkeys(Delivery.Status.values, 0),
                first_sent=first,
                last_sent=last,
            )
        sends[key].progress.counts[row["status"]] += row["count"]
    return list(sends.values())


@dataclass
class SendProgress:
    """How far an edition's send has come, for the editors' report."""

    counts: dict[str, int]

    @property
    def queued(self) -> int:
        """Not sent yet: waiting in the queue or being sent right now."""
        return self.counts["queued"] + self.counts["sending"]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        return self.total - self.queued

    @property
    def percent(self) -> int:
        return round(100 * self.finished / self.total) if self.total else 100


@dataclass
class ZoneSend:
    """One zone's send of an edition, for the editors' report."""

    time_zone: str
    scheduled_for: datetime.datetime | None
    counts: dict[str, int]
    first_sent: datetime.datetime | None = None
    last_sent: datetime.datetime | None = None

    @property
    def progress(self) -> SendProgress:
        return SendProgress(self.counts)

    def sending_rate(self) -> float | None:
        """Emails a second so far: the pace of its sent rows, or SEND_RATE_LIMIT before any."""
        sent = self.counts["sent"]
        if self.first_sent and self.last_sent and sent >= 2 and self.last_sent > self.first_sent:
            return (sent - 1) / (self.last_sent - self.first_sent).total_seconds()
        return float(settings.SEND_RATE_LIMIT) or None

    def expected_finish(self, now: datetime.datetime) -> datetime.datetime | None:
        """When the last of its readers should have it, at the pace so far (None: unknown)."""
        remaining = self.progress.queued
        if not remaining:
            return self.last_sent
        rate = self.sending_rate()
        if rate is None:
            return None
        return now + datetime.timedelta(seconds=remaining / rate)

    def finish_label(self, now: datetime.datetime) -> str:
        """ "06:04 Asia/Tokyo" (a by-hand send: the newsroom's zone); "unknown" before a pace."""
        finish = self.expected_finish(now)
        if finish is None:
            return "unknown"
        zone = self.time_zone or settings.DIGEST_TIMEZONE
        return f"{finish.astimezone(ZoneInfo(zone)):%H:%M} {zone}"

    @property
    def local_time(self) -> str:
        """ "06:00 Asia/Tokyo": when it was due, in the readers' own clock."""
        if self.scheduled_for is None or not self.time_zone:
            return "by hand"
        local = self.scheduled_for.astimezone(ZoneInfo(self.time_zone))
        return f"{local:%H:%M} {self.time_zone}"
