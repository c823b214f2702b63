"""Each webhook event, emitted from the code that makes the change, in its transaction.

The membership events come through the real Stripe webhook endpoint
(signed events, the subscription fetched from the fake Stripe API), as in
production; the others through the actions and tasks that make them.
"""

import datetime

import pytest
from django.db import transaction
from django.utils import timezone

from api import edition_sends, receivers, serializers
from api.events import EVENT_TYPES
from api.models import WebhookDelivery, WebhookEvent
from api.tests.conftest import make_endpoint
from delivery.models import Delivery, SendSlot
from newsletter.models import Article, Edition, Section
from newsletter.tests.factories import make_article
from subscriptions.actions.account import do_set_email_status
from subscriptions.actions.staff import do_grant_complimentary, do_update_reader
from subscriptions.models import Membership, Subscriber
from subscriptions.tests import stripe_objects
from subscriptions.tests.conftest import (  # noqa: F401 - fixtures: Stripe, signed, eager
    fake_stripe,
    reader_test_settings,
    webhooks,
)
from subscriptions.tests.factories import make_stripe_member, make_subscriber
from testing.clock import MONDAY

pytestmark = pytest.mark.django_db

ALL_EVENTS = [name for name, _ in EVENT_TYPES]


@pytest.fixture
def endpoint(receiver):
    return make_endpoint(receiver.url, ALL_EVENTS)


def test_the_membership_events_follow_stripe(webhooks, fake_stripe, receiver):  # noqa: F811
    reader = make_stripe_member(Membership.Status.INCOMPLETE, email="ada@example.com")
    make_endpoint(receiver.url, ALL_EVENTS)

    for status, event_type in [
        ("trialing", "customer.subscription.created"),
        ("active", "customer.subscription.updated"),
        ("past_due", "customer.subscription.updated"),
        ("active", "customer.subscription.updated"),
        ("canceled", "customer.subscription.deleted"),
    ]:
        fake_stripe.set_subscription(stripe_objects.subscription(status))
        assert webhooks.post(event_type, stripe_objects.subscription(status)).status_code == 200
    # Stripe repeats an event: nothing new is news.
    webhooks.post("customer.subscription.deleted", stripe_objects.subscription("canceled"))

    assert receiver.events() == [
        "reader.trial_started",
        "reader.paid",
        "reader.past_due",
        "reader.canceled",
    ]
    assert {item.event["data"]["reader"]["id"] for item in receiver.received} == {reader.pk}
    assert receiver.received[1].event["data"]["reader"]["membership"]["status"] == "active"


def test_reader_created_unsubscribed_resubscribed_updated(
    receiver,
    endpoint,
    django_capture_on_commit_callbacks,
    reader_test_settings,  # noqa: F811
):
    with django_capture_on_commit_callbacks(execute=True):
        reader = do_grant_complimentary(email="new@example.com", name="New")
    with django_capture_on_commit_callbacks(execute=True):
        do_set_email_status(reader, Subscriber.EmailStatus.UNSUBSCRIBED)
    with django_capture_on_commit_callbacks(execute=True):
        do_set_email_status(reader, Subscriber.EmailStatus.ACTIVE)
    with django_capture_on_commit_callbacks(execute=True):
        do_update_reader(reader.pk, {"time_zone": "Asia/Tokyo", "name": "Newer"})
    with django_capture_on_commit_callbacks(execute=True):
        do_update_reader(reader.pk, {"name": "Newer"})  # no change: no event

    assert receiver.events() == [
        "reader.created",
        "reader.updated",  # the complimentary membership granted with it
        "reader.unsubscribed",
        "reader.resubscribed",
        "reader.updated",
    ]
    granted = receiver.received[1].event["data"]
    assert (granted["changed"], granted["reader"]["state"]) == (["complimentary"], "complimentary")
    updated = receiver.received[-1].event["data"]
    assert updated["changed"] == ["name", "time_zone"]
    assert updated["reader"]["time_zone"] == "Asia/Tokyo"


def test_article_published_by_hand_and_on_schedule(
    receiver,
    endpoint,
    django_capture_on_commit_callbacks,
    clock,
    reader_test_settings,  # noqa: F811
):
    draft = make_article(status=Article.Status.DRAFT, title="By hand")
    later = make_article(
        status=Article.Status.SCHEDULED,
        title="Scheduled",
        published_at=timezone.now() + datetime.timedelta(minutes=5),
    )
    with django_capture_on_commit_callbacks(execute=True):
        draft.publish()
    clock.shift(datetime.timedelta(minutes=6))
    with django_capture_on_commit_callbacks(execute=True):
        assert Article.objects.publish_due() == [later.pk]
    with django_capture_on_commit_callbacks(execute=True):
        draft.title = "By hand, edited"
        draft.save()  # still published: not news

    assert receiver.events() == ["article.published", "article.published"]
    titles = [item.event["data"]["article"]["title"] for item in receiver.received]
    assert titles == ["By hand", "Scheduled"]


def test_edition_sent_once_per_zone_when_its_last_digest_has_gone(
    receiver,
    endpoint,
    django_capture_on_commit_callbacks,
    clock,
    reader_test_settings,  # noqa: F811
):
    moment = timezone.now()
    edition = Edition.objects.create(
        date=MONDAY, cutoff=moment, status=Edition.Status.SENDING, send_started_at=moment
    )
    slots = {}
    for zone in ("Europe/Paris", "Asia/Tokyo"):
        slots[zone] = SendSlot.objects.create(
            date=MONDAY, time_zone=zone, send_time=datetime.time(6), scheduled_for=moment,
            outcome=SendSlot.Outcome.QUEUED, readers=2,
        )  # fmt: skip
        for status in (Delivery.Status.SENT, Delivery.Status.QUEUED):
            Delivery.objects.create(
                edition=edition, subscriber=make_subscriber(), status=status, time_zone=zone,
                scheduled_for=moment, sent_at=moment if status == Delivery.Status.SENT else None,
            )  # fmt: skip
    clock.shift(datetime.timedelta(minutes=3))

    with django_capture_on_commit_callbacks(execute=True):
        assert edition_sends.do_emit_edition_sends() == 0  # both still sending
    Delivery.objects.filter(time_zone="Asia/Tokyo", status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.FAILED
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert edition_sends.do_emit_edition_sends() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert edition_sends.do_emit_edition_sends() == 0  # told once

    [sent] = receiver.received
    data = sent.event["data"]
    assert (data["time_zone"], data["delivered"], data["failed"]) == ("Asia/Tokyo", 1, 1)
    assert data["edition"]["date"] == MONDAY.isoformat()
    assert data["duration_seconds"] == 0.0


def test_no_endpoint_no_event(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        do_grant_complimentary(email="quiet@example.com")
    assert not WebhookEvent.objects.exists()


def test_an_endpoint_gets_only_the_events_it_chose(receiver, django_capture_on_commit_callbacks):
    make_endpoint(receiver.url, ["article.published"])
    with django_capture_on_commit_callbacks(execute=True):
        do_grant_complimentary(email="skip@example.com")
    assert not WebhookDelivery.objects.exists()


def test_a_change_that_rolls_back_leaves_no_event(receiver, endpoint):
    with pytest.raises(RuntimeError), transaction.atomic():
        make_subscriber()
        raise RuntimeError("the request failed after the save")
    assert not WebhookEvent.objects.exists()
    assert receiver.received == []


def test_a_change_of_sections_days_or_format_is_a_reader_updated_event(
    receiver,
    endpoint,
    django_capture_on_commit_callbacks,
    reader_test_settings,  # noqa: F811
):
    world = Section.objects.create(name="World", slug="world")
    with django_capture_on_commit_callbacks(execute=True):
        reader = make_subscriber("chooser@example.com", membership=None)
    with django_capture_on_commit_callbacks(execute=True):
        do_update_reader(reader.pk, {"sections": [world.slug]})
    with django_capture_on_commit_callbacks(execute=True):
        do_update_reader(reader.pk, {"days": ["mon", "wed"], "format": "headlines"})
    with django_capture_on_commit_callbacks(execute=True):
        do_update_reader(reader.pk, {"days": ["mon", "wed"]})  # no change: no event

    assert receiver.events() == ["reader.created", "reader.updated", "reader.updated"]
    first, second = (item.event["data"] for item in receiver.received[1:])
    assert (first["changed"], first["reader"]["sections"]) == (["sections"], ["world"])
    assert second["changed"] == ["days", "format"]
    assert (second["reader"]["days"], second["reader"]["format"]) == (["mon", "wed"], "headlines")


def test_a_reader_is_serialised_only_for_an_endpoint_that_wants_the_event(receiver, monkeypatch):
    made = []

    def reader_data(reader):
        made.append(reader.email)
        return serializers.reader_data(reader)

    monkeypatch.setattr(receivers, "reader_data", reader_data)
    make_subscriber("nobody-listens@example.com", membership=Membership.Status.TRIALING)
    make_endpoint(receiver.url, ["article.published"])
    make_subscriber("not-this-event@example.com", membership=Membership.Status.TRIALING)
    assert made == []
    assert not WebhookEvent.objects.exists()

    make_endpoint(receiver.url, ["reader.created", "reader.trial_started"])
    make_subscriber("wanted@example.com", membership=Membership.Status.TRIALING)
    # Once for reader.created, once for the trial (the membership's reader, read anew).
    assert made == ["wanted@example.com", "wanted@example.com"]
    assert sorted(WebhookEvent.objects.values_list("type", flat=True)) == [
        "reader.created",
        "reader.trial_started",
    ]
