"""The Celery tasks: thin, and each safe to run twice."""

import datetime

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from config.celery import app
from delivery import batches, by_hand, recovery, tasks
from delivery.models import Delivery
from newsletter.models import Edition
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


def test_beat_runs_the_scheduler_every_minute_and_sweeps_stalled_sends(settings):
    entry = app.conf.beat_schedule["send-due-digests"]
    assert entry["task"] == tasks.send_due_digests.name
    assert entry["schedule"] == 60
    assert app.conf.beat_schedule["resume-stalled-sends"]["task"] == (
        tasks.resume_stalled_sends.name
    )


def test_the_sending_tasks_keep_the_names_queued_messages_and_beat_carry():
    """They moved from newsletter/tasks.py; a message names a task by its name alone."""
    assert [
        tasks.send_due_digests.name,
        tasks.send_edition.name,
        tasks.send_delivery_batch.name,
        tasks.resume_stalled_sends.name,
        tasks.process_bounces.name,
    ] == [
        "newsletter.tasks.send_due_digests",
        "newsletter.tasks.send_edition",
        "newsletter.tasks.send_delivery_batch",
        "newsletter.tasks.resume_stalled_sends",
        "newsletter.tasks.process_bounces",
    ]
    for name in [name for name in app.tasks if name.startswith("newsletter.tasks.send")]:
        assert app.tasks[name].run.__module__ == "delivery.tasks", name
    app.autodiscover_tasks(force=True)  # every app's tasks, as a worker registers them
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert scheduled <= set(app.tasks), scheduled - set(app.tasks)


def test_batch_time_limit_is_below_the_claim_timeout_and_broker_visibility():
    batch = tasks.send_delivery_batch
    assert batch.acks_late and batch.reject_on_worker_lost
    assert batch.time_limit is not None
    assert batch.time_limit < recovery.CLAIM_TIMEOUT.total_seconds()
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    assert isinstance(visibility, int)
    assert recovery.CLAIM_TIMEOUT.total_seconds() < visibility
    # Tasks that are not idempotent keep the default early acknowledgement.
    assert not tasks.send_due_digests.acks_late


def test_the_scheduler_queues_one_batch_task_per_range_of_a_mornings_readers(queued, settings):
    settings.DIGEST_BATCH_SIZE = 2
    make_article()
    readers = [make_subscriber(time_zone="Europe/London") for _ in range(3)]
    make_subscriber(time_zone="America/New_York")  # not yet their morning

    # They joined on Monday (the clock's 09:00 UTC): Tuesday's London morning.
    with time_machine.travel("2026-12-01T06:01:00+00:00", tick=False):
        assert tasks.send_due_digests() == 2

    edition = Edition.objects.get()
    assert edition.date == datetime.date(2026, 12, 1)
    ids = sorted(Delivery.objects.values_list("pk", flat=True))
    assert len(ids) == len(readers)
    assert queued["send_delivery_batch"] == [
        (edition.pk, ids[0], ids[1]),
        (edition.pk, ids[2], ids[2]),
    ]


def test_the_scheduler_with_nothing_published_queues_nothing(queued):
    make_subscriber(time_zone="Europe/London")
    with time_machine.travel("2026-12-01T06:01:00+00:00", tick=False):
        assert tasks.send_due_digests() == 0
    assert queued["send_delivery_batch"] == []
    assert not Edition.objects.exists()


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
    by_hand.send_edition(edition)
    ((first_id, last_id),) = batches.batch_ranges(edition)
    batches.claim(edition.pk, first_id, last_id)  # a sender is at work

    assert tasks.resume_stalled_sends() == []

    # That sender dies; once its claim expires the sweep restarts the send.
    later = timezone.now() + recovery.CLAIM_TIMEOUT + datetime.timedelta(minutes=1)
    with time_machine.travel(later):
        assert tasks.resume_stalled_sends() == [edition.pk]
    assert queued["send_edition"] == [(edition.pk,)]
    assert Delivery.objects.get().status == Delivery.Status.QUEUED
