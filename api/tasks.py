"""The API's Celery tasks: thin, by id, safe to run twice.

deliver_webhook is defined in api.webhooks (it runs on its own queue,
WEBHOOK_QUEUE); it is imported here so that workers find it.
"""

from celery import shared_task
from django.utils import timezone

from api import edition_sends, webhooks
from api.webhooks import deliver_webhook

__all__ = ["deliver_webhook", "emit_edition_sends", "retry_webhooks"]


@shared_task
def retry_webhooks() -> int:
    """Beat, every minute: queue the webhook deliveries whose (re)try has come."""
    return webhooks.retry_due(timezone.now())


@shared_task
def emit_edition_sends() -> int:
    """Beat, every minute: edition.sent for each zone's morning that has finished."""
    return edition_sends.do_emit_edition_sends(timezone.now())
