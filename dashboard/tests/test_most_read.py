"""The week's most-read stories, from the digest's tracked links (CLICK_TRACKING)."""

import pytest
from django.utils import timezone

from dashboard import metrics
from newsletter.models import Click
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


def test_the_dashboard_ranks_the_weeks_most_read_stories():
    story = make_article(title="Harbour reopens")
    other = make_article(title="Comet brightens")
    edition = built_edition(MONDAY)
    readers = [make_subscriber(f"r{n}@example.com") for n in range(3)]
    for reader in readers:
        Click.objects.create(edition=edition, article=other, subscriber=reader)
    Click.objects.create(edition=edition, article=story, subscriber=readers[0])
    Click.objects.create(edition=edition, article=story, subscriber=readers[0])

    week = metrics.DateRange.last_days(7, timezone.now())
    ranked = metrics.most_read(week)

    assert [(s.title, s.clicks) for s in ranked] == [("Comet brightens", 3), ("Harbour reopens", 2)]
    assert [s.readers for s in ranked] == [None, None]  # who: only with TRACK_READER_CLICKS


def test_the_figure_shows_on_the_dashboard(admin_client):
    page = admin_client.get("/admin/dashboard/").content.decode()
    assert "Most-read stories" in page
