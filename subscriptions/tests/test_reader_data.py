"""/account/data/: a reader downloads what we hold, or deletes it all (and stops the billing)."""

import json

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from stripe import _http_client

from delivery.models import Delivery
from newsletter.models import Edition
from subscriptions.models import Membership, ReaderEmail, StripeEvent, Subscriber
from subscriptions.tests import stripe_objects
from subscriptions.tests.factories import make_stripe_member, make_subscriber
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

SUB = "sub_1SbTrial0000000000000001"
CUSTOMER = "cus_T4kQ8Zr2mXv1Ab"
SUB_URL = f"{stripe_objects.API_BASE}/v1/subscriptions/{SUB}"


@pytest.fixture
def reader():
    reader = make_stripe_member(Membership.Status.ACTIVE, email="ada@example.com", name="Ada")
    edition = Edition.objects.create(date="2026-11-30", cutoff="2026-11-30T10:00Z")
    Delivery.objects.create(edition=edition, subscriber=reader, status=Delivery.Status.SENT)
    ReaderEmail.objects.create(subscriber=reader, kind=ReaderEmail.Kind.WELCOME, cause=SUB)
    return reader


@pytest.fixture
def signed_in(client, reader):
    session = client.session
    session["subscriber_id"] = reader.pk
    session.save()
    return client


def sign_in_client(reader) -> Client:
    client = Client(enforce_csrf_checks=True)
    session = client.session
    session["subscriber_id"] = reader.pk
    session.save()
    return client


def test_the_page_needs_sign_in_and_links_from_the_account(client, signed_in):
    assert Client().get("/account/data/").status_code == 302
    assert "/account/data/" in signed_in.get("/account/").content.decode()
    page = signed_in.get("/account/data/").content.decode()
    assert "Download my data" in page and "Delete my account" in page
    assert "Stripe keeps its own record" in page


def test_export_is_a_download_of_what_we_hold(signed_in, reader):
    response = signed_in.post("/account/data/export/")

    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["reader"]["email"] == "ada@example.com"
    assert (data["reader"]["sections"], data["reader"]["format"]) == (None, "full")
    assert data["reader"]["days"] == ["mon", "tue", "wed", "thu", "fri"]
    assert data["membership"]["status"] == "active"
    assert data["membership"]["stripe_subscription_id"] == SUB
    assert data["digests"] == [{"edition": "2026-11-30", "status": "sent", "sent_at": None}]
    assert [e["kind"] for e in data["emails"]] == ["welcome"]
    # Only the signed-in reader's data, and never by GET.
    assert signed_in.get("/account/data/export/").status_code == 405
    assert Client().post("/account/data/export/").status_code == 302


def test_export_and_delete_refuse_a_post_without_the_csrf_token(reader):
    client = sign_in_client(reader)
    assert client.post("/account/data/export/").status_code == 403
    assert client.post("/account/data/delete/", {"confirm": "delete"}).status_code == 403
    assert Subscriber.objects.filter(pk=reader.pk).exists()


def test_delete_cancels_at_stripe_then_deletes_everything(signed_in, reader, fake_stripe):
    cancelled = stripe_objects.subscription("canceled")
    fake_stripe.mock.add("DELETE", SUB_URL, json=cancelled)
    StripeEvent.objects.create(
        event_id="evt_1",
        type="invoice.paid",
        payload={"data": {"object": {"customer": CUSTOMER, "customer_email": "ada@example.com"}}},
    )
    StripeEvent.objects.create(
        event_id="evt_other", type="invoice.paid", payload={"data": {"object": {"customer": "x"}}}
    )
    LogEntry.objects.log_actions(
        user_id=make_staff().pk, queryset=[reader], action_flag=CHANGE, change_message="Edited"
    )

    response = signed_in.post("/account/data/delete/", {"confirm": "delete"})

    assert response.status_code == 200
    assert "deleted" in response.content.decode()
    assert fake_stripe.count("DELETE", rf"/v1/subscriptions/{SUB}") == 1
    assert not Subscriber.objects.exists()
    assert not Membership.objects.exists()
    assert not Delivery.objects.exists()
    assert not ReaderEmail.objects.exists()
    assert list(StripeEvent.objects.values_list("event_id", flat=True)) == ["evt_other"]
    ct = ContentType.objects.get_for_model(Subscriber)
    assert not LogEntry.objects.filter(content_type=ct).exists()
    # Signed out: the account page asks for sign-in again.
    assert signed_in.get("/account/").status_code == 302


def make_staff() -> User:
    return User.objects.create(username="staff", is_staff=True)


def test_delete_with_stripe_unreachable_deletes_nothing(
    signed_in, reader, fake_stripe, monkeypatch
):
    monkeypatch.setattr(_http_client.HTTPClient, "_sleep_time_seconds", lambda self, n: 0)
    fake_stripe.mock.add(
        "DELETE",
        SUB_URL,
        status=500,
        json={"error": {"type": "api_error", "message": "Boom"}},
    )

    response = signed_in.post("/account/data/delete/", {"confirm": "delete"}, follow=True)

    assert "nothing was deleted" in response.content.decode()
    assert Subscriber.objects.filter(pk=reader.pk).exists()
    assert Membership.objects.get().status == Membership.Status.ACTIVE


def test_delete_needs_the_confirmation(signed_in, reader, fake_stripe):
    response = signed_in.post("/account/data/delete/", follow=True)

    assert "Tick the box" in response.content.decode()
    assert Subscriber.objects.filter(pk=reader.pk).exists()
    assert fake_stripe.count("DELETE", r"/v1/subscriptions/.*") == 0


def test_a_reader_without_a_live_subscription_is_deleted_without_calling_stripe(
    client, fake_stripe
):
    ended = make_stripe_member(Membership.Status.CANCELED, email="gone@example.com")
    plain = make_subscriber("plain@example.com", membership=None)
    for reader in (ended, plain):
        browser = Client()
        session = browser.session
        session["subscriber_id"] = reader.pk
        session.save()
        assert browser.post("/account/data/delete/", {"confirm": "delete"}).status_code == 200

    assert not Subscriber.objects.exists()
    assert len(fake_stripe.mock.calls) == 0


def test_the_cancelled_subscriptions_webhook_after_deletion_is_harmless(
    signed_in, reader, fake_stripe, webhooks
):
    cancelled = fake_stripe.set_subscription(stripe_objects.subscription("canceled"))
    fake_stripe.mock.add("DELETE", SUB_URL, json=cancelled)
    signed_in.post("/account/data/delete/", {"confirm": "delete"})

    response = webhooks.post("customer.subscription.deleted", cancelled)

    assert response.status_code == 200
    assert StripeEvent.objects.get().note == "no reader for this subscription"
    assert not Subscriber.objects.exists()
