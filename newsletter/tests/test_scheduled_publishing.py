"""Scheduled articles go live by themselves; unpublished ones leave unsent editions."""

import datetime

import pytest
from django.conf import settings
from django.utils import timezone

from newsletter import editions, tasks
from newsletter.models import Article, Edition
from newsletter.tests.factories import built_edition, make_article
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


def scheduled(in_: datetime.timedelta) -> Article:
    return make_article(status=Article.Status.SCHEDULED, published_at=timezone.now() + in_)


def test_beat_runs_the_publisher_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["publish-scheduled-articles"]
    assert entry["task"] == "newsletter.tasks.publish_scheduled_articles"
    assert entry["schedule"] == 60
    assert tasks.publish_scheduled_articles.name == entry["task"]


def test_due_articles_are_published_and_others_wait():
    due = scheduled(-datetime.timedelta(minutes=1))
    later = scheduled(datetime.timedelta(hours=2))
    draft = make_article(status=Article.Status.DRAFT)
    assert not due.is_published

    published = tasks.publish_scheduled_articles()

    assert published == [due.pk]
    due.refresh_from_db()
    later.refresh_from_db()
    draft.refresh_from_db()
    assert due.is_published
    assert later.status == Article.Status.SCHEDULED
    assert draft.status == Article.Status.DRAFT
    # Running again (beat firing twice, two workers) changes nothing.
    assert tasks.publish_scheduled_articles() == []


def test_a_published_schedule_joins_the_next_edition_even_if_the_worker_was_late(clock):
    earlier = make_article(published_ago=datetime.timedelta(hours=2))
    due = scheduled(-datetime.timedelta(minutes=30))
    # Friday's edition was built after the scheduled time but before the
    # worker published the article: it could not carry it.
    friday = built_edition(MONDAY - datetime.timedelta(days=3))
    assert list(friday.ordered_articles()) == [earlier]

    clock.shift(datetime.timedelta(minutes=1))  # the worker comes round
    tasks.publish_scheduled_articles()

    edition = built_edition(MONDAY)
    assert list(edition.ordered_articles()) == [due]


def test_unpublishing_takes_an_article_out_of_unsent_editions_only(clock):
    first, second = make_article(), make_article()
    sent = built_edition(MONDAY - datetime.timedelta(days=1))
    Edition.objects.filter(pk=sent.pk).update(status=Edition.Status.SENT)
    clock.shift(datetime.timedelta(minutes=5))
    third = make_article(published_ago=datetime.timedelta(0))
    draft = built_edition(MONDAY)
    assert list(draft.ordered_articles()) == [third]

    third.unpublish()
    first.unpublish()

    assert list(draft.ordered_articles()) == []
    # The sent edition keeps its record of what went out.
    assert list(sent.ordered_articles()) == [first, second]
    assert not third.is_published


def test_republishing_an_article_that_went_out_keeps_its_date():
    article = make_article(published_ago=datetime.timedelta(days=2))
    original = article.published_at
    edition = built_edition(MONDAY)
    Edition.objects.filter(pk=edition.pk).update(status=Edition.Status.SENT)

    article.unpublish()
    article.publish()

    article.refresh_from_db()
    assert article.published_at == original
    assert editions.build_edition(MONDAY + datetime.timedelta(days=1)) is None
