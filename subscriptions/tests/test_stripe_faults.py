"""Stripe faults the other reader tests do not already inject.

Re-serialised bodies, events in the order Stripe does not promise, Stripe
timing out while we re-fetch, forged completions, and signups retried after
a timeout or double-clicked. Each ends with the reader in Stripe's state,
one customer, one session and each email once.
"""

import json
import threading

import pytest
from django.db import connection
from django.test import Client
from stripe import _http_client

from subscriptions.models import Membership, ReaderEmail, StripeEvent, Subscriber
from subscriptions.sessions import EPOCH_KEY, SESSION_KEY
from subscriptions.tests import stripe_objects
from subscriptions.tests.factories import make_stripe_member

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

Status = Membership.Status


@pytest.fixture(autouse=True)
def no_retry_sleep(monkeypatch):
    """The SDK waits between its network retries; the tests need not."""
    monkeypatch.setattr(_http_client.HTTPClient, "_sleep_time_seconds", lambda self, n: 0)


@pytest.fixture
def signed_up():
    """A reader who has a Stripe customer and is at checkout: no subscription yet."""
    return make_stripe_member(Status.INCOMPLETE, email="ada@example.com", subscription_id=None)


def welcomes() -> int:
    return ReaderEmail.objects.filter(kind=ReaderEmail.Kind.WELCOME).count()


def test_a_body_re_serialised_instead_of_the_raw_bytes_is_refused(webhooks, fake_stripe, signed_up):
    """A proxy or framework that parses and re-encodes the JSON breaks the signature."""
    fake_stripe.set_subscription(stripe_objects.subscription("active"))
    invoice = fake_stripe.set_invoice(stripe_objects.invoice())
    original = json.dumps(stripe_objects.event("invoice.paid", invoice))
    header = stripe_objects.signed(original)
    reencoded = json.dumps(json.loads(original), indent=2, sort_keys=True)
    assert json.loads(reencoded) == json.loads(original)

    response = webhooks.post_raw(reencoded, header)

    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0
    # The raw bytes, as Stripe sent them, pass.
    assert webhooks.post_raw(original, header).status_code == 200


def test_invoice_paid_before_checkout_completed_ends_the_same(webhooks, fake_stripe, signed_up):
    sub = fake_stripe.set_subscription(stripe_objects.subscription("trialing"))
    session = stripe_objects.load("checkout_session_completed")
    fake_stripe.sessions[session["id"]] = session

    paid = fake_stripe.set_invoice({**stripe_objects.invoice(), "status": "paid", "amount_due": 0})
    assert webhooks.post("invoice.paid", paid).status_code == 200
    membership = Membership.objects.get()
    assert (membership.status, membership.stripe_subscription_id) == (Status.TRIALING, sub["id"])

    assert webhooks.post("checkout.session.completed", session).status_code == 200
    assert webhooks.post("customer.subscription.created", sub).status_code == 200

    membership.refresh_from_db()
    assert (membership.status, membership.stripe_subscription_id) == (Status.TRIALING, sub["id"])
    assert welcomes() == 1


def test_stripe_timing_out_during_the_re_fetch_writes_nothing_and_the_retry_succeeds(
    webhooks, fake_stripe, signed_up
):
    fake_stripe.set_subscription(stripe_objects.subscription("trialing"))
    session = stripe_objects.load("checkout_session_completed")
    fake_stripe.sessions[session["id"]] = session
    # More timeouts than the SDK's retries: the whole re-fetch fails.
    fake_stripe.time_out_next = 10

    response = webhooks.post("checkout.session.completed", session, event_id="evt_timeout")

    assert response.status_code == 500  # Stripe will send it again
    event = StripeEvent.objects.get()
    assert event.status == StripeEvent.Status.FAILED
    assert "APIConnectionError" in event.error
    membership = Membership.objects.get()
    assert (membership.status, membership.stripe_subscription_id) == (Status.INCOMPLETE, None)
    assert ReaderEmail.objects.count() == 0

    fake_stripe.time_out_next = 0
    response = webhooks.post("checkout.session.completed", session, event_id="evt_timeout")

    assert response.status_code == 200
    event.refresh_from_db()
    assert (event.status, event.attempts) == (StripeEvent.Status.PROCESSED, 2)
    membership.refresh_from_db()
    assert membership.status == Status.TRIALING
    assert welcomes() == 1


def test_a_timeout_the_sdk_retries_is_invisible(webhooks, fake_stripe, signed_up):
    fake_stripe.set_subscription(stripe_objects.subscription("active"))
    fake_stripe.time_out_next = 1  # one slow answer; the SDK's retry gets through

    response = webhooks.post("customer.subscription.updated", stripe_objects.subscription())

    assert response.status_code == 200
    assert Membership.objects.get().status == Status.ACTIVE


def test_a_forged_checkout_completion_changes_nothing(webhooks, fake_stripe, signed_up):
    """A completion event (validly signed: a leaked secret, a replay) that Stripe does not back.

    The handler re-fetches the session: Stripe says it is still open, so the
    event's claims (complete, a subscription) are not believed.
    """
    open_session = stripe_objects.load("checkout_session_open", customer="cus_T4kQ8Zr2mXv1Ab")
    fake_stripe.sessions[open_session["id"]] = open_session
    forged = {
        **open_session,
        "status": "complete",
        "payment_status": "paid",
        "subscription": "sub_forged",
    }

    response = webhooks.post("checkout.session.completed", forged)

    assert response.status_code == 200
    assert StripeEvent.objects.get().note == "no reader for this session"
    membership = Membership.objects.get()
    assert (membership.status, membership.stripe_subscription_id) == (Status.INCOMPLETE, None)
    assert not signed_up.is_entitled
    assert welcomes() == 0
    assert fake_stripe.count("GET", r"/v1/subscriptions/.*") == 0


def test_a_forged_session_id_on_the_success_page_signs_nobody_in(client, fake_stripe, signed_up):
    response = client.get("/subscribe/success/", {"session_id": "cs_test_forged"})

    assert response.status_code == 200  # a calm page, showing nothing
    assert len(fake_stripe.mock.calls) == 0  # not this browser's checkout: Stripe is not asked
    assert client.get("/account/").status_code == 302  # still signed out


def signed_in(reader: Subscriber) -> Client:
    browser = Client()
    session = browser.session
    session[SESSION_KEY] = reader.pk
    session[EPOCH_KEY] = reader.session_epoch
    session.save()
    return browser


def test_checkout_creation_retried_after_a_timeout_makes_one_customer_and_one_session(
    fake_stripe, signed_up, settings
):
    # Without the one-trial check's own call to Stripe, the session request is the first.
    settings.ONE_TRIAL_PER_READER = False
    client = signed_in(signed_up)
    # Stripe does not answer the session request in time; the SDK retries it
    # with the same idempotency key, which Stripe answers with the one session
    # the first attempt may have created.
    fake_stripe.time_out_next = 1

    response = client.post("/account/checkout/")

    assert response.status_code == 303
    assert Subscriber.objects.count() == 1
    assert fake_stripe.requests("POST", "/v1/customers") == []  # the customer is reused
    attempts = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert len(attempts) == 2  # the one that timed out and the retry
    assert len({a["_idempotency_key"] for a in attempts}) == 1
    assert attempts[0]["customer"] == "cus_T4kQ8Zr2mXv1Ab"

    # The reader, impatient, submits again: the same intent, the same key.
    client.post("/account/checkout/")
    keys = {a["_idempotency_key"] for a in fake_stripe.requests("POST", "/v1/checkout/sessions")}
    assert len(keys) == 1


def test_stripe_timing_out_at_signup_then_the_retry_reuses_the_customer(fake_stripe):
    reader = Subscriber.objects.create(email="ada@example.com")
    client = signed_in(reader)  # by the emailed signup link
    fake_stripe.time_out_next = 10  # customer creation times out, retries too

    failed = client.post("/account/checkout/")
    assert (failed.status_code, failed["Location"]) == (303, "/account/")  # saying so, signed in
    assert Subscriber.objects.count() == 1  # the reader is kept, to try again
    # Nothing half-written: no membership row claims a customer.
    assert not Membership.objects.exclude(stripe_customer_id=None).exists()

    fake_stripe.time_out_next = 0
    answer = client.post("/account/checkout/")
    assert answer["Location"].startswith("https://checkout.stripe.com/")
    customers = fake_stripe.requests("POST", "/v1/customers")
    assert len(customers) == 4  # three timed out (the SDK's retries), one answered
    # Every attempt at the one customer carried the same idempotency key, so
    # even an attempt Stripe did complete behind the timeout is not a second.
    assert len({c["_idempotency_key"] for c in customers}) == 1
    assert (Membership.objects.get().stripe_customer_id or "").startswith("cus_test")


@pytest.mark.django_db(transaction=True)
def test_a_double_clicked_subscribe_makes_one_customer(fake_stripe):
    reader = Subscriber.objects.create(email="ada@example.com")
    barrier = threading.Barrier(2)
    answers = []

    def click():
        browser = signed_in(reader)
        barrier.wait()
        try:
            answers.append(browser.post("/account/checkout/").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == [303, 303]
    assert Subscriber.objects.count() == 1
    assert len(fake_stripe.requests("POST", "/v1/customers")) == 1
    sessions = fake_stripe.requests("POST", "/v1/checkout/sessions")
    # Both clicks ask for the session under one key: Stripe answers both
    # with the same session (the fake, which keeps no keys, makes two).
    assert len({s["_idempotency_key"] for s in sessions}) == 1
