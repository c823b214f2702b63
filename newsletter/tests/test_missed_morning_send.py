"""A morning send whose task was lost is started by the sweep, within limits."""

import datetime

import pytest
import time_machine

from newsletter import editions, tasks
from newsletter.models import Edition
from newsletter.tests.factories import built_edition, make_article
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.faults, pytest.mark.clock(MONDAY_BEFORE_SEND)]

SIX_AM = datetime.datetime.fromisoformat("2026-11-30T06:00:00-05:00")


def at(minutes_after_six: int) -> datetime.datetime:
    return SIX_AM + datetime.timedelta(minutes=minutes_after_six)


@pytest.fixture
def queued(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(tasks.send_edition, "delay", calls.append)
    return calls


def sweep(minutes_after_six: int) -> list[int]:
    with time_machine.travel(at(minutes_after_six), tick=False):
        return tasks.resume_stalled_sends()


def test_an_edition_beat_built_but_whose_send_was_lost_is_started(queued):
    make_article(published_at=at(-60))
    edition = built_edition(MONDAY, now=at(0))  # beat built it; its send was lost

    assert sweep(5) == []  # beat's own task still has its chance
    assert sweep(15) == [edition.pk]
    assert queued == [edition.pk]


def test_a_lost_morning_task_is_replaced_with_the_articles_from_before_six(queued):
    before = make_article(published_at=at(-30))
    make_article(published_at=at(5))  # published after the send time: tomorrow's

    (edition_id,) = sweep(15)

    edition = Edition.objects.get(pk=edition_id)
    assert edition.date == MONDAY
    assert list(edition.ordered_articles()) == [before]
    assert edition.cutoff == at(0)


def test_no_edition_when_nothing_was_published_before_six(queued):
    make_article(published_at=at(30))
    assert sweep(45) == []
    assert not Edition.objects.exists()


def test_held_editions_and_other_days_drafts_are_never_started(queued):
    make_article(published_at=at(-60))
    today = built_edition(MONDAY, now=at(-30))
    Edition.objects.filter(pk=today.pk).update(status=Edition.Status.HELD)
    editions.build_edition(MONDAY + datetime.timedelta(days=1), now=at(-10))

    assert sweep(15) == []
    assert queued == []


def test_hours_later_it_is_left_to_a_person(queued):
    make_article(published_at=at(-60))
    editions.build_edition(MONDAY, now=at(0))
    assert sweep(4 * 60) == []


def test_at_weekends_there_is_nothing_to_miss(queued):
    make_article(published_at=at(-3 * 24 * 60))
    assert sweep(-2 * 24 * 60 + 15) == []  # Saturday 06:15
    assert not Edition.objects.exists()
