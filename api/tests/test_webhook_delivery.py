"""Delivering webhooks: signed, retried with backoff for days, in order per reader, replayable,
disabled after days of failure, with timeouts, and never to a private address unless allowed."""

import datetime
import hashlib
import hmac
import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from api import outbound, webhooks
from api.models import WebhookDelivery, WebhookEndpoint
from api.tests.conftest import READERS_PERMS, make_endpoint, make_user
from subscriptions.actions.account import do_set_email_status
from subscriptions.actions.staff import do_grant_complimentary
from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db

Status = WebhookDelivery.Status


@pytest.fixture
def endpoint(receiver):
    return make_endpoint(receiver.url, ["reader.created"])


def emit_reader(email: str = "ada@example.com"):
    """A reader.created event, its delivery left for the test to attempt."""
    return do_grant_complimentary(email=email)


def attempt_all(now=None) -> list[str | None]:
    return [
        webhooks.attempt(pk, now)
        for pk in WebhookDelivery.objects.order_by("pk").values_list("pk", flat=True)
    ]


def test_a_delivery_is_signed_over_its_raw_body_with_a_timestamp(receiver, endpoint):
    reader = emit_reader()

    assert attempt_all() == [Status.DELIVERED]

    [received] = receiver.received
    header = received.headers["Briefing-Signature"]
    parts = dict(item.split("=", 1) for item in header.split(","))
    assert int(parts["t"]) == int(timezone.now().timestamp())
    expected = hmac.new(
        endpoint.secret.encode(), f"{parts['t']}.".encode() + received.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    event = json.loads(received.body)
    assert received.headers["Briefing-Event-Id"] == event["id"]
    assert received.headers["Briefing-Event-Type"] == event["type"] == "reader.created"
    assert event["data"]["reader"]["id"] == reader.pk
    assert received.headers["Content-Type"] == "application/json"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.attempts, delivery.response_code, delivery.last_error) == (1, 200, "")


def test_retries_back_off_and_each_attempt_carries_the_same_event(receiver, endpoint, clock):
    receiver.statuses = [500, 503, 200]
    emit_reader()
    delivery = WebhookDelivery.objects.get()

    waits = []
    for _ in range(3):
        before = timezone.now()
        webhooks.attempt(delivery.pk)
        delivery.refresh_from_db()
        if delivery.next_attempt_at:
            waits.append((delivery.next_attempt_at - before).total_seconds())
            # Not before its time: the sweep leaves it alone.
            assert webhooks.attempt(delivery.pk) is None
            clock.move_to(delivery.next_attempt_at)

    assert waits == [30.0, 60.0]
    assert (delivery.status, delivery.attempts, delivery.response_code) == (
        Status.DELIVERED,
        3,
        200,
    )
    ids = {item.headers["Briefing-Event-Id"] for item in receiver.received}
    assert len(receiver.received) == 3 and len(ids) == 1  # one event id to deduplicate on


def test_backoff_doubles_up_to_six_hours():
    assert [webhooks.backoff(n).total_seconds() for n in (1, 2, 3, 10, 20)] == [
        30, 60, 120, 15360, 21600,
    ]  # fmt: skip


def test_given_up_after_three_days_and_the_endpoint_disabled_with_an_email(
    receiver, endpoint, clock, mailoutbox, django_capture_on_commit_callbacks
):
    watcher = make_user("ops", READERS_PERMS)
    watcher.user_permissions.add(Permission.objects.get(codename="change_webhookendpoint"))
    receiver.statuses = [500] * 100
    emit_reader()
    delivery = WebhookDelivery.objects.get()
    started = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        while delivery.status == Status.PENDING:
            clock.move_to(delivery.next_attempt_at)
            webhooks.attempt(delivery.pk)
            delivery.refresh_from_db()

    assert delivery.status == Status.FAILED
    assert timezone.now() - started == datetime.timedelta(days=3)  # the last try, on time
    assert delivery.attempts == len(receiver.received) == 22
    endpoint.refresh_from_db()
    assert endpoint.failing_since == started
    [mail] = mailoutbox
    assert mail.to == ["ops <ops@example.com>"]
    assert endpoint.url in mail.body and "America/New_York" in mail.body
    assert not endpoint.enabled and endpoint.disabled_at is not None


def test_a_disabled_endpoint_gets_no_new_events(receiver, endpoint):
    WebhookEndpoint.objects.update(enabled=False)
    emit_reader()
    assert not WebhookDelivery.objects.exists()


def test_one_readers_events_arrive_in_order(receiver, clock):
    make_endpoint(receiver.url, ["reader.created", "reader.unsubscribed"])
    receiver.statuses = [500]
    ada = emit_reader("ada@example.com")
    do_set_email_status(ada, Subscriber.EmailStatus.UNSUBSCRIBED)
    grace = emit_reader("grace@example.com")
    first, second, other = WebhookDelivery.objects.order_by("pk")

    results = attempt_all()

    # Ada's first failed, so her second waits; Grace's is another reader's.
    assert results == [Status.PENDING, None, Status.DELIVERED]
    assert [item.event["data"]["reader"]["id"] for item in receiver.received] == [ada.pk, grace.pk]
    # The sweep queues the first only, once it is due.
    assert webhooks.retry_due() == 0
    clock.move_to(WebhookDelivery.objects.get(pk=first.pk).next_attempt_at)
    queued: list[int] = []
    webhooks_queue = webhooks.queue_deliveries
    try:
        webhooks.queue_deliveries = lambda ids: queued.extend(ids)
        assert webhooks.retry_due() == 1
    finally:
        webhooks.queue_deliveries = webhooks_queue
    assert queued == [first.pk]
    assert attempt_all() == [Status.DELIVERED, Status.DELIVERED, None]
    types = [(item.event["type"], item.event["data"]["reader"]["id"]) for item in receiver.received]
    assert types[2:] == [("reader.created", ada.pk), ("reader.unsubscribed", ada.pk)]
    assert second.pk and other.pk


def test_replay_one_or_all_failed(receiver, endpoint, django_capture_on_commit_callbacks):
    emit_reader("a@example.com")
    emit_reader("b@example.com")
    WebhookDelivery.objects.update(status=Status.FAILED, next_attempt_at=None, attempts=40)
    boss = make_user("boss", READERS_PERMS, is_superuser=True)
    admin = Client()
    admin.force_login(boss)

    from config.celery import app

    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            admin.post(
                "/admin/api/webhookendpoint/",
                {"action": "replay_failed", "_selected_action": [endpoint.pk]},
            )
    finally:
        app.conf.task_always_eager = False

    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {(Status.DELIVERED, 1)}
    assert len(receiver.received) == 2


def test_a_private_address_is_refused_unless_allowed(receiver, endpoint, settings):
    settings.API_ALLOW_PRIVATE_ADDRESSES = False
    emit_reader()

    assert attempt_all() == [Status.PENDING]
    delivery = WebhookDelivery.objects.get()
    assert "non-public address" in delivery.last_error
    assert receiver.received == []  # nothing left this machine's loopback


def test_the_connected_address_is_checked_too_not_only_the_name(receiver, settings, monkeypatch):
    """A name that resolves to a public address when checked and a private one when used."""
    settings.API_ALLOW_PRIVATE_ADDRESSES = False
    monkeypatch.setattr(outbound, "check_url", lambda url: None)  # DNS said "public"

    with pytest.raises(outbound.RefusedAddress, match=r"127\.0\.0\.1"):
        outbound.request("POST", receiver.url, body=b"{}")
    assert receiver.received == []


def test_a_slow_endpoint_times_out(receiver, endpoint, monkeypatch):
    receiver.delay = 1.0
    monkeypatch.setattr(outbound, "READ_TIMEOUT", 0.2)
    monkeypatch.setattr(outbound, "_manager", outbound._pool_manager())

    emit_reader()

    assert attempt_all() == [Status.PENDING]
    assert "ReadTimeoutError" in WebhookDelivery.objects.get().last_error


def test_an_endpoint_is_added_in_the_admin_with_its_secret_shown_once(settings):
    settings.API_ALLOW_PRIVATE_ADDRESSES = False
    boss = make_user("boss", READERS_PERMS, is_superuser=True)
    admin = Client()
    admin.force_login(boss)

    refused = admin.post(
        "/admin/api/webhookendpoint/add/",
        {"url": "http://127.0.0.1:9/hook", "events": ["reader.created"], "enabled": "on"},
    )
    assert "non-public address" in refused.content.decode()
    settings.API_ALLOW_PRIVATE_ADDRESSES = True
    made = admin.post(
        "/admin/api/webhookendpoint/add/",
        {"url": "http://127.0.0.1:9/hook", "events": ["reader.created"], "enabled": "on"},
    )
    endpoint = WebhookEndpoint.objects.get()
    assert made.context["secret"] == endpoint.secret and endpoint.secret.startswith("whsec_")
    page = admin.get(f"/admin/api/webhookendpoint/{endpoint.pk}/change/")
    assert endpoint.secret.encode() not in page.content


def test_only_staff_who_may_see_readers_choose_reader_events(settings):
    settings.API_ALLOW_PRIVATE_ADDRESSES = True
    editor = make_user("ed", [])
    editor.user_permissions.add(*Permission.objects.filter(codename__endswith="_webhookendpoint"))
    admin = Client()
    admin.force_login(editor)
    answer = admin.post(
        "/admin/api/webhookendpoint/add/",
        {"url": "http://127.0.0.1:9/hook", "events": ["reader.created"], "enabled": "on"},
    )
    assert "only staff who may see readers" in answer.content.decode()
    assert not WebhookEndpoint.objects.exists()
