"""The Celery tasks and the beat schedule."""

import datetime

import pytest
from celery.schedules import crontab
from django.conf import settings

from config.celery import app
from newsletter import tasks
from newsletter.models import Edition
from newsletter.tests.factories import make_article

pytestmark = pytest.mark.django_db


def test_beat_sends_the_digest_on_weekday_mornings_in_the_digest_time_zone():
    entry = app.conf.beat_schedule["morning-digest"]
    schedule = entry["schedule"]

    assert entry["task"] == tasks.send_morning_digest.name
    assert isinstance(schedule, crontab)
    assert schedule.hour == {settings.DIGEST_SEND_TIME.hour}
    assert schedule.minute == {settings.DIGEST_SEND_TIME.minute}
    assert schedule.day_of_week == {1, 2, 3, 4, 5}
    assert str(app.timezone) == settings.DIGEST_TIMEZONE


def test_morning_task_builds_todays_edition_and_queues_its_send(monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.send_edition, "delay", queued.append)
    monday_morning = datetime.datetime.fromisoformat("2026-11-30T11:00:00+00:00")
    monkeypatch.setattr("django.utils.timezone.now", lambda: monday_morning)
    make_article(published_at=monday_morning - datetime.timedelta(hours=2))

    edition_id = tasks.send_morning_digest()

    edition = Edition.objects.get()
    assert edition.date == datetime.date(2026, 11, 30)
    assert queued == [edition_id] == [edition.pk]


def test_morning_task_with_nothing_published_queues_nothing(monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.send_edition, "delay", queued.append)
    assert tasks.send_morning_digest() is None
    assert queued == []
