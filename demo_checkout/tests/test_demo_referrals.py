"""The keyless demo walks a referral: the link, the longer trial, the reward, the refund."""

import pytest
from django.test import Client

from demo_checkout import local_stripe
from subscriptions import referrals
from subscriptions.models import Membership, StripeEvent, Subscriber
from subscriptions.referral_models import Referral, ReferralDecision, ReferralReward
from subscriptions.tests.signup_flow import link_in

pytestmark = pytest.mark.django_db

PORTAL = "/test-checkout/portal/"


def join(client: Client, smtp_server, capture, form: dict, referral: str = "") -> Subscriber:
    """Sign up through the form, the emailed link and the local checkout page."""
    data = {**form, "referral": referral} if referral else form
    with capture(execute=True):
        client.post("/subscribe/", data)
    with capture(execute=True):
        checkout_url = client.post(
            link_in(smtp_server.received()[-1]), {"name": form["name"], "time_zone": "UTC"}
        )["Location"]
    page = client.get(checkout_url.removeprefix("http://127.0.0.1:8000"))
    assert page.status_code == 200
    with capture(execute=True):
        client.post(checkout_url, {"action": "pay"})
    return Subscriber.objects.get(email=form["email"])


def test_a_referral_end_to_end_in_the_local_checkout(
    demo, smtp_server, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    ada_browser, bea_browser = Client(), Client()
    ada = join(ada_browser, smtp_server, capture, {"email": "ada@example.com", "name": "Ada"})
    with capture(execute=True):
        ada_browser.post(PORTAL, {"action": "end_trial"})  # Ada pays: a customer to credit

    landing = bea_browser.get(referrals.referral_url(ada).removeprefix("http://127.0.0.1:8000"))
    assert "30-day" in landing.content.decode()
    bea = join(
        bea_browser,
        smtp_server,
        capture,
        {"email": "bea@example.com", "name": "Bea"},
        referral=referrals.make_token(ada),
    )
    membership = Membership.objects.get(subscriber=bea)
    assert membership.status == "trialing"
    assert membership.trial_end is not None
    assert (membership.trial_end - membership.created_at).days in (29, 30)
    assert not ReferralReward.objects.exists()  # a trial is not a payment

    with capture(execute=True):
        bea_browser.post(PORTAL, {"action": "end_trial"})
    reward = ReferralReward.objects.get()
    assert (reward.status, reward.amount) == ("credited", 383)
    ada_customer = Membership.objects.get(subscriber=ada).stripe_customer_id
    assert ada_customer is not None
    assert local_stripe.customer_balance(ada_customer) == -383

    with capture(execute=True):
        bea_browser.post(PORTAL, {"action": "refund"})
    assert ReferralReward.objects.get().status == "taken_back"
    assert local_stripe.customer_balance(ada_customer) == 0
    outcomes = list(Referral.objects.get().decisions.values_list("outcome", flat=True))
    assert outcomes == [
        ReferralDecision.Outcome.TRIAL_OFFERED,
        ReferralDecision.Outcome.REWARDED,
        ReferralDecision.Outcome.TAKEN_BACK,
    ]
    assert not StripeEvent.objects.filter(status=StripeEvent.Status.FAILED).exists()
