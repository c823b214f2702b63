"""/api/v1/editions/ (the next morning per zone, sent editions' reports) and /api/v1/figures/."""

import datetime

import pytest
from django.utils import timezone

from api.tests.conftest import READERS_PERMS, api_with, make_user
from dashboard import metrics
from delivery.models import Delivery
from newsletter.models import Edition
from newsletter.tests.factories import make_article
from subscriptions.models import Membership, Subscriber
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY

pytestmark = pytest.mark.django_db


def test_the_next_edition_per_zone_and_what_it_carries(api):
    make_subscriber(time_zone="Asia/Tokyo")
    make_subscriber(time_zone="America/New_York")
    make_subscriber(time_zone="America/New_York")
    story = make_article(title="Fresh")

    answer = api.get("/api/v1/editions/next/")

    assert answer.status_code == 200
    body = answer.json()
    zones = {zone["time_zone"]: zone for zone in body["zones"]}
    assert set(zones) == {"Asia/Tokyo", "America/New_York"}
    new_york = zones["America/New_York"]
    assert new_york["readers"] == 2
    assert new_york["send_time"] == "06:00"
    assert new_york["sends_at_local"] == f"{MONDAY.isoformat()} 06:00 America/New_York"
    assert [article["title"] for article in new_york["articles"]] == [story.title]
    assert body["date"] == MONDAY.isoformat()
    assert api.get("/api/v1/editions/next/", {"page_size": 2}).status_code == 400


def test_a_sent_editions_report_per_zone(api, clock):
    story = make_article()
    sent_at = timezone.now()
    edition = Edition.objects.create(
        date=MONDAY, cutoff=sent_at, status=Edition.Status.SENT,
        send_started_at=sent_at - datetime.timedelta(minutes=5), sent_at=sent_at,
    )  # fmt: skip
    edition.articles.add(story)
    moment = sent_at - datetime.timedelta(minutes=5)
    statuses = [Delivery.Status.SENT, Delivery.Status.SENT, Delivery.Status.FAILED]
    for status in statuses:
        reader = make_subscriber(time_zone="Europe/Paris")
        Delivery.objects.create(
            edition=edition, subscriber=reader, status=status, time_zone="Europe/Paris",
            scheduled_for=moment, sent_at=sent_at if status == Delivery.Status.SENT else None,
        )  # fmt: skip
    bounced = make_subscriber(time_zone="Asia/Tokyo")
    Delivery.objects.create(
        edition=edition, subscriber=bounced, status=Delivery.Status.BOUNCED,
        time_zone="Asia/Tokyo", scheduled_for=moment, sent_at=sent_at,
    )  # fmt: skip
    leaver = make_subscriber(time_zone="Asia/Tokyo")
    Delivery.objects.create(
        edition=edition, subscriber=leaver, status=Delivery.Status.SENT,
        time_zone="Asia/Tokyo", scheduled_for=moment, sent_at=sent_at,
    )  # fmt: skip
    clock.shift(datetime.timedelta(hours=1))
    leaver.set_email_status(Subscriber.EmailStatus.UNSUBSCRIBED)

    listed = api.get("/api/v1/editions/").json()["results"]
    one = api.get(f"/api/v1/editions/{MONDAY.isoformat()}/").json()

    assert listed == [one]
    assert one["status"] == "sent"
    assert [article["id"] for article in one["articles"]] == [story.pk]
    zones = {zone["time_zone"]: zone for zone in one["zones"]}
    paris, tokyo = zones["Europe/Paris"], zones["Asia/Tokyo"]
    assert (paris["deliveries"], paris["delivered"], paris["failed"]) == (3, 2, 1)
    assert paris["duration_seconds"] == 300.0
    assert (tokyo["deliveries"], tokyo["bounced"], tokyo["unsubscribes"]) == (2, 1, 1)
    assert api.get("/api/v1/editions/2020-01-06/").status_code == 404


def test_the_figures_are_the_dashboards(api):
    make_subscriber(membership=Membership.Status.ACTIVE, membership_fields={"amount": 4600})
    make_subscriber(membership=Membership.Status.TRIALING)

    answer = api.get("/api/v1/figures/", {"days": 7})

    assert answer.status_code == 200
    body = answer.json()
    expected = {tally.label: tally.count for tally in metrics.readers_by_state(timezone.now())}
    assert {row["label"]: row["count"] for row in body["readers_by_state"]} == expected
    assert (body["paying"], body["arr_cents"], body["mrr_cents"]) == (1, 4600, 383)
    assert len(body["trials_per_day"]) == 7
    assert body["time_zone"] == "America/New_York"


def test_figures_need_the_billing_permission_as_on_the_dashboard():
    readers_only = make_user("support", READERS_PERMS)
    answer = api_with(readers_only, ["read"]).get("/api/v1/figures/")
    assert answer.status_code == 403
