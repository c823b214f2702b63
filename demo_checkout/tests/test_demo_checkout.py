"""The keyless demo: the local test checkout walks the whole journey through the real code."""

import re

import pytest

from demo_checkout import local_stripe
from demo_checkout.billing import LocalBilling
from demo_checkout.models import LocalStripeObject
from subscriptions import stripe_api
from subscriptions.models import Membership, StripeEvent
from subscriptions.tests.signup_flow import link_in, sign_up

pytestmark = pytest.mark.django_db

FORM = {"email": "newcomer@example.com", "name": "Newcomer", "time_zone": "Europe/Lisbon"}


def test_without_a_key_in_debug_the_local_checkout_answers_every_billing_call(demo):
    assert demo.LOCAL_CHECKOUT_BACKEND == "demo_checkout.billing.LocalBilling"
    assert type(stripe_api.backend()) is LocalBilling
    assert stripe_api.uses_local_checkout()
    assert stripe_api.billing_configured()
    assert stripe_api.webhook_secret() == local_stripe.WEBHOOK_SECRET
    assert stripe_api.price_id() == local_stripe.PRICE_ID


def test_sign_up_pay_get_welcomed_and_see_the_account(
    demo, client, smtp_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/subscribe/", FORM).status_code == 200
    [signup_link] = smtp_server.received()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(link_in(signup_link), {"name": "Newcomer", "time_zone": "UTC"})
    assert response.status_code == 303
    checkout_url = response["Location"]
    assert re.fullmatch(r"http://127\.0\.0\.1:8000/test-checkout/cs_test_local_\w+/", checkout_url)

    page = client.get(checkout_url)
    assert "Local test checkout" in page.content.decode()
    assert "nothing is charged" in page.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        paid = client.post(checkout_url, {"action": "pay"})
    assert paid.status_code == 303
    assert "/subscribe/success/?session_id=cs_test_local_" in paid["Location"]

    # Stripe's events went through the real webhook code, signed.
    assert set(StripeEvent.objects.values_list("type", "status")) == {
        ("customer.subscription.created", StripeEvent.Status.PROCESSED),
        ("checkout.session.completed", StripeEvent.Status.PROCESSED),
    }
    membership = Membership.objects.get()
    assert membership.status == Membership.Status.TRIALING
    assert membership.subscriber.is_entitled

    with django_capture_on_commit_callbacks(execute=True):
        success = client.get(paid["Location"].removeprefix("http://127.0.0.1:8000"))
    assert "Your free trial has started" in success.content.decode()

    welcome = smtp_server.received()[-1]
    assert welcome.rcpt_tos == ["newcomer@example.com"]
    assert "Your first briefing arrives on" in welcome.text

    account = client.get("/account/").content.decode()
    assert "Free trial until" in account
    assert "Manage billing" in account

    # The test portal plays what Stripe would do later: a failed renewal, then the end.
    portal = client.post("/account/billing/")
    assert portal["Location"] == "http://127.0.0.1:8000/test-checkout/portal/"
    for action, subject in [
        ("trial_will_end", "will be charged"),
        ("fail_payment", "didn't go through"),
        ("cancel_now", "has ended"),
    ]:
        with django_capture_on_commit_callbacks(execute=True):
            client.post("/test-checkout/portal/", {"action": action})
        latest = smtp_server.received()[-1]
        assert subject in " ".join(str(latest.message["Subject"]).split()), action
    assert len(smtp_server.received()) == 5  # the signup link, the welcome, three more
    membership.refresh_from_db()
    assert membership.status == Membership.Status.CANCELED
    assert not StripeEvent.objects.filter(status=StripeEvent.Status.FAILED).exists()


def test_the_test_checkout_can_be_left_without_starting_anything(
    demo, client, mailoutbox, django_capture_on_commit_callbacks
):
    checkout_url = sign_up(client, FORM, mailoutbox, django_capture_on_commit_callbacks)["Location"]
    response = client.post(checkout_url, {"action": "cancel"})
    assert response["Location"] == "http://127.0.0.1:8000/?checkout=cancelled#signup"
    assert "nothing has started" in client.get("/?checkout=cancelled").content.decode()
    assert Membership.objects.get().status == Membership.Status.INCOMPLETE


def test_the_test_checkout_does_not_exist_with_stripe_keys(client):
    LocalStripeObject.objects.create(id="cs_test_local_x", object="checkout.session", data={})
    assert client.get("/test-checkout/cs_test_local_x/").status_code == 404
    assert client.get("/test-checkout/portal/").status_code == 404


def test_the_test_portal_offers_to_undo_a_cancel_only_when_there_is_one(
    demo, client, mailoutbox, django_capture_on_commit_callbacks
):
    checkout_url = sign_up(client, FORM, mailoutbox, django_capture_on_commit_callbacks)["Location"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(checkout_url, {"action": "pay"})

    portal = client.get("/test-checkout/portal/").content.decode()
    assert "Cancel at the end of the period" in portal
    assert "Don&#x27;t cancel after all" not in portal

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/test-checkout/portal/", {"action": "cancel"})
    portal = client.get("/test-checkout/portal/").content.decode()
    assert "Don&#x27;t cancel after all" in portal
    assert "Cancel at the end of the period" not in portal
