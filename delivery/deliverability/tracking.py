"""Bounces, spam complaints and deliveries reported by the email service provider.

django-anymail receives the ESP's tracking webhook at /anymail/<esp>/tracking/
(checked against ANYMAIL_WEBHOOK_SECRET and the ESP's own signature; only the
configured ESP's view is mounted, config/urls.py) and sends the `tracking`
signal handled here. Logs name subscribers and deliveries by id, never by
address.

A bounce or a complaint suppresses the reader. An acceptance or a delivery
confirms a send whose answer was lost (an API call that timed out after it
went out): the row stops counting as unconfirmed on the desk.
"""

import logging

from anymail.signals import AnymailTrackingEvent, tracking
from django.conf import settings
from django.dispatch import receiver

from delivery.deliverability import suppression
from delivery.models import BounceEvent, Delivery
from subscriptions.addresses import mask_addresses
from subscriptions.models import Subscriber

logger = logging.getLogger(__name__)

KINDS = {
    "bounced": BounceEvent.Kind.HARD,
    "complained": BounceEvent.Kind.COMPLAINT,
    "unsubscribed": BounceEvent.Kind.UNSUBSCRIBE,
}


# The ESP's word that it took the message on or delivered it (anymail's
# normalised event types: Mailgun's "accepted" is "queued", SES's "Send" "sent").
CONFIRMING = {"queued", "sent", "delivered"}

# anymail's esp_name of each provider EMAIL_ESP may name (the views' class attribute).
ESP_NAMES = {
    "amazon_ses": "Amazon SES",
    "mailgun": "Mailgun",
    "postmark": "Postmark",
    "sendgrid": "SendGrid",
}


def is_soft_bounce(event: AnymailTrackingEvent, esp_name: str) -> bool:
    """Some ESPs report temporary bounces as "bounced" too; those do not suppress."""
    if esp_name == "Postmark":
        return event.esp_event.get("Type") != "HardBounce"
    if esp_name == "Amazon SES":
        return not (event.description or "").startswith("Permanent")
    if esp_name == "SendGrid":
        # "blocked": the receiving server refused it for now (reputation, content).
        return event.esp_event.get("type") == "blocked"
    return False  # Mailgun and others already report temporary failures as "deferred"


@receiver(tracking)
def handle_tracking_event(
    sender: object, event: AnymailTrackingEvent, esp_name: str, **kwargs: object
) -> None:
    expected = ESP_NAMES.get(settings.EMAIL_ESP or "")
    if esp_name != expected:
        # Only the configured provider's view is mounted; should another one
        # ever be reachable (all of anymail.urls), its events are not ours to
        # trust: they skipped our provider's own verification.
        logger.warning("Tracking event from %s ignored: the ESP is %s", esp_name, expected)
        return
    if event.event_type in CONFIRMING:
        confirm(event, esp_name)
        return
    if event.event_type not in KINDS or not event.recipient:
        return
    if event.event_type == "bounced" and is_soft_bounce(event, esp_name):
        logger.info(
            "%s: soft bounce (delivery %s), not suppressed",
            esp_name,
            (event.metadata or {}).get("delivery_id", "unknown"),
        )
        return
    subscriber = Subscriber.objects.filter(email__iexact=event.recipient).first()
    if subscriber is None:
        logger.info("%s %s for an address that is no reader's", esp_name, event.event_type)
        return
    delivery_id = None
    if event.event_type in {"bounced", "complained"}:
        latest = subscriber.deliveries.filter(status=Delivery.Status.SENT).order_by("-sent_at")
        named = (event.metadata or {}).get("delivery_id")
        if named:
            latest = latest.filter(pk=named)
        delivery_id = latest.values_list("pk", flat=True).first()
    # The same action as a bounce over SMTP or from the bounce mailbox.
    suppression.do_record(
        subscriber.pk,
        KINDS[event.event_type],
        source=BounceEvent.Source.ESP,
        delivery_id=delivery_id,
        # A provider's description may quote the address; staff read details.
        detail=mask_addresses(f"{esp_name}: {event.description or event.event_type}"),
        report_id=f"{esp_name}:{event.event_id}" if event.event_id else "",
    )


def confirm(event: AnymailTrackingEvent, esp_name: str) -> int:
    """Clear the unconfirmed note of the delivery the event names, if it is this reader's.

    The delivery id comes from the metadata we sent with the message; the
    recipient must be that delivery's reader, so an event can confirm only
    its own message. Returns how many rows it confirmed (0 or 1).
    """
    named = str((event.metadata or {}).get("delivery_id", ""))
    if not named.isdigit() or not event.recipient:
        return 0
    confirmed = Delivery.objects.filter(
        pk=int(named),
        status=Delivery.Status.SENT,
        last_error=Delivery.UNCONFIRMED_NOTE,
        subscriber__email__iexact=event.recipient,
    ).update(last_error="")
    if confirmed:
        logger.info("%s confirmed delivery %s (%s)", esp_name, named, event.event_type)
    return confirmed
