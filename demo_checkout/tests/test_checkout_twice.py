"""Back from the checkout and the form again: the same checkout, never a second welcome."""

import re

import pytest
from django.test import Client

from demo_checkout import local_stripe
from subscriptions import signin
from subscriptions.actions.checkout import do_start_checkout
from subscriptions.models import Membership, Subscriber
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [
    pytest.mark.django_db(transaction=False),
    pytest.mark.clock(MONDAY_BEFORE_SEND),
    pytest.mark.usefixtures("local_billing"),
]


@pytest.fixture
def local_billing(settings):
    settings.BILLING_BACKEND = "demo_checkout.billing.LocalBilling"


def start(browser: Client) -> str:
    """Open the emailed signup link and press its button: the checkout's URL."""
    url = signin.signup_url("ada@example.com", "Ada", "Europe/Paris", None)
    browser.get(re.sub(r"^https?://[^/]+", "", url), follow=True)
    response = browser.post("/subscribe/continue/", {"name": "Ada", "time_zone": "Europe/Paris"})
    assert response.status_code == 303, response.content.decode()
    return response["Location"]


def session_id(checkout_url: str) -> str:
    found = re.search(r"/(cs_test_[^/]+)/", checkout_url)
    assert found is not None, checkout_url
    return found.group(1)


def test_back_and_the_button_again_resumes_the_same_checkout():
    browser = Client()
    first = start(browser)

    # Back to the page with the button, and press it again.
    again = browser.post("/subscribe/continue/", {"name": "Ada", "time_zone": "Europe/Paris"})

    assert again.status_code == 303
    assert again["Location"] == first


def test_back_after_finishing_says_you_already_have_a_membership(
    django_capture_on_commit_callbacks,
):
    browser = Client()
    checkout = start(browser)
    with django_capture_on_commit_callbacks(execute=True):
        local_stripe.complete_checkout(session_id(checkout))
    assert Membership.objects.get().status == Membership.Status.TRIALING

    again = browser.post(
        "/subscribe/continue/", {"name": "Ada", "time_zone": "Europe/Paris"}, follow=True
    )

    assert again.redirect_chain[-1][0] == "/account/"
    assert "You already have a membership" in again.content.decode()


def test_an_older_checkout_finished_last_is_not_a_second_welcome(
    django_capture_on_commit_callbacks,
):
    browser = Client()
    older = session_id(start(browser))
    # A second checkout of the same reader, started elsewhere (another device).
    reader = Subscriber.objects.get()
    newer = do_start_checkout(reader).checkout_session_id
    assert newer is not None
    assert newer != older
    with django_capture_on_commit_callbacks(execute=True):
        local_stripe.complete_checkout(newer)
        local_stripe.complete_checkout(older)

    page = browser.get(f"/subscribe/success/?session_id={older}")

    text = page.content.decode()
    assert "You already have a membership" in text
    assert "Your free trial has started" not in text
    assert "nothing is charged for it" in text
