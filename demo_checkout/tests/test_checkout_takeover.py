"""Paying for a checkout must not open someone else's account.

Anyone can type a lapsed reader's address into the signup form; that must
not lead them to a checkout, let alone to the reader's account: only the
emailed link does, and only the address's owner has it.
"""

import pytest

from demo_checkout.tests.test_demo_checkout import FORM
from subscriptions.models import Membership
from subscriptions.tests.factories import make_subscriber
from subscriptions.tests.signup_flow import ask_to_subscribe, sign_up


def pay_and_return(client, checkout_url: str, capture) -> str:
    with capture(execute=True):
        paid = client.post(checkout_url, {"action": "pay"})
    with capture(execute=True):
        success = client.get(paid["Location"].removeprefix("http://127.0.0.1:8000"))
    return success.content.decode()


pytestmark = pytest.mark.django_db


def test_a_signup_for_a_lapsed_readers_address_reaches_no_checkout_and_no_account(
    demo, client, mailoutbox, django_capture_on_commit_callbacks
):
    victim = make_subscriber(FORM["email"], membership=Membership.Status.CANCELED)
    Membership.objects.filter(subscriber=victim).update(
        stripe_customer_id="cus_old", stripe_subscription_id="sub_old"
    )

    answer = ask_to_subscribe(client, FORM, django_capture_on_commit_callbacks)

    assert answer.status_code == 200  # "check your inbox": the link went to the victim
    assert [mail.to for mail in mailoutbox] == [[FORM["email"]]]
    assert client.get("/account/").status_code == 302  # not signed in
    assert client.get("/account/data/").status_code == 302


def test_a_new_reader_is_signed_in_by_their_emailed_link_and_sees_their_checkout(
    demo, client, mailoutbox, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    checkout = sign_up(client, FORM, mailoutbox, capture)

    page = pay_and_return(client, checkout["Location"], capture)

    assert "See your account" in page
    assert client.get("/account/").status_code == 200
