"""The public pages a visitor sees."""

import datetime

import pytest
from django.core.management import call_command

from newsletter import editions
from newsletter.models import Article
from newsletter.tests.factories import built_edition, make_article, make_section
from testing.admin import run_admin_action
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


def test_landing_page_shows_the_offer_and_latest_articles(client):
    make_article(title="Published story", section=make_section(name="Science"))
    make_article(title="Secret draft", status=Article.Status.DRAFT)

    page = client.get("/").content.decode()

    assert "$46 a year" in page
    assert "less than $4 a month" in page
    assert "free 14-day trial" in page
    assert "Published story" in page
    assert "Secret draft" not in page


def test_article_page_shows_a_published_article(client):
    # Free to read: a visitor gets the whole text (others get the teaser, see test_paywall_teaser).
    article = make_article(
        title="River treaty", body="<p>Six nations signed.</p>", free_to_read=True
    )

    response = client.get(f"/articles/{article.slug}/")

    assert response.status_code == 200
    assert "<p>Six nations signed.</p>" in response.content.decode()


def test_drafts_and_future_articles_are_not_public(client, admin_client):
    draft = make_article(status=Article.Status.DRAFT)
    future = make_article(published_ago=-datetime.timedelta(days=1))

    assert client.get(f"/articles/{draft.slug}/").status_code == 404
    assert client.get(f"/articles/{future.slug}/").status_code == 404
    # Staff can open them, to check before publishing.
    assert admin_client.get(f"/articles/{draft.slug}/").status_code == 200


def test_article_bodies_are_sanitised_on_save():
    article = make_article(
        body=(
            '<p onclick="steal()">Hi<script>alert(1)</script></p>'
            '<a href="javascript:alert(1)">x</a><img src="x.png" onerror="alert(1)">'
            '<p style="background:url(javascript:alert(1))">styled</p>'
        )
    )
    article.refresh_from_db()

    assert "script" not in article.body
    assert "onclick" not in article.body
    assert "onerror" not in article.body
    assert "javascript:" not in article.body
    assert "style=" not in article.body
    assert "<p>Hi</p>" in article.body


def test_archive_and_edition_pages_list_sent_editions(client, settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    article = make_article(title="Comet brightens")
    call_command("send_digest", "--sync", "--date", "2026-11-30")

    archive = client.get("/archive/").content.decode()
    assert "Monday 30 November 2026" in archive
    assert "Comet brightens" in archive
    edition = client.get("/editions/2026-11-30/")
    assert edition.status_code == 200
    assert article.get_absolute_url() in edition.content.decode()
    assert client.get("/editions/2026-12-01/").status_code == 404
    assert client.get("/editions/not-a-date/").status_code == 404


def test_a_draft_edition_is_visible_to_staff_only(client, admin_client):
    make_article()
    editions.build_edition(datetime.date(2026, 12, 1))

    assert client.get("/editions/2026-12-01/").status_code == 404
    assert admin_client.get("/editions/2026-12-01/").status_code == 200


def test_admin_serves_the_article_form(admin_client):
    assert admin_client.get("/admin/newsletter/article/add/").status_code == 200
    make_article()
    for url in [
        "/admin/",
        "/admin/newsletter/article/",
        "/admin/newsletter/edition/",
        "/admin/delivery/delivery/",
        "/admin/subscriptions/subscriber/",
        "/admin/subscriptions/membership/",
    ]:
        assert admin_client.get(url).status_code == 200, url


def test_publishing_in_the_admin_sets_the_publication_time_and_author(admin_client, admin_user):
    response = admin_client.post(
        "/admin/newsletter/article/add/",
        {
            "title": "Written in the admin",
            "slug": "written-in-the-admin",
            "dek": "",
            "body": "<p>Fresh.</p>",
            "byline": "",
            "status": "published",
            "published_at_0": "",
            "published_at_1": "",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    article = Article.objects.get(slug="written-in-the-admin")
    assert article.author == admin_user
    assert article.is_published


def test_staff_can_resend_to_failed_readers_from_the_admin(
    admin_client, monkeypatch, settings, django_capture_on_commit_callbacks
):
    from delivery import by_hand, tasks
    from delivery.models import Delivery
    from newsletter.models import Edition
    from subscriptions.tests.factories import make_subscriber

    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    make_article()
    failed, sent = make_subscriber(), make_subscriber()
    edition = built_edition(datetime.date(2026, 11, 30))
    by_hand.send_edition_in_process(edition.pk)
    Delivery.objects.filter(subscriber=failed).update(
        status=Delivery.Status.FAILED, last_error="SMTPRecipientsRefused: 550"
    )
    queued: list[int] = []
    monkeypatch.setattr(tasks.send_edition, "delay", queued.append)

    with django_capture_on_commit_callbacks(execute=True):
        response = run_admin_action(admin_client, "resend_to_failed", [edition], follow=True)

    assert "1 failed deliveries queued again." in response.content.decode()
    assert Delivery.objects.get(subscriber=failed).status == Delivery.Status.QUEUED
    assert Delivery.objects.get(subscriber=sent).status == Delivery.Status.SENT
    assert Edition.objects.get().status == Edition.Status.SENDING
    assert queued == [edition.pk]
