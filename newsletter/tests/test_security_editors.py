"""Hostile review, editors: no readers' addresses, and a sent edition stays as it went out."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command

from newsletter.models import Delivery, Edition, EditionArticle
from newsletter.tests.factories import make_article, make_staff
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

ADDRESS = "ada.private@example.com"


@pytest.fixture
def sent_edition(settings) -> Edition:
    """Monday's edition, sent; one delivery failed with the server naming the address."""
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    make_article(published_ago=datetime.timedelta(hours=2))
    reader = make_subscriber(ADDRESS)
    make_subscriber("bob.private@example.com")
    call_command("send_digest", "--sync", "--date", "2026-11-30")
    Delivery.objects.filter(subscriber=reader).update(
        status=Delivery.Status.FAILED,
        last_error=f"550 5.1.1 <{ADDRESS}>: Recipient address rejected",
    )
    edition = Edition.objects.get()
    assert edition.status == Edition.Status.SENT
    return edition


@pytest.fixture
def editor_client(client):
    client.force_login(make_staff("editor"))
    return client


def test_an_editor_sees_deliveries_without_addresses(editor_client, sent_edition):
    page = editor_client.get("/admin/newsletter/delivery/").content.decode()
    searched = editor_client.get("/admin/newsletter/delivery/?q=ada.private").content.decode()

    for content in (page, searched):
        assert "private@example.com" not in content
        assert "Recipient address rejected" in content  # the reason, without the address
    # Searching by address is not offered, so it cannot probe who reads.
    assert 'id="searchbar"' not in page
    delivery = Delivery.objects.get(subscriber__email=ADDRESS)
    assert editor_client.get(f"/admin/newsletter/delivery/{delivery.pk}/change/").status_code == 403


def test_the_desk_report_shows_an_editor_no_addresses(editor_client, sent_edition):
    response = editor_client.get(f"/admin/newsletter/edition/{sent_edition.pk}/desk/")

    content = response.content.decode()
    assert response.status_code == 200
    assert "private@example.com" not in content
    assert "Recipient address rejected" in content
    assert "Failed" in content


def test_staff_with_the_readers_permission_see_addresses(client, sent_edition):
    staff = make_staff("support")
    staff.user_permissions.add(Permission.objects.get(codename="view_subscriber"))
    client.force_login(staff)

    assert ADDRESS in client.get("/admin/newsletter/delivery/?q=ada.private").content.decode()
    desk = client.get(f"/admin/newsletter/edition/{sent_edition.pk}/desk/").content.decode()
    assert ADDRESS in desk


def change_form(edition: Edition, **changes) -> dict:
    rows = list(edition.rows())
    data = {
        "date": edition.date.isoformat(),
        "cutoff_0": "2026-11-30",
        "cutoff_1": "00:00:00",
        "editor_note": edition.editor_note,
        "status": edition.status,
        "editionarticle_set-TOTAL_FORMS": str(len(rows)),
        "editionarticle_set-INITIAL_FORMS": str(len(rows)),
        "editionarticle_set-MIN_NUM_FORMS": "0",
        "editionarticle_set-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data |= {
            f"editionarticle_set-{index}-id": str(row.pk),
            f"editionarticle_set-{index}-edition": str(edition.pk),
            f"editionarticle_set-{index}-article": str(row.article_id),
            f"editionarticle_set-{index}-position": str(row.position),
            f"editionarticle_set-{index}-DELETE": "on",
        }
    return data | changes


@pytest.mark.faults
@pytest.mark.parametrize("who", ["editor", "superuser"])
def test_a_sent_edition_cannot_be_set_back_to_draft_or_emptied(
    client, admin_user, sent_edition, who
):
    client.force_login(make_staff("editor") if who == "editor" else admin_user)
    cutoff = sent_edition.cutoff
    url = f"/admin/newsletter/edition/{sent_edition.pk}/change/"

    response = client.post(url, change_form(sent_edition, status="draft", date="2026-12-25"))

    assert response.status_code in (200, 302)
    sent_edition.refresh_from_db()
    assert sent_edition.status == Edition.Status.SENT
    assert sent_edition.date == datetime.date(2026, 11, 30)
    assert sent_edition.cutoff == cutoff
    assert EditionArticle.objects.filter(edition=sent_edition).count() == 1
    assert client.get("/editions/2026-11-30/").status_code == 200
    form = client.get(url).content.decode()
    for field in ["date", "status", "cutoff_0"]:
        assert f'name="{field}"' not in form, field


@pytest.mark.faults
def test_a_sent_edition_cannot_be_deleted_even_by_a_superuser(admin_client, sent_edition):
    url = f"/admin/newsletter/edition/{sent_edition.pk}/delete/"

    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    admin_client.post(
        "/admin/newsletter/edition/",
        {"action": "delete_selected", "_selected_action": [sent_edition.pk], "post": "yes"},
    )

    assert Edition.objects.filter(pk=sent_edition.pk).exists()
    assert Delivery.objects.filter(edition=sent_edition).count() == 2


def test_a_draft_edition_can_still_be_curated_and_deleted(admin_client):
    make_article()
    admin_client.get("/admin/newsletter/edition/next/")
    draft = Edition.objects.get()

    form = admin_client.get(f"/admin/newsletter/edition/{draft.pk}/change/").content.decode()
    assert 'name="editor_note"' in form
    admin_client.post(f"/admin/newsletter/edition/{draft.pk}/delete/", {"post": "yes"})
    assert not Edition.objects.exists()
