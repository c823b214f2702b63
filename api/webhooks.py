"""Delivering webhook events: signed like Stripe's, retried with backoff, in order per reader.

Each delivery is a POST of the event's JSON with

    Briefing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
    Briefing-Event-Id: evt_…   (the same on every attempt: deduplicate on it)
    Briefing-Event-Type: reader.created

A 2xx answer delivers it; anything else (an error, a timeout, a refused
address) is retried after 30 s, 1, 2, 4 … minutes, doubling up to six
hours between tries, the last one when WEBHOOK_RETRY_DAYS have passed,
then given up (staff can
replay it from the admin). Deliveries with the same ordering key (one
reader's events) reach an endpoint one at a time, in the order they
happened: a later one waits until the earlier is delivered or given up.
An endpoint that has failed every attempt for WEBHOOK_DISABLE_AFTER_DAYS
is disabled, and staff are emailed.

The database decides, never the broker: a delivery is claimed by a
conditional update before its request (two workers, or a task run twice,
never send it twice at once), and beat's sweep (retry_due) queues what is
due, so a lost task or a flushed Redis only delays a delivery.
"""

import datetime
import email.utils
import hashlib
import hmac
import json
import logging
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import urllib3
from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone

from api import outbound
from api.models import WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Briefing-Signature"
SIGNATURE_VERSION = "v1"
FIRST_RETRY = datetime.timedelta(seconds=30)
LONGEST_WAIT = datetime.timedelta(hours=6)
# A claimed delivery is someone's for this long: more than a request's
# timeouts and the task's time limit, so a worker that died lets go of it.
CLAIM_FOR = datetime.timedelta(minutes=2)
# Sweep batch: each minute at most this many due deliveries are queued.
SWEEP_LIMIT = 500
USER_AGENT = "MorningBriefing-Webhooks/1"

Status = WebhookDelivery.Status


def body_of(payload: dict) -> bytes:
    """The exact bytes sent, the same on every attempt (the signature covers them)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},{SIGNATURE_VERSION}={digest.hexdigest()}"


def backoff(attempts: int) -> datetime.timedelta:
    """The wait after the `attempts`-th failure: 30 s, 1 min, 2 min … at most six hours."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_WAIT)


def queue_deliveries(ids: Iterable[int]) -> None:
    for delivery_id in ids:
        deliver_webhook.delay(delivery_id)


def _earlier_in_order() -> Exists:
    """An earlier delivery of the same ordering key to the same endpoint, not finished."""
    return Exists(
        WebhookDelivery.objects.filter(
            endpoint=OuterRef("endpoint"),
            event__ordering_key=OuterRef("event__ordering_key"),
            status=Status.PENDING,
            pk__lt=OuterRef("pk"),
        ).exclude(event__ordering_key="")
    )


def claim(delivery_id: int, now: datetime.datetime) -> WebhookDelivery | None:
    """Take the delivery if it is due, its endpoint enabled and nothing before it waits."""
    ready = (
        WebhookDelivery.objects.due(now)
        .filter(pk=delivery_id, endpoint__enabled=True)
        .exclude(_earlier_in_order())
    )
    if not ready.update(next_attempt_at=now + CLAIM_FOR):
        return None
    return WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)


def attempt(delivery_id: int, now: datetime.datetime | None = None) -> str | None:
    """One try of one delivery; its new status, or None if it was not ours to try now."""
    now = now or timezone.now()
    delivery = claim(delivery_id, now)
    if delivery is None:
        return None
    endpoint, event = delivery.endpoint, delivery.event
    body = body_of(event.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(endpoint.secret, int(now.timestamp()), body),
        "Briefing-Event-Id": event.event_id,
        "Briefing-Event-Type": event.type,
    }
    code: int | None = None
    try:
        answer = outbound.request("POST", endpoint.url, body=body, headers=headers, max_bytes=1024)
        code = answer.status
        error = "" if 200 <= code < 300 else f"HTTP {code}"
    except outbound.RefusedAddress as refused:
        error = str(refused)
    except (urllib3.exceptions.HTTPError, OSError) as failure:
        error = f"{type(failure).__name__}: {failure}"[:300]
    return record(delivery, now, code, error)


@transaction.atomic
def record(delivery: WebhookDelivery, now: datetime.datetime, code: int | None, error: str) -> str:
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.response_code = code
    delivery.last_error = error[:300]
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
    if not error:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
            Status.DELIVERED,
            now,
            None,
        )
        if endpoint.failing_since is not None:
            endpoint.failing_since = None
            endpoint.save(update_fields=["failing_since"])
    else:
        give_up_at = delivery.created_at + datetime.timedelta(days=settings.WEBHOOK_RETRY_DAYS)
        if now >= give_up_at:
            delivery.status, delivery.next_attempt_at = Status.FAILED, None
        else:
            # The last try falls on the window's end, not past it.
            delivery.next_attempt_at = min(now + backoff(delivery.attempts), give_up_at)
        _note_failure(endpoint, now)
        logger.warning(
            "Webhook delivery %s to endpoint %s failed (attempt %s): %s",
            delivery.pk,
            endpoint.pk,
            delivery.attempts,
            error,
        )
    delivery.save()
    if delivery.status != Status.PENDING and delivery.event.ordering_key:
        # The next in order may go now (it was held behind this one).
        following = list(
            WebhookDelivery.objects.filter(
                endpoint_id=delivery.endpoint_id,
                event__ordering_key=delivery.event.ordering_key,
                status=Status.PENDING,
                pk__gt=delivery.pk,
            )
            .order_by("pk")
            .values_list("pk", flat=True)[:1]
        )
        transaction.on_commit(lambda: queue_deliveries(following))
    return delivery.status


def _note_failure(endpoint: WebhookEndpoint, now: datetime.datetime) -> None:
    if endpoint.failing_since is None:
        endpoint.failing_since = now
        endpoint.save(update_fields=["failing_since"])
        return
    limit = datetime.timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS)
    if endpoint.enabled and now - endpoint.failing_since >= limit:
        endpoint.enabled, endpoint.disabled_at = False, now
        endpoint.save(update_fields=["enabled", "disabled_at"])
        logger.error(
            "Webhook endpoint %s disabled after failing since %s",
            endpoint.pk,
            endpoint.failing_since,
        )
        transaction.on_commit(lambda: email_staff_disabled(endpoint.pk))


def email_staff_disabled(endpoint_id: int) -> None:
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    users = [
        user
        for user in get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
        if user.has_perm("api.change_webhookendpoint")
    ]
    if not users:
        logger.error("Webhook endpoint %s disabled, and no staff address to tell", endpoint.pk)
        return
    page = reverse("admin:api_webhookendpoint_change", args=[endpoint.pk])
    zone = settings.DIGEST_TIMEZONE
    since = (endpoint.failing_since or timezone.now()).astimezone(ZoneInfo(zone))
    send_mail(
        subject=f"Webhook endpoint disabled: {endpoint.url}",
        message=(
            f"Every delivery to {endpoint.url} has failed since "
            f"{since:%Y-%m-%d %H:%M} ({zone}), so the endpoint is disabled: no more "
            "events are sent to it.\n\nFix the endpoint, enable it again and replay the "
            f"failed deliveries in the admin:\n{settings.SITE_URL}{page}\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[
            email.utils.formataddr((user.get_full_name() or user.get_username(), user.email))
            for user in users
        ],
    )


def retry_due(now: datetime.datetime | None = None) -> int:
    """Queue every delivery that is due and first in its order; return how many."""
    now = now or timezone.now()
    ids = list(
        WebhookDelivery.objects.due(now)
        .filter(endpoint__enabled=True)
        .exclude(_earlier_in_order())
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    queue_deliveries(ids)
    return len(ids)


@transaction.atomic
def do_replay(delivery_ids: Iterable[int], now: datetime.datetime | None = None) -> int:
    """Send these deliveries again from the start (a fresh retry window); return how many."""
    now = now or timezone.now()
    ids = list(
        WebhookDelivery.objects.filter(pk__in=list(delivery_ids))
        .select_for_update()
        .values_list("pk", flat=True)
    )
    WebhookDelivery.objects.filter(pk__in=ids).update(
        status=Status.PENDING,
        next_attempt_at=now,
        created_at=now,
        attempts=0,
        last_error="",
        response_code=None,
        delivered_at=None,
    )
    transaction.on_commit(lambda: queue_deliveries(ids))
    return len(ids)


@shared_task(
    name="api.tasks.deliver_webhook",
    soft_time_limit=60,
    time_limit=90,
    ignore_result=True,
)
def deliver_webhook(delivery_id: int) -> str | None:
    """One attempt at one delivery (api.webhooks.attempt); safe to run twice."""
    return attempt(delivery_id)
