"""Hostile review, editors: no readers' addresses, and a sent edition stays as it went out."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command

from delivery.models import BounceEvent, Delivery
from newsletter.models import Edition, EditionArticle
from newsletter.tests.factories import make_article, make_staff
from subscriptions.models import StripeEvent
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
    page = editor_client.get("/admin/delivery/delivery/").content.decode()
    searched = editor_client.get("/admin/delivery/delivery/?q=ada.private").content.decode()

    for content in (page, searched):
        assert "private@example.com" not in content
        assert "Recipient address rejected" in content  # the reason, without the address
    # Searching by address is not offered, so it cannot probe who reads.
    assert 'id="searchbar"' not in page
    delivery = Delivery.objects.get(subscriber__email=ADDRESS)
    assert editor_client.get(f"/admin/delivery/delivery/{delivery.pk}/change/").status_code == 403


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

    assert ADDRESS in client.get("/admin/delivery/delivery/?q=ada.private").content.decode()
    desk = client.get(f"/admin/newsletter/edition/{sent_edition.pk}/desk/").content.decode()
    assert ADDRESS in desk


def readers_staff(client, *codenames: str):
    """Staff who may see readers (support), with these other permissions."""
    staff = make_staff("support")
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_subscriber", *codenames])
    )
    client.force_login(staff)
    return client


def test_an_editor_cannot_filter_deliveries_on_what_may_hold_an_address(
    editor_client, sent_edition
):
    reader = Delivery.objects.get(subscriber__email=ADDRESS).subscriber
    probes = [
        # Whether an address is among the failures: one request.
        f"last_error__icontains={ADDRESS}",
        f"last_error={ADDRESS}",
        # An address walked out one letter at a time.
        "last_error__regex=<a",
        "last_error__istartswith=550 5.1.1 <a",
        # Through the reader's own fields.
        "subscriber__email__startswith=ada",
        f"subscriber={reader.pk}",
    ]

    for probe in probes:
        assert editor_client.get(f"/admin/delivery/delivery/?{probe}").status_code == 400, probe
    # The filters offered stay usable.
    assert editor_client.get("/admin/delivery/delivery/?status__exact=failed").status_code == 200


def test_staff_with_the_readers_permission_can_still_filter_on_failure_reasons(
    client, sent_edition
):
    support = readers_staff(client)

    response = support.get("/admin/delivery/delivery/?last_error__icontains=ada.private")

    assert response.status_code == 200
    assert ADDRESS in response.content.decode()
    assert "bob.private@example.com" not in response.content.decode()


@pytest.mark.parametrize(
    ("code", "text", "status"),
    [
        (554, f"5.7.1 <{ADDRESS}> refused by policy", Delivery.Status.FAILED),
        (452, f"4.2.2 <{ADDRESS}> mailbox full, try again later", Delivery.Status.QUEUED),
    ],
)
def test_failure_reasons_are_stored_without_the_address(smtp_server, code, text, status):
    make_article(published_ago=datetime.timedelta(hours=2))
    make_subscriber(ADDRESS)
    smtp_server.inject_faults(refuse_recipients={ADDRESS: [code, text]})

    call_command("send_digest", "--sync", "--date", "2026-11-30")

    delivery = Delivery.objects.get(subscriber__email=ADDRESS)
    assert delivery.status == status
    # The server's words are kept, the address it (and Python's error) quoted is not.
    assert text.split("<")[0] in delivery.last_error
    assert "[address]" in delivery.last_error
    assert "@" not in delivery.last_error


@pytest.fixture
def bounce_event(sent_edition) -> BounceEvent:
    delivery = Delivery.objects.get(subscriber__email=ADDRESS)
    return BounceEvent.objects.create(
        kind=BounceEvent.Kind.SOFT,
        source=BounceEvent.Source.MAILBOX,
        subscriber=delivery.subscriber,
        delivery=delivery,
        edition=sent_edition,
        detail=f"5.2.2 <{ADDRESS}>: mailbox full",
        report_id="<report.1@mx.example.net>",
    )


def test_staff_without_the_readers_permission_cannot_filter_bounces_by_address(
    client, bounce_event
):
    staff = make_staff("deliverability", editor=False)
    staff.user_permissions.add(Permission.objects.get(codename="view_bounceevent"))
    client.force_login(staff)

    page = client.get("/admin/delivery/bounceevent/")
    for probe in [
        f"detail__icontains={ADDRESS}",
        "detail__regex=<a",
        "report_id__icontains=report",
        "subscriber__email__startswith=ada",
    ]:
        assert client.get(f"/admin/delivery/bounceevent/?{probe}").status_code == 400, probe

    assert page.status_code == 200
    assert "mailbox full" in page.content.decode()
    assert "private@example.com" not in page.content.decode()
    url = f"/admin/delivery/bounceevent/{bounce_event.pk}/change/"
    assert client.get(url).status_code == 403  # its page names the reader


def test_staff_with_the_readers_permission_can_filter_bounces(client, bounce_event):
    support = readers_staff(client, "view_bounceevent")

    response = support.get(f"/admin/delivery/bounceevent/?detail__icontains={ADDRESS}")

    assert response.status_code == 200
    assert ADDRESS in response.content.decode()


def stripe_event_with_an_address() -> StripeEvent:
    return StripeEvent.objects.create(
        event_id="evt_1AddressInside",
        type="customer.updated",
        payload={"data": {"object": {"object": "customer", "email": ADDRESS}}},
        note="ignored",
    )


def test_staff_without_the_readers_permission_cannot_filter_stripe_events_by_address(client):
    event = stripe_event_with_an_address()
    staff = make_staff("billing", editor=False)
    staff.user_permissions.add(Permission.objects.get(codename="view_stripeevent"))
    client.force_login(staff)

    for probe in [f"payload__icontains={ADDRESS}", "error__regex=a", "payload__contains={}"]:
        assert client.get(f"/admin/subscriptions/stripeevent/?{probe}").status_code == 400, probe
    page = client.get(f"/admin/subscriptions/stripeevent/{event.pk}/change/").content.decode()
    assert "evt_1AddressInside" in page
    assert "private@example.com" not in page

    support = readers_staff(client, "view_stripeevent")
    found = support.get(f"/admin/subscriptions/stripeevent/?payload__icontains={ADDRESS}")
    assert found.status_code == 200 and "evt_1AddressInside" in found.content.decode()
    page = support.get(f"/admin/subscriptions/stripeevent/{event.pk}/change/").content.decode()
    assert ADDRESS in page


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
