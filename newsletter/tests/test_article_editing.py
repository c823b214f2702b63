"""Editors write, schedule, publish and unpublish articles in the admin."""

import datetime
import io
from urllib.parse import urlencode

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django_prose_editor.config import allowlist_from_extensions
from PIL import Image

from newsletter.html import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    EDITOR_ATTRIBUTES_DROPPED,
    EDITOR_EXTENSIONS,
)
from newsletter.models import Article
from newsletter.tests.factories import article_form, make_article, make_section
from testing.admin import run_admin_action

pytestmark = pytest.mark.django_db


def png(name: str = "lead.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "#8a1c1c").save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def test_the_form_has_the_rich_text_editor_and_fills_the_slug_from_the_title(admin_client):
    page = admin_client.get("/admin/newsletter/article/add/").content.decode()

    assert "data-django-prose-editor-configurable" in page
    assert "django_prose_editor/editor.js" in page
    # The admin's prepopulated-fields script fills the slug as the title is typed.
    assert 'data-prepopulated-fields="[{&quot;id&quot;: &quot;#id_slug&quot;' in page
    for field in ["dek", "section", "byline", "lead_image", "lead_image_alt"]:
        assert f'name="{field}"' in page, field


def test_what_the_editor_can_produce_survives_cleaning():
    allowed = allowlist_from_extensions(EDITOR_EXTENSIONS)

    assert allowed["tags"] <= ALLOWED_TAGS
    for tag, attributes in allowed["attributes"].items():
        kept = ALLOWED_ATTRIBUTES.get(tag, set())
        assert set(attributes) - EDITOR_ATTRIBUTES_DROPPED <= kept, tag
    assert allowed["url_schemes"] == {"http", "https", "mailto"}


def test_a_draft_with_lead_image_and_alt_text(admin_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    section = make_section(name="Science")

    response = admin_client.post(
        "/admin/newsletter/article/add/",
        article_form(
            section=section.pk,
            dek="A standfirst.",
            byline="Ada Reporter",
            lead_image=png(),
            lead_image_alt="A red rectangle",
        ),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    article = Article.objects.get()
    assert article.status == Article.Status.DRAFT
    assert article.published_at is None
    assert article.lead_image.name is not None
    assert article.lead_image.name.startswith("articles/")
    assert (tmp_path / article.lead_image.name).exists()
    assert article.byline_display == "Ada Reporter"


def test_a_lead_image_needs_its_description(admin_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path

    response = admin_client.post("/admin/newsletter/article/add/", article_form(lead_image=png()))

    assert response.status_code == 200
    assert "Describe the lead image" in response.content.decode()
    assert not Article.objects.exists()


def test_an_empty_body_is_refused(admin_client):
    response = admin_client.post("/admin/newsletter/article/add/", article_form(body="<p></p>"))

    assert response.status_code == 200
    assert not Article.objects.exists()


def test_scheduling_needs_a_future_time(admin_client):
    past = timezone.localtime() - datetime.timedelta(hours=1)
    response = admin_client.post(
        "/admin/newsletter/article/add/",
        article_form(
            status="scheduled",
            publish_at=past,
        ),
    )
    assert response.status_code == 200
    assert "needs a publication time in the future" in response.content.decode()

    future = timezone.localtime() + datetime.timedelta(days=1)
    response = admin_client.post(
        "/admin/newsletter/article/add/",
        article_form(
            status="scheduled",
            publish_at=future,
        ),
    )
    assert response.status_code == 302
    article = Article.objects.get()
    assert article.status == Article.Status.SCHEDULED
    assert not article.is_published


def test_publishing_with_a_future_time_asks_for_scheduled_instead(admin_client):
    future = timezone.localtime() + datetime.timedelta(days=1)
    response = admin_client.post(
        "/admin/newsletter/article/add/",
        article_form(
            status="published",
            publish_at=future,
        ),
    )

    assert response.status_code == 200
    assert "choose Scheduled" in response.content.decode()


def test_the_list_searches_and_filters(admin_client):
    science, culture = make_section(name="Science"), make_section(name="Culture")
    comet = make_article(title="Comet brightens", section=science)
    make_article(title="Library fines", section=culture)
    draft = make_article(title="Comet draft", status=Article.Status.DRAFT, section=science)
    old = make_article(title="Old news", published_ago=datetime.timedelta(days=40))

    def titles(query: str) -> set[str]:
        response = admin_client.get(f"/admin/newsletter/article/?{query}")
        assert response.status_code == 200
        return {article.title for article in response.context["cl"].result_list}

    assert titles("q=comet") == {comet.title, draft.title}
    assert titles("status__exact=draft") == {draft.title}
    assert titles(f"section__id__exact={culture.pk}") == {"Library fines"}
    since = urlencode({"published_at__gte": timezone.now() - datetime.timedelta(days=7)})
    assert old.title not in titles(since)


def test_bulk_publish_and_unpublish_are_logged(admin_client, admin_user):
    draft = make_article(title="Ready", status=Article.Status.DRAFT)
    live = make_article(title="Live")

    run_admin_action(admin_client, "publish_now", [draft])
    run_admin_action(admin_client, "unpublish", [live])

    draft.refresh_from_db()
    live.refresh_from_db()
    assert draft.is_published
    assert live.status == Article.Status.DRAFT
    messages = {entry.object_id: entry.get_change_message() for entry in LogEntry.objects.all()}
    assert messages[str(draft.pk)] == "Status: Draft → Published (bulk action)."
    assert messages[str(live.pk)] == "Status: Published → Draft (unpublished)."


def test_history_says_who_changed_what_and_when(admin_client, admin_user):
    article = make_article(title="First title", status=Article.Status.DRAFT)

    response = admin_client.post(
        f"/admin/newsletter/article/{article.pk}/change/",
        article_form(title="Better title", slug=article.slug, dek=article.dek, status="published"),
    )
    assert response.status_code == 302, response.content.decode()[:3000]

    entry = LogEntry.objects.get(object_id=str(article.pk))
    assert entry.user == admin_user
    assert entry.get_change_message() == "Changed Title and Body. Status: Draft → Published."
    history = admin_client.get(f"/admin/newsletter/article/{article.pk}/history/")
    page = history.content.decode()
    assert "Status: Draft → Published." in page
    assert admin_user.username in page
