"""edition.sent: one event per zone's morning send, once its last digest has been handed on.

A zone's morning is a send slot (delivery.SendSlot: a local date, a zone
and a delivery time); it is finished when none of its deliveries is queued
or being sent. Beat looks each minute at the slots of the last two days
(api.tasks.emit_edition_sends), and each finished one becomes an event
once (its key). Nothing in the send itself waits for this.
"""

import datetime
from typing import Any

from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from api.events import EventType, emit
from api.models import WebhookEndpoint, WebhookEvent
from delivery.models import Delivery, SendSlot
from newsletter.models import Edition

LOOK_BACK = datetime.timedelta(days=2)
UNFINISHED = (Delivery.Status.QUEUED, Delivery.Status.SENDING)


def slot_key(slot: SendSlot) -> str:
    return f"{EventType.EDITION_SENT}:{slot.date}:{slot.time_zone}:{slot.send_time:%H:%M}"


def wanted() -> bool:
    return any(
        EventType.EDITION_SENT in endpoint.events
        for endpoint in WebhookEndpoint.objects.filter(enabled=True)
    )


def zone_report(slot: SendSlot) -> dict[str, Any] | None:
    deliveries = Delivery.objects.filter(scheduled_for=slot.scheduled_for, time_zone=slot.time_zone)
    if deliveries.filter(status__in=UNFINISHED).exists():
        return None
    totals = deliveries.aggregate(
        edition_id=Max("edition_id"),
        deliveries=Count("pk"),
        delivered=Count("pk", filter=Q(status=Delivery.Status.SENT)),
        failed=Count("pk", filter=Q(status=Delivery.Status.FAILED)),
        bounced=Count("pk", filter=Q(status=Delivery.Status.BOUNCED)),
        missed=Count("pk", filter=Q(status=Delivery.Status.MISSED)),
        first_sent=Min("sent_at"),
        last_sent=Max("sent_at"),
    )
    edition = Edition.objects.filter(pk=totals.pop("edition_id")).first()
    if edition is None:
        return None  # nothing was sent in this slot
    last_sent = totals.pop("last_sent")
    totals.pop("first_sent")
    return {
        "edition": {"date": edition.date.isoformat(), "subject": edition.subject},
        "time_zone": slot.time_zone,
        "send_time": f"{slot.send_time:%H:%M}",
        "scheduled_for": slot.scheduled_for.isoformat(),
        "finished_at": last_sent.isoformat() if last_sent else None,
        "duration_seconds": (last_sent - slot.scheduled_for).total_seconds() if last_sent else None,
        **totals,
    }


def do_emit_edition_sends(now: datetime.datetime | None = None) -> int:
    """An edition.sent event for each zone's finished morning not told yet; return how many."""
    now = now or timezone.now()
    if not wanted():
        return 0
    slots = list(
        SendSlot.objects.filter(
            outcome=SendSlot.Outcome.QUEUED,
            scheduled_for__gte=now - LOOK_BACK,
            scheduled_for__lte=now,
        )
    )
    told = set(
        WebhookEvent.objects.filter(key__in=[slot_key(slot) for slot in slots]).values_list(
            "key", flat=True
        )
    )
    emitted = 0
    for slot in slots:
        if slot_key(slot) in told:
            continue
        report = zone_report(slot)
        if report is not None and emit(EventType.EDITION_SENT, report, key=slot_key(slot), now=now):
            emitted += 1
    return emitted
