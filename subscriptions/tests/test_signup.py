"""Signup: the form emails a link; the link makes the reader, one customer, a Checkout Session."""

import pytest
from django.test import Client

from subscriptions.models import Membership, Subscriber
from subscriptions.sessions import SESSION_KEY
from subscriptions.tests.factories import make_stripe_member, make_subscriber
from subscriptions.tests.signup_flow import ask_to_subscribe, link_in, sign_up

pytestmark = pytest.mark.django_db

FORM = {"email": "Ada@Example.com", "name": "Ada", "time_zone": "Europe/Paris"}


def test_signup_creates_the_reader_the_customer_and_a_trial_checkout(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    response = sign_up(client, FORM, mailoutbox, django_capture_on_commit_callbacks)

    assert response.status_code == 303
    assert response["Location"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    reader = Subscriber.objects.get()
    assert (reader.email, reader.name, reader.time_zone) == (
        "Ada@example.com",
        "Ada",
        "Europe/Paris",
    )
    assert not reader.is_entitled  # nothing until Stripe says the trial started

    [customer] = fake_stripe.requests("POST", "/v1/customers")
    assert customer["email"] == "Ada@example.com"
    assert customer["metadata[subscriber_id]"] == str(reader.pk)
    assert customer["_idempotency_key"]
    assert (reader.membership.stripe_customer_id or "").startswith("cus_test")

    [session] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert session["mode"] == "subscription"
    assert session["customer"] == reader.membership.stripe_customer_id
    assert session["client_reference_id"] == str(reader.pk)
    assert session["line_items[0][price]"] == "price_1SbAnnual46usd"
    assert session["line_items[0][quantity]"] == "1"
    assert session["subscription_data[trial_period_days]"] == "14"
    assert session["subscription_data[metadata][subscriber_id]"] == str(reader.pk)
    assert session["success_url"] == (
        "http://127.0.0.1:8000/subscribe/success/?session_id={CHECKOUT_SESSION_ID}"
    )
    assert session["cancel_url"] == "http://127.0.0.1:8000/?checkout=cancelled#signup"
    assert "payment_method_collection" not in session
    assert session["_idempotency_key"].startswith("briefing-")


@pytest.mark.faults
def test_a_second_signup_reuses_the_reader_and_the_customer(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    sign_up(client, FORM, mailoutbox, capture)
    answer = ask_to_subscribe(client, {**FORM, "email": "ada@example.com", "name": "Eve"}, capture)

    assert answer.status_code == 200
    assert Subscriber.objects.get().name == "Ada"  # a public form does not rename a reader
    with capture(execute=True):
        again = client.post(link_in(mailoutbox[-1]), {"name": "Ada", "time_zone": "Europe/Paris"})
    assert again.status_code == 303
    assert len(fake_stripe.requests("POST", "/v1/customers")) == 1
    # This browser's checkout is still open: it is resumed, not doubled.
    [session] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert session["customer"]
    resumed = client.session["checkout_session_id"]
    assert fake_stripe.requests("GET", f"/v1/checkout/sessions/{resumed}")


def test_trial_without_card_collects_one_only_if_needed_and_cancels_without_it(
    client, fake_stripe, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.TRIAL_REQUIRES_CARD = False
    sign_up(client, FORM, mailoutbox, django_capture_on_commit_callbacks)

    [session] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert session["payment_method_collection"] == "if_required"
    assert session["subscription_data[trial_settings][end_behavior][missing_payment_method]"] == (
        "cancel"
    )


def test_invalid_input_is_refused_clearly_and_writes_nothing(client, fake_stripe):
    response = client.post("/subscribe/", {"email": "not-an-address", "time_zone": "Mars/Olympus"})

    assert response.status_code == 400
    content = response.content.decode()
    assert "Enter a valid email address." in content
    assert "Mars/Olympus is not a known time zone." in content
    assert Subscriber.objects.count() == 0
    assert len(fake_stripe.mock.calls) == 0


def test_a_known_but_lapsed_reader_gets_the_same_answer_as_a_new_one(
    fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    make_subscriber("lapsed@example.com", membership=Membership.Status.CANCELED)
    capture = django_capture_on_commit_callbacks

    known = ask_to_subscribe(Client(), {**FORM, "email": "lapsed@example.com"}, capture)
    new = ask_to_subscribe(Client(), {**FORM, "email": "new@example.com"}, capture)

    assert known.status_code == new.status_code == 200
    assert "Check your inbox" in known.content.decode()
    assert "Check your inbox" in new.content.decode()
    # Both are offered to continue, by email to the address.
    assert all("/subscribe/continue/" in mail.body for mail in mailoutbox)


def test_a_reader_with_a_live_membership_is_offered_sign_in_not_a_second_checkout(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    make_stripe_member(Membership.Status.ACTIVE, email="grace@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/subscribe/", {**FORM, "email": "grace@example.com"})

    assert response.status_code == 200
    assert "Check your inbox" in response.content.decode()
    assert len(fake_stripe.mock.calls) == 0
    [mail] = mailoutbox
    assert mail.to == ["grace@example.com"]
    assert "/signin/" in mail.body


@pytest.mark.faults
def test_signups_are_rate_limited_per_address(client, fake_stripe):
    for _ in range(5):
        assert client.post("/subscribe/", FORM).status_code == 200
    assert client.post("/subscribe/", FORM).status_code == 429


@pytest.mark.faults
def test_signups_are_rate_limited_per_ip(client, fake_stripe):
    for number in range(20):
        client.post("/subscribe/", {**FORM, "email": f"reader{number}@example.com"})
    response = client.post("/subscribe/", {**FORM, "email": "one-more@example.com"})
    assert response.status_code == 429
    assert not Subscriber.objects.filter(email="one-more@example.com").exists()


@pytest.mark.faults
def test_stripe_down_loses_no_reader_and_says_so(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    ask_to_subscribe(client, FORM, capture)
    fake_stripe.fail_next = 10  # more than the SDK's retries

    with capture(execute=True):
        response = client.post(link_in(mailoutbox[-1]), {"name": "Ada", "time_zone": "UTC"})

    assert response.status_code == 303
    assert response["Location"] == "/account/"
    reader = Subscriber.objects.get(email="Ada@example.com")
    assert client.session[SESSION_KEY] == reader.pk
    account = client.get("/account/").content.decode()
    assert "nothing was charged" in account and "try again" in account
    assert "Start my free 14-day trial" in account
    # From the account, signed in, the retry goes straight to Checkout.
    assert client.post("/account/checkout/").status_code == 303


def test_without_stripe_keys_outside_the_demo_signups_are_closed(client, settings):
    settings.STRIPE_SECRET_KEY = None
    settings.DEBUG = False

    response = client.post("/subscribe/", FORM)

    assert response.status_code == 503
    assert "not open yet" in response.content.decode()


def test_the_landing_page_shows_the_offer_the_form_and_the_faq(client):
    content = client.get("/").content.decode()
    assert "$46 a year" in content and "less than $4 a month" in content
    assert "free 14-day trial" in content
    assert "Start my free 14-day trial</button>" in content
    assert 'action="/subscribe/"' in content
    assert 'name="time_zone"' in content and "data-detect-time-zone" in content
    assert "When is my card charged?" in content
    assert "How do I cancel?" in content
