"""/stripe/webhook/: real signatures on the raw body, each event stored and handled once."""

import json
import time

import pytest
from django.test import Client

from subscriptions import webhooks as webhook_code
from subscriptions.models import Membership, ReaderEmail, StripeEvent
from subscriptions.tests import stripe_objects
from subscriptions.tests.factories import make_stripe_member
from testing.admin import run_admin_action
from testing.concurrency import run_at_once

pytestmark = pytest.mark.django_db

SUB_PATH = r"/v1/subscriptions/\w+"


@pytest.fixture
def member():
    return make_stripe_member(Membership.Status.INCOMPLETE, email="ada@example.com", name="Ada")


@pytest.mark.faults
def test_a_forged_signature_is_refused_without_a_write(webhooks, fake_stripe, member):
    payload = json.dumps(stripe_objects.event("customer.subscription.created", {"id": "sub_x"}))

    response = webhooks.post_raw(payload, stripe_objects.signed(payload, secret="whsec_forged"))

    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0
    assert len(fake_stripe.mock.calls) == 0


@pytest.mark.faults
def test_a_tampered_body_is_refused(webhooks, member):
    payload = json.dumps(stripe_objects.event("invoice.paid", {"id": "in_1"}))
    header = stripe_objects.signed(payload)

    response = webhooks.post_raw(payload.replace("in_1", "in_2"), header)

    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


@pytest.mark.faults
def test_an_old_signature_is_refused_as_a_replay(webhooks, member):
    response = webhooks.post(
        "customer.subscription.updated",
        stripe_objects.subscription(),
        timestamp=int(time.time()) - 600,
    )
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


@pytest.mark.faults
def test_a_missing_signature_or_a_body_that_is_not_an_event_is_refused(webhooks):
    assert webhooks.post_raw("{}", None).status_code == 400
    assert webhooks.post_raw("[1, 2]", stripe_objects.signed("[1, 2]")).status_code == 400
    assert StripeEvent.objects.count() == 0


def test_the_webhook_answers_only_post(client):
    assert client.get("/stripe/webhook/").status_code == 405


@pytest.mark.faults
def test_an_event_type_we_do_not_handle_is_stored_and_answered_200(webhooks):
    response = webhooks.post("customer.created", stripe_objects.load("customer"))

    assert response.status_code == 200
    event = StripeEvent.objects.get()
    assert (event.type, event.status) == ("customer.created", StripeEvent.Status.IGNORED)


@pytest.mark.faults
def test_a_replayed_event_is_handled_once(webhooks, fake_stripe, member, mailoutbox):
    fake_stripe.set_subscription(stripe_objects.subscription("trialing"))
    sub = stripe_objects.subscription("trialing")

    first = webhooks.post("customer.subscription.created", sub, event_id="evt_once")
    second = webhooks.post("customer.subscription.created", sub, event_id="evt_once")

    assert first.status_code == second.status_code == 200
    assert second.content == b"Duplicate event."
    assert StripeEvent.objects.get().status == StripeEvent.Status.PROCESSED
    assert fake_stripe.count("GET", SUB_PATH) == 1
    assert len(mailoutbox) == 1  # the welcome, once


@pytest.mark.faults
def test_a_failure_is_recorded_answered_500_and_retried_by_stripe(webhooks, fake_stripe, member):
    fake_stripe.set_subscription(stripe_objects.subscription("trialing"))
    fake_stripe.fail_next = 10  # Stripe's API is down while we handle the event
    sub = stripe_objects.subscription("trialing")

    response = webhooks.post("customer.subscription.created", sub, event_id="evt_retry")

    assert response.status_code == 500
    event = StripeEvent.objects.get()
    assert event.status == StripeEvent.Status.FAILED
    assert "APIError" in event.error
    member.membership.refresh_from_db()
    assert member.membership.status == Membership.Status.INCOMPLETE

    fake_stripe.fail_next = 0
    response = webhooks.post("customer.subscription.created", sub, event_id="evt_retry")

    assert response.status_code == 200
    event.refresh_from_db()
    assert (event.status, event.attempts, event.error) == (StripeEvent.Status.PROCESSED, 2, "")
    member.membership.refresh_from_db()
    assert member.membership.status == Membership.Status.TRIALING


def test_staff_retry_failed_events_from_the_admin(
    admin_client, webhooks, fake_stripe, member, django_capture_on_commit_callbacks
):
    fake_stripe.set_subscription(stripe_objects.subscription("active"))
    fake_stripe.fail_next = 10
    webhooks.post("customer.subscription.updated", stripe_objects.subscription("active"))
    event = StripeEvent.objects.get(status=StripeEvent.Status.FAILED)
    fake_stripe.fail_next = 0

    with django_capture_on_commit_callbacks(execute=True):
        response = run_admin_action(admin_client, "retry_events", [event], follow=True)

    assert "1 retried successfully" in response.content.decode()
    event.refresh_from_db()
    assert event.status == StripeEvent.Status.PROCESSED
    assert Membership.objects.get().status == Membership.Status.ACTIVE
    # A processed event is not handled again by a second retry.
    assert webhook_code.retry(event.pk) is None


def test_an_event_for_someone_else_is_processed_with_a_note(webhooks, fake_stripe):
    stranger = stripe_objects.subscription("active", id="sub_other", customer="cus_other")
    stranger["metadata"] = {}
    fake_stripe.set_subscription(stranger)

    response = webhooks.post("customer.subscription.updated", stranger)

    assert response.status_code == 200
    event = StripeEvent.objects.get()
    assert event.note == "no reader for this subscription"
    assert Membership.objects.count() == 0


@pytest.mark.faults
@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_are_handled_once(fake_stripe):
    make_stripe_member(Membership.Status.INCOMPLETE, email="ada@example.com")
    fake_stripe.set_subscription(stripe_objects.subscription("trialing"))
    payload = json.dumps(
        stripe_objects.event(
            "customer.subscription.created", stripe_objects.subscription(), event_id="evt_twin"
        )
    )
    header = stripe_objects.signed(payload)

    def deliver() -> int:
        return stripe_objects.post_webhook(Client(), payload, header).status_code

    statuses = run_at_once(deliver, times=4)

    # One handles it; a twin that arrives while it is being handled is told
    # to come back (409), one that arrives after gets 200: never two handlings.
    assert statuses.count(200) >= 1
    assert set(statuses) <= {200, 409}
    assert StripeEvent.objects.count() == 1
    assert StripeEvent.objects.get().status == StripeEvent.Status.PROCESSED
    assert ReaderEmail.objects.filter(kind=ReaderEmail.Kind.WELCOME).count() == 1
    assert Membership.objects.get().status == Membership.Status.TRIALING


@pytest.mark.django_db
def test_a_duplicate_of_an_event_still_being_handled_is_not_acknowledged(client, fake_stripe):
    payload = json.dumps(stripe_objects.event("invoice.paid", {"id": "in_1"}, event_id="evt_busy"))
    StripeEvent.objects.create(
        event_id="evt_busy", type="invoice.paid", payload=json.loads(payload)
    )  # PROCESSING: its handler is running, or died with its process

    response = stripe_objects.post_webhook(client, payload, stripe_objects.signed(payload))

    assert response.status_code == 409
    assert StripeEvent.objects.get().status == StripeEvent.Status.PROCESSING
