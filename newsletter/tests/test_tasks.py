"""The Celery tasks: thin, and each safe to run twice."""

import datetime

import pytest
import time_machine
from celery.schedules import crontab
from django.conf import settings
from django.utils import timezone

from config.celery import app
from newsletter import sending, tasks
from newsletter.models import Delivery, Edition
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


@pytest.fixture
def queued(monkeypatch):
    """Record what the tasks queue instead of sending it to the broker."""
    calls: dict[str, list[tuple[int, ...]]] = {"send_edition": [], "send_delivery_batch": []}
    monkeypatch.setattr(tasks.send_edition, "delay", lambda *a: calls["send_edition"].append(a))
    monkeypatch.setattr(
        tasks.send_delivery_batch, "delay", lambda *a: calls["send_delivery_batch"].append(a)
    )
    return calls


def test_beat_sends_the_digest_on_weekday_mornings_and_sweeps_stalled_sends():
    entry = app.conf.beat_schedule["morning-digest"]
    schedule = entry["schedule"]

    assert entry["task"] == tasks.send_morning_digest.name
    assert isinstance(schedule, crontab)
    # crontab compares its parsed fields: minute, hour, weekdays (Monday to Friday),
    # and every day of every month.
    assert schedule == crontab(
        minute=settings.DIGEST_SEND_TIME.minute,
        hour=settings.DIGEST_SEND_TIME.hour,
        day_of_week=[1, 2, 3, 4, 5],
    )
    assert str(app.timezone) == settings.DIGEST_TIMEZONE
    assert app.conf.beat_schedule["resume-stalled-sends"]["task"] == (
        tasks.resume_stalled_sends.name
    )


def test_batch_time_limit_is_below_the_claim_timeout_and_broker_visibility():
    batch = tasks.send_delivery_batch
    assert batch.acks_late and batch.reject_on_worker_lost
    assert batch.time_limit is not None
    assert batch.time_limit < sending.CLAIM_TIMEOUT.total_seconds()
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    assert isinstance(visibility, int)
    assert sending.CLAIM_TIMEOUT.total_seconds() < visibility
    # Tasks that are not idempotent keep the default early acknowledgement.
    assert not tasks.send_morning_digest.acks_late


def test_morning_task_builds_todays_edition_and_queues_its_send(queued):
    with time_machine.travel("2026-11-30T11:00:00Z", tick=False):
        make_article()
        edition_id = tasks.send_morning_digest()

    edition = Edition.objects.get()
    assert edition.date == datetime.date(2026, 11, 30)
    assert queued["send_edition"] == [(edition_id,)] == [(edition.pk,)]


def test_morning_task_with_nothing_published_queues_nothing(queued):
    assert tasks.send_morning_digest() is None
    assert queued["send_edition"] == []


def test_send_edition_splits_the_audience_into_batches(queued, settings):
    settings.DIGEST_BATCH_SIZE = 3
    make_article()
    readers = [make_subscriber() for _ in range(7)]
    edition = built_edition(datetime.date(2026, 11, 30))

    assert tasks.send_edition(edition.pk) == 3

    ids = sorted(Delivery.objects.values_list("pk", flat=True))
    assert len(ids) == len(readers)
    assert queued["send_delivery_batch"] == [
        (edition.pk, ids[0], ids[2]),
        (edition.pk, ids[3], ids[5]),
        (edition.pk, ids[6], ids[6]),
    ]


@pytest.mark.faults
def test_the_sweep_resumes_only_stalled_sends(queued):
    make_article()
    make_subscriber()
    edition = built_edition(datetime.date(2026, 11, 30))
    sending.start_send(edition)
    ((first_id, last_id),) = sending.batch_ranges(edition)
    sending.claim(edition.pk, first_id, last_id)  # a sender is at work

    assert tasks.resume_stalled_sends() == []

    # That sender dies; once its claim expires the sweep restarts the send.
    later = timezone.now() + sending.CLAIM_TIMEOUT + datetime.timedelta(minutes=1)
    with time_machine.travel(later):
        assert tasks.resume_stalled_sends() == [edition.pk]
    assert queued["send_edition"] == [(edition.pk,)]
    assert Delivery.objects.get().status == Delivery.Status.QUEUED
