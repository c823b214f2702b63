"""Applying a bounce, complaint or mailto: unsubscribe to its reader: the one way each is applied.

Whether it came as an SMTP answer at send time, a report in the bounce
mailbox or an event of the ESP's webhook, do_record records it once and
suppresses the address as it says.
"""

import datetime
import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from delivery import counting
from delivery.deliverability.answers import failure_kind, smtp_answer
from delivery.deliverability.health import check_health
from delivery.models import BounceEvent, Delivery
from subscriptions.actions.reader_emails import queue_email
from subscriptions.addresses import mask_addresses
from subscriptions.models import ReaderEmail, Subscriber

logger = logging.getLogger(__name__)


Kind = BounceEvent.Kind
Source = BounceEvent.Source

# How far back a report without VERP is taken to be about the latest digest.
ATTRIBUTION_DAYS = 3
SUPPRESSES = {
    Kind.HARD: Subscriber.EmailStatus.BOUNCED,
    Kind.COMPLAINT: Subscriber.EmailStatus.COMPLAINED,
    Kind.UNSUBSCRIBE: Subscriber.EmailStatus.UNSUBSCRIBED,
}


@transaction.atomic
def do_record(
    subscriber_id: int,
    kind: str,
    *,
    source: str,
    delivery_id: int | None = None,
    detail: str = "",
    report_id: str = "",
    now: datetime.datetime | None = None,
) -> BounceEvent | None:
    """Record one result about a reader and apply it; None if it changes nothing.

    The address is suppressed at once for a hard bounce or a complaint, and
    for the BOUNCE_SOFT_LIMIT-th soft bounce within BOUNCE_SOFT_DAYS. An
    unsubscribe changes only a deliverable address (a bounced one stays
    bounced), and the reader is told by email, with the way back. The
    delivery a hard bounce is about is marked bounced. The edition's send
    health is checked once the transaction commits.

    None, and nothing written, for a report recorded already, and for a
    complaint from a reader whose complaint is counted already: a reader
    weighs once in send health however many reports they file.
    """
    now = now or timezone.now()
    subscriber = Subscriber.objects.select_for_update().filter(pk=subscriber_id).first()
    if subscriber is None:
        return None
    if kind == Kind.COMPLAINT and subscriber.email_status == Subscriber.EmailStatus.COMPLAINED:
        logger.info("Complaint from subscriber %s, who complained before: ignored", subscriber.pk)
        return None
    if delivery_id is not None:
        delivery = Delivery.objects.filter(pk=delivery_id, subscriber_id=subscriber_id).first()
    elif kind != Kind.UNSUBSCRIBE:
        # A report that names the address only (no VERP) is about the latest
        # digest the reader was sent: it counts in that edition's health.
        delivery = (
            subscriber.deliveries.filter(
                status=Delivery.Status.SENT,
                sent_at__gte=now - datetime.timedelta(days=ATTRIBUTION_DAYS),
            )
            .order_by("-sent_at")
            .first()
        )
    else:
        delivery = None
    try:
        with transaction.atomic():
            event = BounceEvent.objects.create(
                kind=kind,
                source=source,
                subscriber=subscriber,
                delivery=delivery,
                edition_id=delivery.edition_id if delivery else None,
                # Editors read these; a report or refusal quotes the address.
                detail=mask_addresses(detail)[:2000],
                report_id=report_id[:255],
                created_at=now,
            )
    except IntegrityError:
        return None  # the same report read again, or this edition's complaint filed again
    was_active = subscriber.email_status == Subscriber.EmailStatus.ACTIVE
    status = SUPPRESSES.get(Kind(kind))
    if kind == Kind.SOFT:
        since = now - datetime.timedelta(days=settings.BOUNCE_SOFT_DAYS)
        soft = subscriber.bounce_events.filter(kind=Kind.SOFT, created_at__gte=since).count()
        if soft >= settings.BOUNCE_SOFT_LIMIT:
            status = Subscriber.EmailStatus.BOUNCED
    if status == Subscriber.EmailStatus.UNSUBSCRIBED:
        if was_active:
            subscriber.set_email_status(status)
            # Whoever asked, the reader hears of it and can undo it in one click.
            queue_email(subscriber, ReaderEmail.Kind.UNSUBSCRIBED, f"bounce_event:{event.pk}")
    elif status is not None and subscriber.email_status != Subscriber.EmailStatus.COMPLAINED:
        # A complaint is the strongest word a reader has; a bounce never replaces it.
        subscriber.set_email_status(status)
    if delivery is not None and kind == Kind.HARD:
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.BOUNCED,
            last_error=f"Bounced: {mask_addresses(detail)}"[:1000],
        )
    logger.info(
        "%s from %s: subscriber %s (delivery %s), now %s",
        Kind(kind).label,
        Source(source).label,
        subscriber.pk,
        delivery.pk if delivery else "unknown",
        subscriber.email_status,
    )
    counting.add("bounce_events", 1, kind=kind, source=source)
    if event.edition_id is not None:
        edition_id = event.edition_id
        transaction.on_commit(lambda: check_health(edition_id, now))
    return event


def record_refusals(refusals: Iterable[tuple[Delivery, Exception]]) -> None:
    """The 5xx answers of a batch: each a hard or soft bounce of its reader."""
    for delivery, error in refusals:
        code, text = smtp_answer(delivery.subscriber.email, error)
        do_record(
            delivery.subscriber_id,
            failure_kind(code, text),
            source=Source.SMTP,
            delivery_id=delivery.pk,
            detail=f"{code} {text}".strip(),
        )
