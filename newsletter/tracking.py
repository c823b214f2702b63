"""Bounces and spam complaints reported by the email service provider.

django-anymail receives the ESP's tracking webhook at /anymail/<esp>/tracking/
(checked against ANYMAIL_WEBHOOK_SECRET and the ESP's own signature) and
sends the `tracking` signal handled here.
"""

import logging

from anymail.signals import AnymailTrackingEvent, tracking
from django.db import transaction
from django.dispatch import receiver

from newsletter.models import Delivery
from subscriptions.models import Subscriber

logger = logging.getLogger(__name__)

SUPPRESSING_EVENTS = {
    "bounced": Subscriber.EmailStatus.BOUNCED,
    "complained": Subscriber.EmailStatus.COMPLAINED,
    "unsubscribed": Subscriber.EmailStatus.UNSUBSCRIBED,
}


def is_soft_bounce(event: AnymailTrackingEvent, esp_name: str) -> bool:
    """Some ESPs report temporary bounces as "bounced" too; those do not suppress."""
    if esp_name == "Postmark":
        return event.esp_event.get("Type") != "HardBounce"
    if esp_name == "Amazon SES":
        return not (event.description or "").startswith("Permanent")
    return False  # Mailgun and others already report temporary failures as "deferred"


@receiver(tracking)
def handle_tracking_event(
    sender: object, event: AnymailTrackingEvent, esp_name: str, **kwargs: object
) -> None:
    status = SUPPRESSING_EVENTS.get(event.event_type)
    if status is None or not event.recipient:
        return
    if event.event_type == "bounced" and is_soft_bounce(event, esp_name):
        logger.info("%s: soft bounce for %s, not suppressed", esp_name, event.recipient)
        return
    with transaction.atomic():
        subscriber = (
            Subscriber.objects.select_for_update().filter(email__iexact=event.recipient).first()
        )
        if subscriber is None:
            logger.info("%s %s for unknown address %s", esp_name, event.event_type, event.recipient)
            return
        subscriber.set_email_status(status)
        if event.event_type == "bounced":
            latest = subscriber.deliveries.filter(status=Delivery.Status.SENT).order_by("-sent_at")
            delivery_id = (event.metadata or {}).get("delivery_id")
            if delivery_id:
                latest = latest.filter(pk=delivery_id)
            delivery = latest.first()
            if delivery is not None:
                Delivery.objects.filter(pk=delivery.pk).update(
                    status=Delivery.Status.BOUNCED,
                    last_error=f"{esp_name}: {event.description or event.event_type}"[:1000],
                )
    logger.info("%s: %s is now %s", esp_name, subscriber.email, status.label)
