"""After the send starts, the edition's desk shows how it is going."""

import pytest

from delivery import by_hand
from delivery.models import Delivery
from newsletter.models import Edition
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


@pytest.fixture
def sending_edition():
    make_article(title="Comet brightens")
    readers = [make_subscriber(f"reader{i}@example.com") for i in range(5)]
    edition = built_edition(MONDAY)
    by_hand.send_edition(edition)
    return edition, readers


def test_progress_while_sending(admin_client, sending_edition):
    edition, readers = sending_edition
    Delivery.objects.filter(subscriber__in=readers[:2]).update(status=Delivery.Status.SENT)

    response = admin_client.get(f"/admin/newsletter/edition/{edition.pk}/desk/")

    page = response.content.decode()
    progress = response.context["progress"]
    assert (progress.queued, progress.counts["sent"], progress.total) == (3, 2, 5)
    assert progress.percent == 40
    assert '<progress id="send-progress" max="5" value="2">' in page
    assert "2 of 5 deliveries done (40%)" in page
    assert '<meta http-equiv="refresh" content="15">' in page
    # No curation once the send has started.
    assert 'name="editor_note"' not in page


def test_after_the_send_counts_and_failed_readers_with_their_errors(
    admin_client, sending_edition, smtp_server
):
    edition, readers = sending_edition
    # A refused message fails (a refused address would bounce: test_bounces).
    smtp_server.inject_faults(
        refuse_recipients={"reader1@example.com": [554, "5.7.1 Message refused"]}
    )
    by_hand.send_edition_in_process(edition.pk)
    Delivery.objects.filter(subscriber=readers[2]).update(
        status=Delivery.Status.BOUNCED, last_error="Hard bounce reported by the ESP"
    )

    response = admin_client.get(f"/admin/newsletter/edition/{edition.pk}/desk/")

    page = response.content.decode()
    counts = response.context["progress"].counts
    assert (counts["sent"], counts["failed"], counts["bounced"]) == (3, 1, 1)
    assert Edition.objects.get().status == Edition.Status.SENT
    assert "<dt>Failed</dt><dd>1</dd>" in page
    assert "<dt>Bounced</dt><dd>1</dd>" in page
    assert "<dt>Queued</dt><dd>0</dd>" in page
    assert "reader1@example.com" in page
    assert "5.7.1 Message refused" in page
    assert "Hard bounce reported by the ESP" in page
    assert 'http-equiv="refresh"' not in page
    assert "Resend to the 1 failed" in page


def test_resend_from_the_desk(
    admin_client, sending_edition, monkeypatch, django_capture_on_commit_callbacks, settings
):
    from delivery import tasks

    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    edition, readers = sending_edition
    by_hand.send_edition_in_process(edition.pk)
    Delivery.objects.filter(subscriber=readers[0]).update(status=Delivery.Status.FAILED)
    queued: list[int] = []
    monkeypatch.setattr(tasks.send_edition, "delay", queued.append)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/newsletter/edition/{edition.pk}/resend/", follow=True)

    assert "1 failed deliveries queued again." in response.content.decode()
    assert queued == [edition.pk]
    assert Delivery.objects.get(subscriber=readers[0]).status == Delivery.Status.QUEUED
