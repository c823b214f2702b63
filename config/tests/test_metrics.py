"""/metrics: Prometheus' text format, behind a bearer token, read from what the service did.

Every scrape here is parsed by prometheus_client's own parser of the text
format, as Prometheus would read it, and its values are checked against
what the test did: digests sent through real SMTP servers, rows it wrote.
"""

import datetime
import json
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from config import beat
from config import metrics as metrics_module
from config.celery import app as celery_app
from conftest import SMTPServer
from delivery import batches, by_hand, recovery
from delivery.deliverability import suppression
from delivery.models import BounceEvent, Delivery, SendSlot
from delivery.wire import carriers
from newsletter.models import Edition
from newsletter.tasks import publish_scheduled_articles
from newsletter.tests.factories import built_edition, make_article
from subscriptions.models import Membership, StripeEvent, Subscriber
from subscriptions.tests import stripe_objects
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND
from testing.commands import PRODUCTION, run_manage

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

TOKEN = "test-metrics-token-4kQ8Zr2mXv1Ab"


@pytest.fixture(autouse=True)
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN
    # Each test reads its own mornings (rolled-back tests reuse slot ids)
    # and its own beat runs (the cache outlives a test).
    metrics_module._finished.clear()
    cache.delete_many([beat.KEY_PREFIX + name for name in beat.scheduled_tasks()])
    yield
    metrics_module._finished.clear()


def scrape(client, token: str = TOKEN) -> dict:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        family.name: family for family in text_string_to_metric_families(response.content.decode())
    }


def value(families: dict, sample_name: str, **labels: str) -> float:
    """The value of one sample, by its name and exact labels."""
    for family in families.values():
        for sample in family.samples:
            if sample.name == sample_name and sample.labels == labels:
                return sample.value
    raise AssertionError(f"{sample_name}{labels} is not served")


def samples(families: dict, sample_name: str) -> dict[tuple, float]:
    """{(label values...): value} of every sample of that name."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in families.values()
        for sample in family.samples
        if sample.name == sample_name
    }


# --- Who may read them --------------------------------------------------------------------------


def test_metrics_are_off_unless_a_token_is_set(client, settings):
    settings.METRICS_TOKEN = None

    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 404
    assert b"briefing_" not in response.content


def test_without_the_token_nothing_is_shown(client):
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'

    for header in [f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "x"]:
        response = client.get("/metrics", headers={"Authorization": header})
        assert response.status_code in (401, 403), header
        assert b"briefing_" not in response.content, header

    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    # The scheme is case-insensitive (RFC 6750 follows RFC 7235).
    assert client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


def test_the_token_is_compared_in_constant_time(client, monkeypatch):
    compared = []

    def compare_digest(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return a == b

    monkeypatch.setattr("hmac.compare_digest", compare_digest)

    assert client.get("/metrics", headers={"Authorization": "Bearer guess"}).status_code == 403
    assert compared == [(b"guess", TOKEN.encode())]


def test_only_get_and_head_are_answered(client):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/metrics", headers=headers).status_code == 405
    assert client.head("/metrics", headers=headers).status_code == 200


def test_a_short_or_malformed_token_stops_the_service_at_start():
    script = "from django.conf import settings as s; print(s.METRICS_TOKEN)"
    for bad in ["short", "sixteen chars with spaces"]:
        result = run_manage("shell", "-c", script, **PRODUCTION, METRICS_TOKEN=bad)
        assert result.returncode != 0, bad
        assert "METRICS_TOKEN must be at least 16 characters" in result.stderr, bad
    result = run_manage("shell", "-c", script, **PRODUCTION, METRICS_TOKEN=TOKEN)
    assert result.returncode == 0, result.stderr[-2000:]
    assert TOKEN in result.stdout


def test_metrics_are_never_cached(client):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"no-store", "no-cache", "private", "max-age=0"} <= cache_control
    assert value(scrape(client), "briefing_readers", email_status="active") == 0

    make_subscriber()

    # The page cache (newsletter.pagecache) is on in tests; this is not one of its pages.
    assert value(scrape(client), "briefing_readers", email_status="active") == 1


# --- Events, counted where they happen ---------------------------------------------------------


@pytest.fixture
def relays(tmp_path, settings):
    """A primary relay and FALLBACK_SMTP_URL's, real SMTP server processes both."""
    primary, fallback = SMTPServer(tmp_path / "primary"), SMTPServer(tmp_path / "fallback")
    settings.MAILERS = {
        "default": primary.mailers_setting()["default"],
        "fallback": fallback.mailers_setting()["default"],
    }
    settings.FALLBACK_AFTER_FAILURES = 2
    carriers.reset()
    yield primary, fallback
    carriers.reset()
    primary.stop()
    fallback.stop()


def test_digests_are_counted_by_outcome_and_carrier(client, relays, clock):
    primary, fallback = relays
    make_article()
    for name in ["ada", "bob", "cy", "dee", "eve"]:
        make_subscriber(f"{name}@example.com")
    # Monday over the primary: dee's address is refused for good, eve's
    # message goes out but the server hangs up before answering it.
    primary.inject_faults(
        refuse_recipients={"dee@example.com": [550, "5.1.1 No such user"]},
        drop_after_data_for=["eve@example.com"],
    )
    by_hand.send_edition_in_process(built_edition(MONDAY).pk)

    # Tuesday's edition: the primary says "try later" twice, and the
    # fallback carries the send (dee, bounced, is no longer sent to).
    clock.shift(datetime.timedelta(hours=1))
    make_article(published_ago=datetime.timedelta(minutes=1))
    primary.clear_faults()
    # One message at a time: each refusal stops the batch at its first message
    # (pipelined, as many as were in flight would be handed back).
    primary.inject_faults(
        refuse_data_after=0, data_reply=[421, "4.3.2 Not accepting"], no_pipelining=True
    )
    tuesday = built_edition(MONDAY + datetime.timedelta(days=1))
    for _ in range(2):
        with pytest.raises(batches.TransientSendError):
            by_hand.send_edition_in_process(tuesday.pk)
    by_hand.send_edition_in_process(tuesday.pk)
    assert sorted(fallback.recipients()) == [
        "ada@example.com", "bob@example.com", "cy@example.com", "eve@example.com"
    ]  # fmt: skip

    families = scrape(client)

    assert samples(families, "briefing_digests_sent_total") == {
        (("carrier", "default"),): 4,  # ada, bob, cy, and eve's unconfirmed one
        (("carrier", "fallback"),): 4,
    }
    assert value(families, "briefing_digests_failed_total", carrier="default") == 1
    assert value(families, "briefing_digests_failed_total", carrier="fallback") == 0
    assert value(families, "briefing_digests_unconfirmed_total", carrier="default") == 1
    # One message tried, and handed back, at each of the primary's two refusals.
    assert value(families, "briefing_digests_deferred_total", carrier="default") == 2
    assert value(families, "briefing_digests_deferred_total", carrier="fallback") == 0
    assert value(families, "briefing_bounce_events_total", kind="hard", source="smtp") == 1
    # The counts agree with the rows they count.
    rows = Delivery.objects.filter(status=Delivery.Status.SENT)
    assert rows.filter(carrier="default").count() == 4
    assert rows.filter(carrier="fallback").count() == 4
    tuesday_attempts = tuesday.deliveries.aggregate(total=Sum("attempts"))["total"]
    assert tuesday_attempts == 4 + 2  # four sends, two of them tried before


def test_takeovers_and_missed_digests_are_counted(client):
    now = MONDAY_BEFORE_SEND
    make_article()
    readers = [make_subscriber() for _ in range(3)]
    edition = built_edition(MONDAY)
    Edition.objects.filter(pk=edition.pk).update(status=Edition.Status.SENDING)
    # Two rows held by a sender whose lease ran out a minute ago.
    for reader in readers[:2]:
        Delivery.objects.create(
            edition=edition,
            subscriber=reader,
            status=Delivery.Status.SENDING,
            scheduled_for=now,
            claimed_at=now - datetime.timedelta(minutes=2),
            lease_until=now - datetime.timedelta(minutes=1),
        )
    # One queued since a morning that ended (DIGEST_CATCH_UP_HOURS, 3) an hour ago.
    Delivery.objects.create(
        edition=edition,
        subscriber=readers[2],
        status=Delivery.Status.QUEUED,
        scheduled_for=now - datetime.timedelta(hours=4),
    )
    # An audience whose writer died: its lease has run out.
    tuesday = Edition.objects.create(
        date=MONDAY + datetime.timedelta(days=1),
        cutoff=now,
        status=Edition.Status.SENDING,
        send_started_at=now - datetime.timedelta(minutes=5),
        audience_lease_until=now - datetime.timedelta(minutes=1),
    )

    assert recovery.requeue_expired_claims(edition, now) == 2
    assert recovery.mark_missed(now) == 1
    assert by_hand.send_edition(tuesday, now) is True

    families = scrape(client)
    assert value(families, "briefing_delivery_takeovers_total") == 2
    assert value(families, "briefing_digests_missed_total") == 1
    assert value(families, "briefing_audience_takeovers_total") == 1

    # Run again, nothing more is taken over or missed, and nothing more is counted.
    recovery.requeue_expired_claims(edition, now)
    recovery.mark_missed(now)
    families = scrape(client)
    assert value(families, "briefing_delivery_takeovers_total") == 2
    assert value(families, "briefing_digests_missed_total") == 1


# --- State, read from the rows -------------------------------------------------------------------


def zone_slot(zone: str, due: datetime.datetime, edition: Edition, readers: list, **fields):
    """A zone's morning as the scheduler writes it: its slot and one delivery per reader."""
    slot = SendSlot.objects.create(
        date=edition.date,
        time_zone=zone,
        send_time=datetime.time(6),
        scheduled_for=due,
        outcome=SendSlot.Outcome.QUEUED,
        readers=len(readers),
    )
    for reader, delivery_fields in readers:
        Delivery.objects.create(
            edition=edition,
            subscriber=reader,
            scheduled_for=due,
            time_zone=zone,
            **{**fields, **delivery_fields},
        )
    return slot


def test_queue_and_mornings_are_read_at_scrape_time(client):
    now = MONDAY_BEFORE_SEND  # 09:00 UTC
    make_article()
    edition = built_edition(MONDAY)
    # Tokyo's 06:00 (21:00 UTC the day before): done, its last digest 150 s after.
    tokyo_due = datetime.datetime(2026, 11, 29, 21, 0, tzinfo=datetime.UTC)
    zone_slot(
        "Asia/Tokyo",
        tokyo_due,
        edition,
        [
            (
                make_subscriber(),
                {"status": "sent", "sent_at": tokyo_due + datetime.timedelta(seconds=s)},
            )
            for s in (90, 150)
        ]
        + [(make_subscriber(), {"status": "failed"})],
        carrier="default",
    )
    # London's 06:00 (06:00 UTC): one sent, one still queued, three hours in.
    london_due = datetime.datetime(2026, 11, 30, 6, 0, tzinfo=datetime.UTC)
    zone_slot(
        "Europe/London",
        london_due,
        edition,
        [
            (make_subscriber(), {"status": "sent", "sent_at": london_due}),
            (make_subscriber(), {"status": "queued"}),
        ],
    )
    # And one being sent, elsewhere.
    Delivery.objects.create(
        edition=edition,
        subscriber=make_subscriber(),
        status=Delivery.Status.SENDING,
        scheduled_for=now - datetime.timedelta(minutes=1),
    )

    families = scrape(client)

    assert value(families, "briefing_deliveries_queued") == 1
    assert value(families, "briefing_deliveries_sending") == 1
    assert value(families, "briefing_queue_oldest_age_seconds") == 3 * 3600
    assert samples(families, "briefing_morning_send_seconds") == {
        (("time_zone", "Asia/Tokyo"),): 150,
        (("time_zone", "Europe/London"),): 3 * 3600,  # so far
    }
    assert samples(families, "briefing_morning_sending") == {
        (("time_zone", "Asia/Tokyo"),): 0,
        (("time_zone", "Europe/London"),): 1,
    }
    assert value(families, "briefing_send_window_seconds") == 15 * 60


def test_a_finished_morning_is_read_once(client):
    make_article()
    edition = built_edition(MONDAY)
    due = datetime.datetime(2026, 11, 30, 6, 0, tzinfo=datetime.UTC)
    zone_slot(
        "Europe/London",
        due,
        edition,
        [(make_subscriber(), {"sent_at": due + datetime.timedelta(seconds=40)})],
        status=Delivery.Status.SENT,
    )
    assert value(scrape(client), "briefing_morning_send_seconds", time_zone="Europe/London") == 40

    with CaptureQueriesContext(connection) as queries:
        families = scrape(client)
    assert value(families, "briefing_morning_send_seconds", time_zone="Europe/London") == 40
    assert not [q for q in queries.captured_queries if "MAX(" in q["sql"].upper()]

    # Staff resend: the morning is sending again, then done later, and read anew.
    Delivery.objects.filter(edition=edition).update(status=Delivery.Status.QUEUED)
    assert value(scrape(client), "briefing_morning_sending", time_zone="Europe/London") == 1
    Delivery.objects.filter(edition=edition).update(
        status=Delivery.Status.SENT, sent_at=due + datetime.timedelta(seconds=70)
    )
    families = scrape(client)
    assert value(families, "briefing_morning_send_seconds", time_zone="Europe/London") == 70


def test_readers_memberships_and_bounces_are_served(client):
    make_subscriber(membership=Membership.Status.TRIALING)
    make_subscriber(membership=Membership.Status.ACTIVE)
    make_subscriber(membership=Membership.Status.ACTIVE, email_status="unsubscribed")
    complainer = make_subscriber(membership=Membership.Status.PAST_DUE)
    make_subscriber(membership=None)

    suppression.do_record(complainer.pk, BounceEvent.Kind.COMPLAINT, source=BounceEvent.Source.ESP)

    families = scrape(client)
    assert samples(families, "briefing_readers") == {
        (("email_status", "active"),): 3,
        (("email_status", "unsubscribed"),): 1,
        (("email_status", "bounced"),): 0,
        (("email_status", "complained"),): 1,
    }
    assert value(families, "briefing_memberships", status="active") == 2
    assert value(families, "briefing_memberships", status="trialing") == 1
    assert value(families, "briefing_memberships", status="past_due") == 1
    assert value(families, "briefing_memberships", status="canceled") == 0
    assert value(families, "briefing_bounce_events_total", kind="complaint", source="esp") == 1
    assert value(families, "briefing_bounce_events_total", kind="hard", source="esp") == 0
    assert value(families, "briefing_send_health_hard_bounce_threshold_percent") == 2
    assert value(families, "briefing_send_health_complaint_threshold_percent") == 0.1
    # Counts, states and names of zones, carriers and tasks: never an address.
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).content
    assert b"@" not in text
    assert Subscriber.objects.filter(email_status="complained").get() == complainer


def test_stripe_events_are_counted_with_their_lag(client, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_WEBHOOK_SECRET = stripe_objects.WEBHOOK_SECRET
    now = int(MONDAY_BEFORE_SEND.timestamp())
    # Types the service does not handle: stored and ignored, without a call to Stripe.
    for event_type, lag in [
        ("charge.succeeded", 30),
        ("charge.succeeded", 50),
        ("customer.created", 70),
    ]:
        event = stripe_objects.event(event_type, {"id": "ch_1", "object": "charge"})
        event["created"] = now - lag
        payload = json.dumps(event)
        response = stripe_objects.post_webhook(client, payload, stripe_objects.signed(payload))
        assert response.status_code == 200

    families = scrape(client)

    assert samples(families, "briefing_stripe_webhook_events") == {
        (("status", "ignored"), ("type", "charge.succeeded")): 2,
        (("status", "ignored"), ("type", "customer.created")): 1,
    }
    assert value(families, "briefing_stripe_webhook_lag_seconds") == 50
    assert value(families, "briefing_stripe_webhook_last_received_timestamp_seconds") == now
    assert StripeEvent.objects.count() == 3


def test_beat_tasks_record_when_they_last_succeeded(client, clock):
    assert samples(scrape(client), "briefing_beat_task_last_success_timestamp_seconds") == {}

    publish_scheduled_articles.apply()
    clock.shift(datetime.timedelta(minutes=3))
    # Not one of beat's: not recorded.
    beat.record_success("newsletter.tasks.send_edition", MONDAY_BEFORE_SEND)

    assert samples(scrape(client), "briefing_beat_task_last_success_timestamp_seconds") == {
        (("task", "newsletter.tasks.publish_scheduled_articles"),): MONDAY_BEFORE_SEND.timestamp()
    }


def test_the_broker_queue_length_is_read(client, celery_queue):
    for _ in range(2):
        celery_app.send_task("newsletter.tasks.publish_scheduled_articles", queue=celery_queue)
    try:
        families = scrape(client)
    finally:
        with celery_app.connection_for_write() as broker:
            channel: Any = broker.default_channel
            channel.queue_purge(celery_queue)
    assert value(families, "briefing_broker_queue_messages", queue=celery_queue) == 2


def test_an_unreachable_broker_leaves_the_rest_served(client, monkeypatch):
    monkeypatch.setattr(metrics_module, "broker_queue_length", lambda queue: None)
    families = scrape(client)
    assert "briefing_broker_queue_messages" not in families
    assert value(families, "briefing_deliveries_queued") == 0
