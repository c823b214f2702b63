"""The Editors group: write, publish and curate; no billing data, no deleting readers."""

import pytest
from django.contrib.auth.models import Group

from newsletter.models import Article, Edition
from newsletter.tests.factories import article_form, make_article, make_staff
from subscriptions.tests.factories import make_subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor_client(client):
    client.force_login(make_staff("editor"))
    return client


def test_the_migration_creates_the_group_with_newsletter_delivery_and_key_permissions_only():
    permissions = Group.objects.get(name="Editors").permissions.select_related("content_type")
    codenames = {p.codename for p in permissions}

    assert {"add_article", "change_article", "change_edition", "view_delivery"} <= codenames
    assert "change_delivery" not in codenames
    # Readers and their billing live in the subscriptions app: nothing there,
    # whatever models it gains later. (Deliveries and send slots, read-only,
    # moved to the delivery app with their permissions.)
    # Their own API keys too (api/migrations/0002: article keys only, api.scopes).
    assert {p.content_type.app_label for p in permissions} == {"newsletter", "delivery", "api"}
    assert {
        f"{p.content_type.app_label}.{p.codename}"
        for p in permissions
        if p.content_type.app_label in ("delivery", "api")
    } == {
        "delivery.view_delivery",
        "delivery.view_sendslot",
        "api.add_apikey",
        "api.change_apikey",
        "api.view_apikey",
        "api.view_apiwrite",
    }


def test_an_editor_can_write_and_publish(editor_client):
    response = editor_client.post(
        "/admin/newsletter/article/add/", article_form(status="published")
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert Article.objects.get().is_published


def test_an_editor_can_curate_the_next_edition(editor_client):
    make_article()
    response = editor_client.get("/admin/newsletter/edition/next/")
    assert response.status_code == 302
    edition = Edition.objects.get()

    response = editor_client.post(f"/admin/newsletter/edition/{edition.pk}/hold/")

    assert response.status_code == 302
    edition.refresh_from_db()
    assert edition.status == Edition.Status.HELD


def test_an_editor_sees_deliveries_but_no_reader_or_billing_data(editor_client):
    subscriber = make_subscriber()

    assert editor_client.get("/admin/delivery/delivery/").status_code == 200
    assert editor_client.get("/admin/subscriptions/subscriber/").status_code == 403
    assert editor_client.get("/admin/subscriptions/membership/").status_code == 403
    assert (
        editor_client.get(f"/admin/subscriptions/subscriber/{subscriber.pk}/change/").status_code
        == 403
    )
    response = editor_client.post(
        f"/admin/subscriptions/subscriber/{subscriber.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 403
    assert subscriber.__class__.objects.filter(pk=subscriber.pk).exists()
    index = editor_client.get("/admin/").content.decode()
    assert "/admin/subscriptions/" not in index


def test_a_superuser_can_do_everything(admin_client):
    subscriber = make_subscriber()

    assert admin_client.get("/admin/subscriptions/membership/").status_code == 200
    response = admin_client.post(
        f"/admin/subscriptions/subscriber/{subscriber.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not subscriber.__class__.objects.filter(pk=subscriber.pk).exists()


def test_staff_outside_the_group_cannot_open_the_desk(client):
    client.force_login(make_staff("intern", editor=False))
    make_article()

    assert client.get("/admin/newsletter/edition/next/").status_code == 403


def test_the_old_admin_pages_of_deliveries_lead_to_the_delivery_apps(editor_client):
    response = editor_client.get("/admin/newsletter/delivery/?status__exact=failed")

    assert response.status_code == 302
    assert response["Location"] == "/admin/delivery/delivery/?status__exact=failed"
    assert editor_client.get(response["Location"]).status_code == 200
    assert editor_client.get("/admin/newsletter/sendslot/")["Location"] == (
        "/admin/delivery/sendslot/"
    )
