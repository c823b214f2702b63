"""Which articles an edition carries, and that each date has one edition."""

import datetime

import pytest
from django.utils import timezone

from delivery import by_hand
from newsletter import editions, schedule
from newsletter.models import Edition, EditionArticle
from newsletter.tests.factories import built_edition, make_article
from testing.clock import MONDAY, MONDAY_BEFORE_SEND
from testing.concurrency import run_at_once

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

TUESDAY = MONDAY + datetime.timedelta(days=1)


def test_an_edition_carries_what_was_published_since_the_previous_one():
    now = timezone.now()
    old = make_article(published_ago=datetime.timedelta(days=2))
    monday = built_edition(MONDAY, now=now - datetime.timedelta(days=1))
    fresh = make_article(published_ago=datetime.timedelta(hours=3))
    make_article(status="draft")
    make_article(status="scheduled")
    # Published status but a future time: not out yet.
    make_article(published_ago=-datetime.timedelta(hours=1))

    tuesday = built_edition(TUESDAY, now=now)

    assert list(monday.ordered_articles()) == [old]
    assert list(tuesday.ordered_articles()) == [fresh]
    assert tuesday.cutoff == now


def test_an_edition_takes_in_new_articles_until_it_is_sent(clock):
    first = make_article()
    edition = built_edition(MONDAY)
    second = make_article(published_ago=datetime.timedelta(0))

    assert editions.build_edition(MONDAY) == edition
    assert list(edition.ordered_articles()) == [first, second]

    # Sending: a later zone's morning is still to come, and its readers get
    # what was published before it.
    by_hand.send_edition(edition)
    clock.shift(datetime.timedelta(minutes=1))
    third = make_article(published_ago=datetime.timedelta(0))
    assert editions.build_edition(MONDAY) == edition
    assert list(edition.ordered_articles()) == [first, second, third]

    Edition.objects.filter(pk=edition.pk).update(status=Edition.Status.SENT)
    make_article(published_ago=datetime.timedelta(0))
    assert list(built_edition(MONDAY).ordered_articles()) == [first, second, third]
    assert Edition.objects.count() == 1


def test_refreshing_keeps_the_editors_order_and_left_out_articles():
    first, second, third = (
        make_article(published_ago=datetime.timedelta(hours=h)) for h in (3, 2, 1)
    )
    edition = built_edition(MONDAY)
    # The editors put the third first and leave the second out.
    EditionArticle.objects.filter(edition=edition, article=third).update(position=0)
    EditionArticle.objects.filter(edition=edition, article=second).update(included=False)
    fourth = make_article(published_ago=datetime.timedelta(0))

    editions.build_edition(MONDAY)

    assert list(edition.ordered_articles()) == [third, first, fourth]
    assert edition.articles.count() == 4


def test_with_the_setting_on_an_edition_goes_out_even_without_new_articles(settings):
    settings.DIGEST_SEND_WHEN_EMPTY = True
    edition = built_edition(MONDAY)
    assert edition is not None
    assert list(edition.ordered_articles()) == []


def test_a_held_edition_is_returned_unchanged_and_cannot_start():
    make_article()
    edition = built_edition(MONDAY)
    Edition.objects.filter(pk=edition.pk).update(status=Edition.Status.HELD)
    make_article(published_ago=datetime.timedelta(0))

    assert built_edition(MONDAY).articles.count() == 1
    with pytest.raises(by_hand.EditionHeld):
        by_hand.send_edition(edition)


def test_nothing_new_means_no_edition():
    assert editions.build_edition(MONDAY) is None
    assert not Edition.objects.exists()


@pytest.mark.faults
@pytest.mark.django_db(transaction=True)
def test_concurrent_builds_make_one_edition():
    make_article()

    results = run_at_once(lambda: built_edition(MONDAY), times=4)

    assert Edition.objects.count() == 1
    assert {edition.pk for edition in results} == {Edition.objects.get().pk}


@pytest.mark.parametrize(
    ("utc_now", "expected"),
    [
        # Friday 23:30 in New York is already Saturday in UTC: still Friday's.
        ("2026-11-28T04:30:00+00:00", datetime.date(2026, 11, 27)),
        # Saturday and Sunday in New York: the next edition is Monday's.
        ("2026-11-28T15:00:00+00:00", MONDAY),
        ("2026-11-29T23:00:00+00:00", MONDAY),
        ("2026-11-30T11:00:00+00:00", MONDAY),
    ],
)
def test_next_edition_date_is_a_weekday_in_the_digest_time_zone(utc_now, expected):
    now = datetime.datetime.fromisoformat(utc_now)
    assert schedule.next_edition_date(now) == expected
