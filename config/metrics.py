"""/metrics: the service in Prometheus' text format, read from the database at each scrape.

Off unless METRICS_TOKEN is set (the URL answers 404 then); the scraper sends
`Authorization: Bearer <METRICS_TOKEN>`. Never cached: every scrape reads
the present.

Where the figures come from (docs/operations.md, "Metrics and alerts"):

- State is read from the rows at scrape time, each through an index: the
  deliveries queued and being sent, each zone's latest morning, readers and
  memberships by status, Stripe's events by type and status.
- Events the rows keep no cheap trace of (digests sent, failed, deferred and
  unconfirmed by carrier, missed, takeovers, bounces) are counted by the code
  that records them, in the same transaction (delivery.EventCount); a
  scrape reads those few rows.
- Beat's last successful runs are in the shared cache (config.beat), the
  broker's queue length is asked of the broker.

So every Celery worker, on any host, is in the figures without exporting
anything itself: they all write to the one database.
"""

import datetime
import hmac
import logging
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Min
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from kombu.exceptions import OperationalError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from api.models import WebhookDelivery, WebhookEndpoint
from config import beat
from config.celery import app as celery_app
from delivery import counting
from delivery.models import BounceEvent, Delivery, SendSlot
from newsletter.models import Edition
from subscriptions.models import Membership, StripeEvent, Subscriber

logger = logging.getLogger(__name__)

PREFIX = "briefing_"
CARRIERS = ("default", "fallback")
BROKER_TIMEOUT_SECONDS = 2
# Stripe's lag is the median over this many of the latest events received.
LAG_EVENTS = 100
# Morning sends looked at: local dates run up to a day ahead of UTC's.
MORNING_DAYS = 2

# The event counts (delivery.counting) and how each is served.
COUNTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "digests_sent": ("Digests the mail server (or ESP) accepted, by the carrier that took them.",
                     ("carrier",)),
    "digests_failed": ("Digests refused for good (5xx) or given up after 5 attempts, by carrier.",
                       ("carrier",)),
    "digests_deferred": ("Digests handed back to the queue after a 'try later' or a lost "
                         "connection, to be sent again, by carrier.", ("carrier",)),
    "digests_unconfirmed": ("Digests whose connection dropped after the whole message, before "
                            "the server's answer (DIGEST_RESEND_UNCONFIRMED), by carrier.",
                            ("carrier",)),
    "digests_missed": ("Digests recorded missed: not sent within DIGEST_CATCH_UP_HOURS of the "
                       "reader's morning.", ()),
    "delivery_takeovers": ("Deliveries handed on after their sender's lease ran out (the sender "
                           "died or stalled); each may reach its reader twice.", ()),
    "audience_takeovers": ("Audiences whose writer died, taken over and written again.", ()),
    "bounce_events": ("Bounces, complaints and emailed unsubscribes recorded, by kind and "
                      "where they came from.", ("kind", "source")),
}  # fmt: skip


def expected_labels(name: str) -> list[dict[str, str]]:
    """The label sets a count is served with even before its first event (as 0)."""
    if name == "bounce_events":
        return [
            {"kind": kind, "source": source}
            for kind in BounceEvent.Kind.values
            for source in BounceEvent.Source.values
        ]
    if COUNTED[name][1] == ("carrier",):
        return [{"carrier": carrier} for carrier in CARRIERS]
    return [{}]


@dataclass
class Morning:
    """One zone's latest morning send: due when, still sending, and its last email."""

    time_zone: str
    due: datetime.datetime
    sending: bool
    last_sent: datetime.datetime | None

    def seconds(self, now: datetime.datetime) -> float | None:
        """Due to last email; due to now while it is still sending."""
        end = now if self.sending else self.last_sent
        return None if end is None else max((end - self.due).total_seconds(), 0.0)


# The last email of each finished morning, by slot: it is final once the
# morning has finished (a staff resend makes it sending again, and it is
# read anew), and reading it is a pass over that morning's deliveries.
_finished: dict[tuple[object, ...], datetime.datetime | None] = {}
FINISHED_KEPT = 10_000


def latest_mornings(now: datetime.datetime) -> list[Morning]:
    """Each zone's latest morning send of the last days that had readers, by zone."""
    since = now.astimezone(datetime.UTC).date() - datetime.timedelta(days=MORNING_DAYS)
    slots = (
        SendSlot.objects.filter(
            date__gte=since, outcome__in=[SendSlot.Outcome.WRITING, SendSlot.Outcome.QUEUED]
        )
        .exclude(outcome=SendSlot.Outcome.QUEUED, readers=0)
        .order_by("time_zone", "-scheduled_for")
    )
    latest: dict[str, SendSlot] = {}
    for slot in slots:
        latest.setdefault(slot.time_zone, slot)
    editions = dict(
        Edition.objects.filter(date__in={slot.date for slot in latest.values()}).values_list(
            "date", "pk"
        )
    )
    if len(_finished) > FINISHED_KEPT:
        _finished.clear()
    mornings = []
    for zone, slot in sorted(latest.items()):
        edition_id = editions.get(slot.date)
        if edition_id is None:
            continue  # the edition was deleted, its deliveries with it
        rows = Delivery.objects.filter(
            edition_id=edition_id, scheduled_for=slot.scheduled_for, time_zone=zone
        )
        key = (slot.pk, slot.date, zone, slot.send_time)
        sending = (
            slot.outcome == SendSlot.Outcome.WRITING
            or rows.filter(status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING]).exists()
        )
        if sending:
            _finished.pop(key, None)
            last_sent = None
        elif key in _finished:
            last_sent = _finished[key]
        else:
            last_sent = _finished[key] = rows.filter(
                status__in=[Delivery.Status.SENT, Delivery.Status.BOUNCED]
            ).aggregate(last=Max("sent_at"))["last"]
        mornings.append(Morning(zone, slot.scheduled_for, sending, last_sent))
    return mornings


def broker_queue_length(queue: str) -> int | None:
    """Messages waiting in the broker's queue (not those a worker holds); None if unreachable.

    Redis: LLEN of the queue's lists; the embedded broker: its files.
    """
    with celery_app.connection_for_read() as connection:
        unreachable: tuple[type[BaseException], ...] = (
            OperationalError,
            OSError,
            *connection.connection_errors,
        )
        missing: tuple[type[BaseException], ...] = tuple(connection.channel_errors)
        try:
            connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
            # Kombu's virtual transports (Redis, files) answer a passive declare with the size.
            channel: Any = connection.default_channel
            return int(channel.queue_declare(queue=queue, passive=True)[1])
        except missing:
            # Redis keeps no empty queue: never declared, or emptied.
            return 0
        except unreachable as error:
            logger.warning("metrics: broker unavailable: %s", error)
            return None


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, documentation, value=value)


def labelled_gauge(
    name: str, documentation: str, label: str, values: Iterable[tuple[str, float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(PREFIX + name, documentation, labels=[label])
    for label_value, value in values:
        family.add_metric([label_value], value)
    return family


def counts_by(rows: Iterable[tuple[str, int]], choices: Iterable[str]) -> list[tuple[str, float]]:
    """Each of `choices` (0 when absent), then any other value the rows hold."""
    found = {key: float(count) for key, count in rows}
    return [(choice, found.pop(choice, 0.0)) for choice in choices] + sorted(found.items())


class BriefingCollector(Collector):
    """Every series of /metrics, read at `now` (docs/operations.md lists them)."""

    def __init__(self, now: datetime.datetime) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        yield from self.events()
        yield from self.queue()
        yield from self.mornings()
        yield from self.readers()
        yield from self.stripe()
        yield from self.webhooks()
        yield from self.beat()
        yield from self.thresholds()
        yield gauge(
            "metrics_scrape_duration_seconds",
            "How long this scrape took to read the figures.",
            time.monotonic() - started,
        )

    def events(self) -> Iterator[Metric]:
        stored = counting.counts(list(COUNTED))
        for name, (documentation, label_names) in COUNTED.items():
            family = CounterMetricFamily(PREFIX + name, documentation, labels=list(label_names))
            values = {counting.encode_labels(labels): 0 for labels in expected_labels(name)}
            values.update(stored[name])
            for key, value in sorted(values.items()):
                labels = counting.decode_labels(key)
                family.add_metric([labels[label] for label in label_names], value)
            yield family

    def queue(self) -> Iterator[Metric]:
        waiting = dict(
            Delivery.objects.filter(status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING])
            .values_list("status")
            .annotate(count=Count("pk"))
            .order_by()
        )
        yield gauge(
            "deliveries_queued",
            "Digests waiting to be sent (queued deliveries).",
            waiting.get(Delivery.Status.QUEUED, 0),
        )
        yield gauge(
            "deliveries_sending",
            "Digests claimed by a sender right now.",
            waiting.get(Delivery.Status.SENDING, 0),
        )
        oldest = Delivery.objects.filter(
            status=Delivery.Status.QUEUED, scheduled_for__isnull=False
        ).aggregate(oldest=Min("scheduled_for"))["oldest"]
        age = max((self.now - oldest).total_seconds(), 0.0) if oldest else 0.0
        yield gauge(
            "queue_oldest_age_seconds",
            "Seconds since the send moment of the oldest queued digest (0: none queued).",
            age,
        )
        queue = celery_app.conf.task_default_queue
        length = broker_queue_length(queue)
        if length is not None:
            yield labelled_gauge(
                "broker_queue_messages",
                "Tasks waiting in the Celery broker's queue (not those a worker holds).",
                "queue",
                [(queue, length)],
            )

    def mornings(self) -> Iterator[Metric]:
        mornings = latest_mornings(self.now)
        seconds = [
            (morning.time_zone, value)
            for morning in mornings
            if (value := morning.seconds(self.now)) is not None
        ]
        yield labelled_gauge(
            "morning_send_seconds",
            "Each zone's latest morning send: from its send moment to its last digest sent, "
            "or to now while it is still sending.",
            "time_zone",
            seconds,
        )
        yield labelled_gauge(
            "morning_sending",
            "1 while the zone's latest morning still has digests queued or being sent.",
            "time_zone",
            [(morning.time_zone, float(morning.sending)) for morning in mornings],
        )

    def readers(self) -> Iterator[Metric]:
        yield labelled_gauge(
            "readers",
            "Readers by the state of their address.",
            "email_status",
            counts_by(
                Subscriber.objects.values_list("email_status")
                .annotate(count=Count("pk"))
                .order_by(),
                Subscriber.EmailStatus.values,
            ),
        )
        yield labelled_gauge(
            "memberships",
            "Memberships by their status as mirrored from Stripe.",
            "status",
            counts_by(
                Membership.objects.values_list("status").annotate(count=Count("pk")).order_by(),
                Membership.Status.values,
            ),
        )

    def stripe(self) -> Iterator[Metric]:
        events = GaugeMetricFamily(
            PREFIX + "stripe_webhook_events",
            "Stripe webhook events received and kept, by type and status.",
            labels=["type", "status"],
        )
        rows = (
            StripeEvent.objects.values_list("type", "status")
            .annotate(count=Count("pk"))
            .order_by("type", "status")
        )
        for event_type, status, count in rows:
            events.add_metric([event_type, status], count)
        yield events
        latest = list(
            StripeEvent.objects.order_by("-pk").values_list("stripe_created_at", "received_at")[
                :LAG_EVENTS
            ]
        )
        lags = [
            max((received - created).total_seconds(), 0.0)
            for created, received in latest
            if created is not None
        ]
        if lags:
            yield gauge(
                "stripe_webhook_lag_seconds",
                f"From Stripe creating an event to our receiving it: the median of the "
                f"latest {LAG_EVENTS} events.",
                statistics.median(lags),
            )
        if latest:
            yield gauge(
                "stripe_webhook_last_received_timestamp_seconds",
                "When the latest Stripe event was received (Unix time).",
                latest[0][1].timestamp(),
            )

    def webhooks(self) -> Iterator[Metric]:
        yield labelled_gauge(
            "webhook_deliveries",
            "Outgoing webhook deliveries (one event to one endpoint), by status.",
            "status",
            counts_by(
                WebhookDelivery.objects.values_list("status")
                .annotate(count=Count("pk"))
                .order_by(),
                WebhookDelivery.Status.values,
            ),
        )
        oldest = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).aggregate(
            oldest=Min("created_at")
        )["oldest"]
        yield gauge(
            "webhook_oldest_pending_seconds",
            "Age of the oldest webhook delivery not yet delivered nor given up; 0 when none.",
            max((self.now - oldest).total_seconds(), 0.0) if oldest else 0.0,
        )
        yield gauge(
            "webhook_endpoints_disabled",
            "Webhook endpoints disabled after days of failed deliveries.",
            WebhookEndpoint.objects.filter(enabled=False, disabled_at__isnull=False).count(),
        )

    def beat(self) -> Iterator[Metric]:
        try:
            runs = beat.last_successes()
        except beat.CACHE_ERRORS as error:
            logger.warning("metrics: cache unavailable, beat's runs not read: %s", error)
            return
        yield labelled_gauge(
            "beat_task_last_success_timestamp_seconds",
            "When each of beat's periodic tasks last succeeded (Unix time).",
            "task",
            sorted(runs.items()),
        )

    def thresholds(self) -> Iterator[Metric]:
        # Served so that the alert rules follow the configuration.
        yield gauge(
            "send_window_seconds",
            "DIGEST_SEND_SLOT: within this long of a reader's send moment their digest goes out.",
            settings.DIGEST_SEND_SLOT * 60,
        )
        yield gauge(
            "send_health_hard_bounce_threshold_percent",
            "HEALTH_HARD_BOUNCE_PERCENT: the hard-bounce rate past which staff are alerted.",
            settings.HEALTH_HARD_BOUNCE_PERCENT,
        )
        yield gauge(
            "send_health_complaint_threshold_percent",
            "HEALTH_COMPLAINT_PERCENT: the complaint rate past which staff are alerted.",
            settings.HEALTH_COMPLAINT_PERCENT,
        )


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def render(now: datetime.datetime, accept: str = "") -> tuple[bytes, str]:
    """The metrics at `now` in the format `accept` asks for (Prometheus' text by default)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BriefingCollector(now))
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    expected = settings.METRICS_TOKEN
    if not expected:
        raise Http404("Metrics are off: METRICS_TOKEN is not set.")
    token = bearer_token(request)
    if token is None:
        response = HttpResponse(
            "A bearer token is required.", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # Constant time: how much of a guess matched must not show in the answer's timing.
    if not hmac.compare_digest(token.encode(), expected.encode()):
        return HttpResponse("Wrong token.", status=403, content_type="text/plain")
    body, content_type = render(timezone.now(), request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
