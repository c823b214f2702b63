"""The checkout success page: the same fulfilment as the webhook, whichever comes first."""

import pytest
from django.test import Client

from subscriptions.models import Membership, ReaderEmail, StripeEvent
from subscriptions.sessions import SESSION_KEY
from subscriptions.tests import stripe_objects
from subscriptions.tests.signup_flow import sign_up

pytestmark = pytest.mark.django_db

FORM = {"email": "ada@example.com", "name": "Ada", "time_zone": "Europe/Paris"}


@pytest.fixture
def start_checkout(client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks):
    def start() -> str:
        response = sign_up(client, FORM, mailoutbox, django_capture_on_commit_callbacks)
        return response["Location"].rsplit("/", 1)[-1]

    return start


def test_success_page_before_the_webhook_fulfils_it(
    client, fake_stripe, webhooks, mailoutbox, django_capture_on_commit_callbacks, start_checkout
):
    session_id = start_checkout()
    membership = Membership.objects.get()
    fake_stripe.complete_session(
        session_id,
        stripe_objects.subscription("trialing", customer=membership.stripe_customer_id),
    )
    mails_before = len(mailoutbox)  # the signup link

    with django_capture_on_commit_callbacks(execute=True):
        page = client.get(f"/subscribe/success/?session_id={session_id}")

    assert page.status_code == 200
    content = page.content.decode()
    assert "Welcome, Ada" in content
    assert "Your free trial has started" in content
    assert "Your first briefing arrives on" in content
    assert "See your account" in content  # signed in by the emailed link, before Checkout
    assert client.session[SESSION_KEY] == membership.subscriber_id
    membership.refresh_from_db()
    assert membership.status == Membership.Status.TRIALING

    # The webhook arrives after: same function, nothing new.
    session = fake_stripe.sessions[session_id]
    assert webhooks.post("checkout.session.completed", session).status_code == 200
    assert StripeEvent.objects.get().status == StripeEvent.Status.PROCESSED
    assert ReaderEmail.objects.count() == 1
    assert len(mailoutbox) == mails_before + 1


@pytest.mark.faults
def test_the_success_url_alone_does_not_sign_anyone_in(fake_stripe, start_checkout):
    session_id = start_checkout()
    membership = Membership.objects.get()
    fake_stripe.complete_session(
        session_id,
        stripe_objects.subscription("trialing", customer=membership.stripe_customer_id),
    )

    other_browser = Client()
    page = other_browser.get(f"/subscribe/success/?session_id={session_id}")

    assert page.status_code == 200
    assert SESSION_KEY not in other_browser.session
    # Nor does it apply the checkout: only its own browser's visit, or the webhook, does.
    membership.refresh_from_db()
    assert membership.status == Membership.Status.INCOMPLETE


def test_an_unfinished_checkout_says_so(client, fake_stripe, start_checkout):
    session_id = start_checkout()

    page = client.get(f"/subscribe/success/?session_id={session_id}")

    assert "confirming" in page.content.decode()
    assert Membership.objects.get().status == Membership.Status.INCOMPLETE


def test_an_unknown_session_is_not_found(client, fake_stripe):
    session = client.session
    session["checkout_session_id"] = "cs_test_nope"
    session.save()

    assert client.get("/subscribe/success/?session_id=cs_test_nope").status_code == 404
    assert client.get("/subscribe/success/").status_code == 404
