"""When a new reader's first digest arrives, with frozen clocks and DST changes.

DIGEST_TIMEZONE is America/New_York and DIGEST_SEND_TIME 06:00 (the
defaults). In 2026 New York moves to summer time on Sunday 8 March and back
on Sunday 1 November.
"""

import datetime

import pytest
import time_machine
from celery.schedules import crontab
from django.conf import settings

from config.celery import app
from newsletter import editions, schedule, sending, tasks
from newsletter.models import Delivery
from newsletter.tests.factories import make_article
from subscriptions.models import Subscriber
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("joined", "first_edition"),
    [
        # Monday before six in New York: that morning's edition.
        ("2026-11-30T05:59:00-05:00", "2026-11-30"),
        # Monday just after six: Tuesday's.
        ("2026-11-30T06:01:00-05:00", "2026-12-01"),
        # Friday evening, Saturday, Sunday night: Monday's.
        ("2026-11-27T18:00:00-05:00", "2026-11-30"),
        ("2026-11-28T12:00:00-05:00", "2026-11-30"),
        ("2026-11-29T23:59:00-05:00", "2026-11-30"),
        # Late Monday evening in New York is already Tuesday in UTC: still Tuesday's.
        ("2026-12-01T03:30:00+00:00", "2026-12-01"),
        # Across the spring change: Sunday 8 March, first digest Monday at 06:00 EDT.
        ("2026-03-08T03:30:00-04:00", "2026-03-09"),
        # 05:30 EDT on Monday 9 March is 09:30 UTC, before 10:00 UTC (06:00 EDT).
        ("2026-03-09T09:30:00+00:00", "2026-03-09"),
        # Across the autumn change: 10:30 UTC on Monday 2 November is 05:30 EST.
        ("2026-11-02T10:30:00+00:00", "2026-11-02"),
        ("2026-11-02T11:30:00+00:00", "2026-11-03"),
    ],
)
def test_first_digest_date(joined, first_edition):
    assert schedule.first_digest_date(at(joined)) == datetime.date.fromisoformat(first_edition)


@pytest.mark.faults
def test_send_time_follows_daylight_saving():
    assert schedule.send_time_on(datetime.date(2026, 3, 6)) == at("2026-03-06T11:00:00+00:00")
    assert schedule.send_time_on(datetime.date(2026, 3, 9)) == at("2026-03-09T10:00:00+00:00")
    assert schedule.send_time_on(datetime.date(2026, 10, 30)) == at("2026-10-30T10:00:00+00:00")
    assert schedule.send_time_on(datetime.date(2026, 11, 2)) == at("2026-11-02T11:00:00+00:00")


@pytest.mark.parametrize(
    ("last_run", "next_run"),
    [
        # Friday's send to Monday's, over the spring-forward weekend.
        ("2026-03-06T11:00:00+00:00", "2026-03-09T10:00:00+00:00"),
        # Friday's send to Monday's, over the fall-back weekend.
        ("2026-10-30T10:00:00+00:00", "2026-11-02T11:00:00+00:00"),
        # An ordinary weekday.
        ("2026-12-01T11:00:00+00:00", "2026-12-02T11:00:00+00:00"),
    ],
)
@pytest.mark.faults
def test_beat_fires_at_six_local_time_on_weekdays_across_dst(last_run, next_run):
    configured: crontab = app.conf.beat_schedule["morning-digest"]["schedule"]
    last = at(last_run).astimezone(app.timezone)
    # The same schedule, with beat's clock stopped at the last run.
    # celery-types' crontab stub omits the specs crontab keeps as given (_orig_*).
    schedule = crontab(
        minute=configured._orig_minute,  # type: ignore[attr-defined]
        hour=configured._orig_hour,  # type: ignore[attr-defined]
        day_of_week=configured._orig_day_of_week,  # type: ignore[attr-defined]
        app=app,
        nowfun=lambda: last,
    )
    # Beat sleeps for `remaining`: elapsed time, so add it on the UTC clock.
    remaining = schedule.remaining_estimate(last)
    assert last.astimezone(datetime.UTC) + remaining == at(next_run)


def morning_send(when: str) -> None:
    with time_machine.travel(at(when), tick=False):
        edition = editions.build_morning_edition()
        if edition is not None:
            sending.send_edition_now(edition.pk)


def editions_of(email: str) -> list[datetime.date]:
    return sorted(
        Delivery.objects.filter(subscriber__email=email).values_list("edition__date", flat=True)
    )


@pytest.mark.faults
def test_signups_around_the_send_and_the_weekend_with_frozen_time(settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}

    def join(email, when):
        with time_machine.travel(at(when), tick=False):
            make_subscriber(email)
            make_article(published_ago=datetime.timedelta(0))  # news for every edition

    join("thursday@example.com", "2026-11-26T12:00:00-05:00")
    join("friday-early@example.com", "2026-11-27T05:59:00-05:00")
    morning_send("2026-11-27T06:00:00-05:00")  # Friday
    join("friday-evening@example.com", "2026-11-27T18:00:00-05:00")
    join("sunday@example.com", "2026-11-29T10:00:00-05:00")
    morning_send("2026-11-28T06:00:00-05:00")  # Saturday: no send
    morning_send("2026-11-30T06:00:00-05:00")  # Monday
    join("monday-late@example.com", "2026-11-30T06:01:00-05:00")
    morning_send("2026-12-01T06:00:00-05:00")  # Tuesday

    friday, monday, tuesday = (
        datetime.date(2026, 11, 27),
        datetime.date(2026, 11, 30),
        datetime.date(2026, 12, 1),
    )
    assert editions_of("thursday@example.com") == [friday, monday, tuesday]
    assert editions_of("friday-early@example.com") == [friday, monday, tuesday]
    assert editions_of("friday-evening@example.com") == [monday, tuesday]
    assert editions_of("sunday@example.com") == [monday, tuesday]
    assert editions_of("monday-late@example.com") == [tuesday]
    # The rule readers are told (the welcome email uses it) is the rule applied.
    for reader in Subscriber.objects.all():
        assert editions_of(reader.email)[0] == schedule.first_digest_date(reader.created_at)


def test_the_morning_task_is_scheduled_in_the_digest_time_zone():
    entry = app.conf.beat_schedule["morning-digest"]
    assert entry["task"] == tasks.send_morning_digest.name
    assert str(app.timezone) == settings.DIGEST_TIMEZONE
