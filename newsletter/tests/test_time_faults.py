"""Time: the morning send across daylight saving, weekends, and a reader moving time zone.

The send follows DIGEST_TIMEZONE, not the reader's zone: a reader who moves
(or edits their zone twice in a day) still gets exactly one digest per
weekday, and the dates in their emails follow their new zone.
"""

import collections
import datetime

import pytest
import time_machine
from django.test import Client

from config.celery import app
from newsletter import schedule, tasks
from newsletter.models import Edition
from newsletter.tests.factories import make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.faults, pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


@pytest.fixture
def eager_celery():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def morning_send(utc: str) -> int | None:
    """Beat's morning task at `utc`: the id of the edition it sent, or None."""
    with time_machine.travel(utc, tick=False):
        make_article(title=f"News at {utc}")
        return tasks.send_morning_digest.delay().get()


def test_a_reader_changing_time_zone_gets_one_digest_each_weekday(smtp_server, eager_celery):
    reader = make_subscriber("ada@example.com", time_zone="America/Los_Angeles")
    browser = Client()
    session = browser.session
    session["subscriber_id"] = reader.pk
    session.save()

    # Monday 06:00 in New York (11:00 UTC): the send; then Ada moves to Tokyo,
    # where it is already Tuesday, and back again before Tuesday's send.
    assert morning_send("2026-11-30T11:00:00Z") is not None
    with time_machine.travel("2026-11-30T16:00:00Z", tick=False):
        assert browser.post("/account/time-zone/", {"time_zone": "Asia/Tokyo"}).status_code == 303
        assert tasks.send_morning_digest.delay().get() == Edition.objects.get().pk  # no second
    assert morning_send("2026-12-01T11:00:00Z") is not None
    browser.post("/account/time-zone/", {"time_zone": "Europe/Paris"})
    assert morning_send("2026-12-01T11:30:00Z") == Edition.objects.get(date="2026-12-01").pk

    assert collections.Counter(smtp_server.recipients()) == {"ada@example.com": 2}
    reader.refresh_from_db()
    assert reader.time_zone == "Europe/Paris"


@pytest.mark.parametrize(
    ("utc", "local_date"),
    [
        # Spring forward (8 March 2026): 06:00 EDT is 10:00 UTC, not 11:00.
        ("2026-03-09T10:00:00Z", "2026-03-09"),
        # Fall back (1 November 2026): 06:00 EST is 11:00 UTC again.
        ("2026-11-02T11:00:00Z", "2026-11-02"),
    ],
)
def test_the_morning_send_on_the_monday_after_a_dst_change_makes_that_days_edition(
    smtp_server, eager_celery, utc, local_date
):
    make_subscriber("ada@example.com")
    edition_id = morning_send(utc)

    assert edition_id is not None
    assert Edition.objects.get(pk=edition_id).date == datetime.date.fromisoformat(local_date)
    assert smtp_server.recipients() == ["ada@example.com"]


def test_no_send_at_the_weekend_even_if_beat_fires(smtp_server, eager_celery):
    make_subscriber("ada@example.com")
    # Saturday and Sunday 06:00 in New York.
    assert morning_send("2026-12-05T11:00:00Z") is None
    assert morning_send("2026-12-06T11:00:00Z") is None
    assert not Edition.objects.exists()
    assert smtp_server.received() == []
    # Monday's edition carries the weekend's articles.
    monday_id = morning_send("2026-12-07T11:00:00Z")
    assert monday_id is not None
    edition = Edition.objects.get(pk=monday_id)
    assert edition.editionarticle_set.count() == 3
    assert schedule.local_today(edition.cutoff) == datetime.date(2026, 12, 7)
