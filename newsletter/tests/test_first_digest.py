"""When a new reader's first digest arrives, with frozen clocks and DST changes.

DIGEST_TIMEZONE is America/New_York and DIGEST_SEND_TIME 06:00 (the
defaults). In 2026 New York moves to summer time on Sunday 8 March and back
on Sunday 1 November.
"""

import datetime
import io
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command

from config.celery import app
from delivery import tasks
from delivery.models import Delivery
from newsletter import calendar, schedule
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
    first = schedule.next_send_moment(at(joined), datetime.time(6), "America/New_York")
    assert first.date() == datetime.date.fromisoformat(first_edition)
    assert first.astimezone(ZoneInfo("America/New_York")).time() == datetime.time(6)


def test_the_first_digest_is_the_next_weekday_morning_in_the_readers_own_zone():
    # Wednesday 20:30 UTC is Thursday 05:30 in Tokyo: Thursday 06:00 there.
    joined = at("2026-12-02T20:30:00+00:00")
    assert schedule.next_send_moment(joined, datetime.time(6), "Asia/Tokyo") == at(
        "2026-12-03T06:00:00+09:00"
    )
    # The same moment is Wednesday 15:30 in New York: Thursday 06:00 there.
    assert schedule.next_send_moment(joined, datetime.time(7, 30), "America/New_York") == at(
        "2026-12-03T07:30:00-05:00"
    )
    # A no-send day is skipped.
    thursday = datetime.date(2026, 12, 3)
    assert schedule.next_send_moment(
        joined, datetime.time(6), "Asia/Tokyo", no_send_days={thursday}
    ) == at("2026-12-04T06:00:00+09:00")


@pytest.mark.faults
def test_send_time_follows_daylight_saving():
    assert schedule.send_time_on(datetime.date(2026, 3, 6)) == at("2026-03-06T11:00:00+00:00")
    assert schedule.send_time_on(datetime.date(2026, 3, 9)) == at("2026-03-09T10:00:00+00:00")
    assert schedule.send_time_on(datetime.date(2026, 10, 30)) == at("2026-10-30T10:00:00+00:00")
    assert schedule.send_time_on(datetime.date(2026, 11, 2)) == at("2026-11-02T11:00:00+00:00")


def morning_send(when: str) -> None:
    """The scheduler and a worker at `when`, as beat runs them every minute."""
    with time_machine.travel(at(when), tick=False):
        call_command("send_digest", "--sync", "--at", when, stdout=io.StringIO())


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
        promised = calendar.next_digest_at(reader.send_time, reader.time_zone, reader.created_at)
        assert editions_of(reader.email)[0] == promised.date()


def test_beat_runs_the_scheduler_every_minute():
    entry = app.conf.beat_schedule["send-due-digests"]
    assert entry["task"] == tasks.send_due_digests.name
    assert entry["schedule"] == 60
