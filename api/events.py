"""Webhook events: recorded in the transaction of the change they tell of, sent after it commits.

An event is a row (WebhookEvent) and one delivery per endpoint that wants
its type, written beside the change itself: a change that rolls back
leaves no event, and one that commits has its event even if the process
dies a moment later (beat's sweep, api.tasks.retry_webhooks, sends what
no task picked up). The first attempt is queued on commit.
"""

import datetime
import uuid
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from api import webhooks
from api.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

API_VERSION = "v1"


class EventType:
    READER_CREATED = "reader.created"
    READER_TRIAL_STARTED = "reader.trial_started"
    READER_PAID = "reader.paid"
    READER_PAST_DUE = "reader.past_due"
    READER_CANCELED = "reader.canceled"
    READER_UNSUBSCRIBED = "reader.unsubscribed"
    READER_RESUBSCRIBED = "reader.resubscribed"
    READER_UPDATED = "reader.updated"
    ARTICLE_PUBLISHED = "article.published"
    EDITION_SENT = "edition.sent"


EVENT_TYPES = [
    (EventType.READER_CREATED, "A reader was created (signup confirmed, import, API)"),
    (EventType.READER_TRIAL_STARTED, "A reader's free trial started"),
    (EventType.READER_PAID, "A reader's first successful charge"),
    (EventType.READER_PAST_DUE, "A reader's payment failed (past due)"),
    (EventType.READER_CANCELED, "A reader's subscription ended"),
    (EventType.READER_UNSUBSCRIBED, "A reader unsubscribed from the emails"),
    (EventType.READER_RESUBSCRIBED, "A reader who had unsubscribed came back"),
    (EventType.READER_UPDATED, "A reader's name, address, zone, time or pause changed"),
    (EventType.ARTICLE_PUBLISHED, "An article was published"),
    (EventType.EDITION_SENT, "An edition's morning send in one zone finished"),
]
# Events carrying a reader's data: only staff who may see readers choose them.
READER_EVENTS = [name for name, _ in EVENT_TYPES if name.startswith("reader.")]


def emit(
    event_type: str,
    data: dict[str, Any] | Callable[[], dict[str, Any]],
    *,
    key: str | None = None,
    ordering_key: str = "",
    now: datetime.datetime | None = None,
) -> WebhookEvent | None:
    """Record an event for every enabled endpoint that wants it; None if none does, or `key` was.

    `key` makes the event happen once (a reader's first payment); without
    one every call is an event of its own. `data` may be a function that
    makes it, called only when an endpoint wants the event: a reader's
    payload costs a serializer (and a query) on every save otherwise.
    """
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(enabled=True)
        if event_type in endpoint.events
    ]
    if not endpoints:
        return None
    if callable(data):
        data = data()
    now = now or timezone.now()
    public_id = uuid.uuid4()
    payload = {
        "id": f"evt_{public_id.hex}",
        "type": event_type,
        "created": now.astimezone(datetime.UTC).isoformat(),
        "api_version": API_VERSION,
        "data": data,
    }
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                public_id=public_id,
                type=event_type,
                key=key or f"{event_type}:{public_id.hex}",
                ordering_key=ordering_key,
                payload=payload,
                created_at=now,
            )
    except IntegrityError:
        return None  # this event happened already
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now, created_at=now)
            for endpoint in endpoints
        ]
    )
    ids = [delivery.pk for delivery in deliveries]

    transaction.on_commit(lambda: webhooks.queue_deliveries(ids))
    return event
