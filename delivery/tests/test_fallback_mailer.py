"""FALLBACK_SMTP_URL carries the rest of a send once the primary connection keeps failing."""

import pytest

from conftest import SMTPServer
from delivery import batches, by_hand, send_report
from delivery.models import Delivery
from delivery.wire import carriers
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


@pytest.fixture
def two_relays(tmp_path, settings):
    """A primary that refuses every message ("421 try later") and a working fallback."""
    primary, fallback = SMTPServer(tmp_path / "primary"), SMTPServer(tmp_path / "fallback")
    primary.inject_faults(refuse_data_after=0, data_reply=[421, "4.3.2 System not accepting"])
    settings.MAILERS = {
        "default": primary.mailers_setting()["default"],
        "fallback": fallback.mailers_setting()["default"],
    }
    settings.FALLBACK_AFTER_FAILURES = 2
    settings.DIGEST_BATCH_SIZE = 3
    carriers.reset()
    yield primary, fallback
    carriers.reset()
    primary.stop()
    fallback.stop()


def test_after_repeated_failures_the_fallback_carries_the_rest_and_the_report_says_so(
    two_relays,
):
    primary, fallback = two_relays
    make_article()
    readers = [make_subscriber(f"reader{n}@example.com") for n in range(6)]
    edition = built_edition(MONDAY)

    for _ in range(2):  # the batch task's first attempt and its retry
        with pytest.raises(batches.TransientSendError, match="421"):
            by_hand.send_edition_in_process(edition.pk)
    assert carriers.choose() == carriers.FALLBACK

    report = by_hand.send_edition_in_process(edition.pk)

    assert report.sent == 6 and report.carried == {"fallback": 6}
    assert sorted(fallback.recipients()) == sorted(r.email for r in readers)
    assert primary.received() == []
    assert set(Delivery.objects.values_list("status", "carrier")) == {("sent", "fallback")}
    assert send_report.carried(edition) == {"fallback": 6}


def test_one_passing_failure_does_not_switch(two_relays):
    primary, _ = two_relays
    make_article()
    make_subscriber("reader@example.com")
    edition = built_edition(MONDAY)
    with pytest.raises(batches.TransientSendError):
        by_hand.send_edition_in_process(edition.pk)
    primary.clear_faults()

    report = by_hand.send_edition_in_process(edition.pk)

    assert report.carried == {"default": 1}
    assert carriers.choose() == carriers.PRIMARY


def test_the_desk_reports_which_connection_carried_what(two_relays, admin_client):
    make_article()
    for n in range(2):
        make_subscriber(f"reader{n}@example.com")
    edition = built_edition(MONDAY)
    for _ in range(2):
        with pytest.raises(batches.TransientSendError):
            by_hand.send_edition_in_process(edition.pk)
    by_hand.send_edition_in_process(edition.pk)

    page = admin_client.get(f"/admin/newsletter/edition/{edition.pk}/desk/").content.decode()
    assert "by the fallback (<code>FALLBACK_SMTP_URL</code>): 2" in page


def test_without_a_fallback_nothing_switches(smtp_server):
    carriers.reset()
    for _ in range(5):
        carriers.failed(carriers.PRIMARY)
    assert carriers.choose() == carriers.PRIMARY
