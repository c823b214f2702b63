"""Paying for a checkout must not open someone else's account.

Anyone can type a lapsed reader's address into the signup form; completing
that checkout with their own card must not sign them in as that reader.
"""

import pytest

from demo_checkout.tests.test_demo_checkout import FORM
from subscriptions.models import Membership
from subscriptions.tests.factories import make_subscriber

pytestmark = pytest.mark.django_db


def check_out(client, form: dict, capture) -> str:
    checkout_url = client.post("/subscribe/", form)["Location"]
    with capture(execute=True):
        paid = client.post(checkout_url, {"action": "pay"})
    with capture(execute=True):
        success = client.get(paid["Location"].removeprefix("http://127.0.0.1:8000"))
    return success.content.decode()


def test_a_checkout_for_a_lapsed_readers_address_does_not_sign_in(
    demo,
    client,
    django_capture_on_commit_callbacks,
):
    victim = make_subscriber(FORM["email"], membership=Membership.Status.CANCELED)
    Membership.objects.filter(subscriber=victim).update(
        stripe_customer_id="cus_old", stripe_subscription_id="sub_old"
    )

    page = check_out(client, FORM, django_capture_on_commit_callbacks)

    assert "sign in</a> with the link" in page
    assert client.get("/account/").status_code == 302  # not signed in
    assert client.get("/account/data/").status_code == 302


def test_a_new_reader_is_signed_in_by_their_own_checkout(
    demo,
    client,
    django_capture_on_commit_callbacks,
):
    page = check_out(client, FORM, django_capture_on_commit_callbacks)

    assert "See your account" in page
    assert client.get("/account/").status_code == 200
