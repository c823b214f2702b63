"""The admin shows and reads times in the newsroom's zone (DIGEST_TIMEZONE), and names it."""

import datetime

import pytest

from newsletter.models import Article
from newsletter.tests.factories import make_article, make_staff

pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-12-03 11:00Z")]


@pytest.fixture
def editor(client):
    client.force_login(make_staff("editor"))


def test_the_article_list_shows_publish_times_in_new_york_named(client, editor, settings):
    settings.DIGEST_TIMEZONE = "America/New_York"
    make_article(
        title="Dawn", published_at=datetime.datetime(2026, 12, 3, 10, 30, tzinfo=datetime.UTC)
    )

    page = client.get("/admin/newsletter/article/").content.decode()

    assert "Dec. 3, 2026, 5:30 a.m. EST" in page  # 10:30 UTC
    assert "10:30" not in page
    assert "Times in America/New_York" in page


def test_a_time_typed_in_the_admin_is_the_newsroom_s(client, editor, settings):
    settings.DIGEST_TIMEZONE = "Asia/Tokyo"
    article = make_article(title="Later", status=Article.Status.DRAFT)

    form = client.get(f"/admin/newsletter/article/{article.pk}/change/").content.decode()
    assert "In the newsroom's time zone, Asia/Tokyo" in form
    response = client.post(
        f"/admin/newsletter/article/{article.pk}/change/",
        {
            "title": "Later",
            "slug": article.slug,
            "dek": article.dek,
            "body": article.body,
            "lead_image_alt": "",
            "byline": "",
            "status": Article.Status.SCHEDULED,
            "published_at_0": "2026-12-04",
            "published_at_1": "06:00:00",
        },
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    article.refresh_from_db()
    # 06:00 in Tokyo is 21:00 UTC the day before.
    assert article.published_at == datetime.datetime(2026, 12, 3, 21, 0, tzinfo=datetime.UTC)


def test_reader_pages_keep_their_own_zones(client, settings):
    settings.DIGEST_TIMEZONE = "Asia/Tokyo"
    from django.utils import timezone

    client.get("/")
    assert timezone.get_current_timezone_name() == "UTC"
