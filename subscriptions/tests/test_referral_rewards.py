"""Referral rewards: decided at the referred reader's first payment, taken back on a refund.

Through the real webhook endpoint, with Stripe's recorded shapes (invoice,
charge, dispute, card, customer balance transaction) answered by FakeStripe.
"""

import datetime
import time

import pytest
from django.test import Client

from subscriptions import referrals
from subscriptions.actions.referrals import _refusal, do_record_referral, do_referred_payment
from subscriptions.models import Membership
from subscriptions.referral_models import Reason, Referral, ReferralDecision, ReferralReward
from subscriptions.sessions import EPOCH_KEY, SESSION_KEY
from subscriptions.tests import stripe_objects
from subscriptions.tests.factories import make_stripe_member, make_subscriber

pytestmark = pytest.mark.django_db

Outcome = ReferralDecision.Outcome
MONTH = 383  # a twelfth of $46, in cents


@pytest.fixture(autouse=True)
def reward_settings(settings):
    settings.REFERRAL_REWARD_MONTHS = 1
    settings.REFERRAL_MILESTONES = {}
    settings.REFERRAL_MONTHS_PER_YEAR = 12
    settings.REFERRAL_TAKE_BACK_DAYS = 60


@pytest.fixture
def referrer(fake_stripe):
    ada = make_stripe_member(
        "active",
        email="ada@example.com",
        customer_id="cus_Ada",
        subscription_id="sub_Ada",
        name="Ada",
    )
    Membership.objects.filter(subscriber=ada).update(amount=4600)
    fake_stripe.set_subscription(
        stripe_objects.subscription(
            "active", id="sub_Ada", customer="cus_Ada", default_payment_method="pm_Ada"
        )
    )
    fake_stripe.set_card("pm_Ada", "fpAdasCard000001")
    return ada


def referred_reader(fake_stripe, referrer, number: int, *, card: str | None = None):
    """A reader who signed up by the referrer's link, then started a trial with a card."""
    email = f"friend{number}@example.com"
    reader = make_subscriber(email, membership=None)
    referral = do_record_referral(reader, referrals.make_token(referrer))
    assert referral is not None
    customer, subscription = f"cus_Friend{number}", f"sub_Friend{number}"
    Membership.objects.create(
        subscriber=reader,
        status="trialing",
        stripe_customer_id=customer,
        stripe_subscription_id=subscription,
    )
    fake_stripe.set_subscription(
        stripe_objects.subscription(
            "active", id=subscription, customer=customer, default_payment_method=f"pm_F{number}"
        )
    )
    fake_stripe.set_card(f"pm_F{number}", card or f"fpFriendsCard{number:03d}")
    return reader


def paid_invoice(fake_stripe, number: int, *, amount: int = 4600, suffix: str = "1") -> dict:
    invoice = stripe_objects.invoice(
        "invoice_paid",
        id=f"in_Friend{number}_{suffix}",
        customer=f"cus_Friend{number}",
        amount_paid=amount,
        amount_due=amount,
        billing_reason="subscription_cycle" if amount else "subscription_create",
    )
    invoice["parent"]["subscription_details"]["subscription"] = f"sub_Friend{number}"
    invoice["status_transitions"]["paid_at"] = int(time.time())
    return fake_stripe.set_invoice(invoice)


def pay(webhooks, fake_stripe, number: int, **invoice):
    answer = webhooks.post("invoice.paid", paid_invoice(fake_stripe, number, **invoice))
    assert answer.status_code == 200, answer.content
    return answer


def decisions(referral: Referral) -> list[tuple[str, str]]:
    return [(d.outcome, d.reason) for d in referral.decisions.all()]


def credits(fake_stripe) -> list[dict]:
    return fake_stripe.requests("POST", "/v1/customers/cus_Ada/balance_transactions")


def test_the_first_payment_credits_a_free_month_to_the_referrers_balance_once(
    webhooks, fake_stripe, referrer
):
    friend = referred_reader(fake_stripe, referrer, 1)
    pay(webhooks, fake_stripe, 1)

    referral = Referral.objects.get(referred=friend)
    assert referral.first_paid_at is not None and referral.first_invoice_id == "in_Friend1_1"
    [reward] = ReferralReward.objects.all()
    assert (reward.months, reward.amount, reward.status) == (1, MONTH, "credited")
    assert reward.stripe_customer_id == "cus_Ada"
    [credit] = credits(fake_stripe)
    assert credit["amount"] == str(-MONTH) and credit["currency"] == "usd"
    assert credit["_idempotency_key"].startswith("briefing-")
    assert reward.balance_transaction_id.startswith("cbtxn_test")
    assert fake_stripe.balances["cus_Ada"] == -MONTH
    assert decisions(referral) == [
        (Outcome.TRIAL_OFFERED, ""),
        (Outcome.REWARDED, Reason.FIRST_PAYMENT),
    ]

    # Stripe sends it again (another event id), and a renewal a year later: one reward.
    pay(webhooks, fake_stripe, 1)
    pay(webhooks, fake_stripe, 1, suffix="2")
    assert ReferralReward.objects.count() == 1
    assert len(credits(fake_stripe)) == 1


def test_a_trial_starting_is_no_payment_and_earns_nothing(webhooks, fake_stripe, referrer):
    friend = referred_reader(fake_stripe, referrer, 1)
    pay(webhooks, fake_stripe, 1, amount=0)

    referral = Referral.objects.get(referred=friend)
    assert referral.first_paid_at is None
    assert not ReferralReward.objects.exists()
    assert decisions(referral) == [(Outcome.TRIAL_OFFERED, "")]
    # The trial ends and the card is charged: now it counts.
    pay(webhooks, fake_stripe, 1, suffix="2")
    assert ReferralReward.objects.get().status == "credited"


def test_the_same_card_behind_two_addresses_earns_nothing(webhooks, fake_stripe, referrer):
    friend = referred_reader(fake_stripe, referrer, 1, card="fpAdasCard000001")
    pay(webhooks, fake_stripe, 1)

    referral = Referral.objects.get(referred=friend)
    assert referral.first_paid_at is not None  # the payment is recorded, and decided
    assert decisions(referral)[-1] == (Outcome.REFUSED, Reason.SAME_CARD)
    assert not ReferralReward.objects.exists()
    assert credits(fake_stripe) == []


def test_the_same_stripe_customer_earns_nothing(fake_stripe, referrer):
    friend = referred_reader(fake_stripe, referrer, 1)
    referral = Referral.objects.get(referred=friend)
    # A payment by the referrer's own customer, whichever reader it is mirrored on.
    assert _refusal(referral, referrer.membership, "cus_Ada") == (Reason.SAME_CUSTOMER, "cus_Ada")
    assert _refusal(referral, referrer.membership, "cus_Friend1") == ("", "")


def test_an_address_changed_to_the_referrers_own_earns_nothing(webhooks, fake_stripe, referrer):
    friend = referred_reader(fake_stripe, referrer, 1)
    friend.email = "ada+second@example.com"
    friend.save()
    pay(webhooks, fake_stripe, 1)
    referral = Referral.objects.get(referred=friend)
    assert decisions(referral)[-1] == (Outcome.REFUSED, Reason.SELF_ADDRESS)
    assert credits(fake_stripe) == []


def test_a_referral_refused_at_signup_stays_refused_when_it_pays(webhooks, fake_stripe, referrer):
    # Bea had a membership (and its trial) before she followed the link.
    bea = make_stripe_member(
        "canceled", email="friend1@example.com", customer_id="cus_Friend1", subscription_id=None
    )
    Membership.objects.filter(subscriber=bea).update(stripe_subscription_id="sub_Old")
    referral = do_record_referral(bea, referrals.make_token(referrer))
    assert referral is not None and referral.refused_reason == Reason.HAD_TRIAL
    Membership.objects.filter(subscriber=bea).update(
        status="active", stripe_subscription_id="sub_Friend1"
    )
    fake_stripe.set_subscription(
        stripe_objects.subscription("active", id="sub_Friend1", customer="cus_Friend1")
    )
    pay(webhooks, fake_stripe, 1)
    assert decisions(referral) == [
        (Outcome.REFUSED, Reason.HAD_TRIAL),
        (Outcome.REFUSED, Reason.HAD_TRIAL),
    ]
    assert credits(fake_stripe) == []


def test_a_referrer_without_a_stripe_customer_is_told_apart(webhooks, fake_stripe):
    comped = make_subscriber(
        "comped@example.com", membership="canceled", membership_fields={"complimentary": True}
    )
    friend = referred_reader(fake_stripe, comped, 1)
    pay(webhooks, fake_stripe, 1)
    assert decisions(Referral.objects.get(referred=friend))[-1] == (
        Outcome.REFUSED,
        Reason.NO_BILLING_ACCOUNT,
    )


def test_past_the_yearly_cap_a_paying_referral_earns_nothing_until_a_year_has_passed(
    webhooks, fake_stripe, referrer, settings, clock
):
    settings.REFERRAL_MONTHS_PER_YEAR = 2
    for number in (1, 2, 3):
        referred_reader(fake_stripe, referrer, number)
        pay(webhooks, fake_stripe, number)
    assert ReferralReward.objects.count() == 2
    third = Referral.objects.get(referred__email="friend3@example.com")
    assert decisions(third)[-1] == (Outcome.REFUSED, Reason.CAP)
    assert fake_stripe.balances["cus_Ada"] == -2 * MONTH

    clock.shift(datetime.timedelta(days=366))
    referred_reader(fake_stripe, referrer, 4)
    pay(webhooks, fake_stripe, 4)
    assert ReferralReward.objects.count() == 3


def test_a_milestone_adds_its_bonus_months(webhooks, fake_stripe, referrer, settings):
    settings.REFERRAL_MILESTONES = {2: 3}
    for number in (1, 2, 3):
        referred_reader(fake_stripe, referrer, number)
        pay(webhooks, fake_stripe, number)
    second = Referral.objects.get(referred__email="friend2@example.com")
    assert decisions(second)[-2:] == [
        (Outcome.REWARDED, Reason.FIRST_PAYMENT),
        (Outcome.REWARDED, Reason.MILESTONE),
    ]
    milestone = ReferralReward.objects.get(kind="milestone")
    assert (milestone.months, milestone.amount, milestone.referral) == (3, 3 * MONTH, second)
    assert fake_stripe.balances["cus_Ada"] == -6 * MONTH
    assert referrals.summary(referrer).months_earned == 6


def test_a_milestone_is_cut_to_what_the_cap_leaves(webhooks, fake_stripe, referrer, settings):
    settings.REFERRAL_MILESTONES = {2: 3}
    settings.REFERRAL_MONTHS_PER_YEAR = 3
    for number in (1, 2):
        referred_reader(fake_stripe, referrer, number)
        pay(webhooks, fake_stripe, number)
    assert ReferralReward.objects.get(kind="milestone").months == 1
    assert fake_stripe.balances["cus_Ada"] == -3 * MONTH


def refund(webhooks, fake_stripe, number: int, *, disputed: bool = False, **changes):
    fields = {
        "id": f"ch_Friend{number}",
        "customer": f"cus_Friend{number}",
        "created": int(time.time()),
        "refunded": not disputed,
        "amount_refunded": 0 if disputed else 4600,
        "disputed": disputed,
    }
    charge = fake_stripe.set_charge(stripe_objects.load("charge_refunded", **(fields | changes)))
    if disputed:
        dispute = stripe_objects.load("dispute", charge=charge["id"])
        answer = webhooks.post("charge.dispute.created", dispute)
    else:
        answer = webhooks.post("charge.refunded", charge)
    assert answer.status_code == 200, answer.content
    return answer


def test_a_refund_within_sixty_days_takes_an_unused_reward_back(
    webhooks, fake_stripe, referrer, clock
):
    friend = referred_reader(fake_stripe, referrer, 1)
    pay(webhooks, fake_stripe, 1)
    clock.shift(datetime.timedelta(days=20))
    refund(webhooks, fake_stripe, 1)

    reward = ReferralReward.objects.get()
    assert reward.status == "taken_back" and reward.take_back_transaction_id
    [debit] = fake_stripe.requests("POST", "/v1/customers/cus_Ada/balance_transactions")[1:]
    assert debit["amount"] == str(MONTH)
    assert fake_stripe.balances["cus_Ada"] == 0
    referral = Referral.objects.get(referred=friend)
    assert decisions(referral)[-1] == (Outcome.TAKEN_BACK, Reason.REFUNDED)
    assert referrals.summary(referrer).months_taken_back == 1
    # The same refund told again: nothing more.
    refund(webhooks, fake_stripe, 1)
    assert len(credits(fake_stripe)) == 2


def test_a_dispute_takes_an_unused_reward_back(webhooks, fake_stripe, referrer):
    referred_reader(fake_stripe, referrer, 1)
    pay(webhooks, fake_stripe, 1)
    refund(webhooks, fake_stripe, 1, disputed=True)
    assert ReferralReward.objects.get().status == "taken_back"
    assert fake_stripe.balances["cus_Ada"] == 0


def test_a_reward_an_invoice_has_used_is_kept_with_its_reason(webhooks, fake_stripe, referrer):
    friend = referred_reader(fake_stripe, referrer, 1)
    pay(webhooks, fake_stripe, 1)
    fake_stripe.balances["cus_Ada"] = 0  # Ada's renewal used the credit
    refund(webhooks, fake_stripe, 1)

    assert ReferralReward.objects.get().status == "credited"
    assert len(credits(fake_stripe)) == 1
    assert decisions(Referral.objects.get(referred=friend))[-1] == (
        Outcome.KEPT,
        Reason.ALREADY_USED,
    )


def test_a_refund_after_sixty_days_leaves_the_reward(webhooks, fake_stripe, referrer, clock):
    friend = referred_reader(fake_stripe, referrer, 1)
    pay(webhooks, fake_stripe, 1)
    clock.shift(datetime.timedelta(days=61))
    refund(webhooks, fake_stripe, 1, created=int(time.time()) - 61 * 86400)
    assert ReferralReward.objects.get().status == "credited"
    assert decisions(Referral.objects.get(referred=friend))[-1] == (Outcome.KEPT, Reason.REFUNDED)


def test_a_charge_that_is_not_refunded_or_is_someone_elses_takes_nothing(
    webhooks, fake_stripe, referrer
):
    referred_reader(fake_stripe, referrer, 1)
    pay(webhooks, fake_stripe, 1)
    # The event says "refunded"; Stripe's copy of the charge says otherwise.
    refund(webhooks, fake_stripe, 1, refunded=False, amount_refunded=0)
    fake_stripe.set_charge(
        stripe_objects.load("charge_refunded", id="ch_Stranger", customer="cus_Stranger")
    )
    assert webhooks.post("charge.refunded", fake_stripe.charges["ch_Stranger"]).status_code == 200
    assert ReferralReward.objects.get().status == "credited"


def test_a_reward_refunded_before_it_was_credited_is_never_written(
    fake_stripe, referrer, django_capture_on_commit_callbacks
):
    from subscriptions import side_effects
    from subscriptions.actions.referrals import do_referred_payment_reversed

    referred_reader(fake_stripe, referrer, 1)
    paid_invoice(fake_stripe, 1)
    with django_capture_on_commit_callbacks(execute=False):  # Stripe's credit not yet written
        assert do_referred_payment("in_Friend1_1") == "rewarded"
    fake_stripe.set_charge(
        stripe_objects.load(
            "charge_refunded", id="ch_F1", customer="cus_Friend1", created=int(time.time())
        )
    )
    do_referred_payment_reversed("ch_F1", Reason.REFUNDED)
    reward = ReferralReward.objects.get()
    assert reward.status == "taken_back"
    side_effects.credit_referral_reward(reward.pk)
    side_effects.take_back_referral_reward(reward.pk)
    assert credits(fake_stripe) == []


def test_the_account_page_counts_trials_payments_and_months(webhooks, fake_stripe, referrer):
    referred_reader(fake_stripe, referrer, 1)
    referred_reader(fake_stripe, referrer, 2)
    make_subscriber("friend3@example.com", membership=None)
    do_record_referral(
        make_subscriber("friend4@example.com", membership=None), referrals.make_token(referrer)
    )
    pay(webhooks, fake_stripe, 1)

    client = Client()
    session = client.session
    session[SESSION_KEY] = referrer.pk
    session[EPOCH_KEY] = referrer.session_epoch
    session.save()
    html = client.get("/account/").content.decode()
    assert "Signed up through your link</dt><dd>3<" in html
    assert "Started a trial</dt><dd>2<" in html
    assert "Paying</dt><dd>1<" in html
    assert "Free months earned</dt><dd>1 (1 applied to your billing account)" in html


def test_staff_read_every_decision_with_its_reason_in_the_admin(
    webhooks, fake_stripe, referrer, admin_client, client, django_user_model
):
    same_card = referred_reader(fake_stripe, referrer, 1, card="fpAdasCard000001")
    referred_reader(fake_stripe, referrer, 2)
    pay(webhooks, fake_stripe, 1)
    pay(webhooks, fake_stripe, 2)
    refused = Referral.objects.get(referred=same_card)

    listing = admin_client.get("/admin/subscriptions/referral/").content.decode()
    assert "Self-referral: the same card (fingerprint)" in listing
    assert "The referred reader&#x27;s first payment succeeded" in listing
    page = admin_client.get(f"/admin/subscriptions/referral/{refused.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Longer trial offered" in html and "No reward" in html
    rewards = admin_client.get("/admin/subscriptions/referralreward/").content.decode()
    assert "Credited to the customer balance" in rewards
    # Read-only: nothing is added or changed by hand.
    assert admin_client.get("/admin/subscriptions/referral/add/").status_code == 403
    assert (
        admin_client.post(f"/admin/subscriptions/referral/{refused.pk}/delete/", {"post": "yes"})
    ).status_code == 403
    # Staff without the permission (an editor) see none of it.
    editor = django_user_model.objects.create_user("ed", password="pw", is_staff=True)
    client.force_login(editor)
    assert client.get("/admin/subscriptions/referral/").status_code == 403


def test_a_readers_export_has_their_referral_data_and_not_the_others(
    webhooks, fake_stripe, referrer
):
    from subscriptions.actions.reader_data import export_reader

    friend = referred_reader(fake_stripe, referrer, 1)
    pay(webhooks, fake_stripe, 1)
    mine = export_reader(referrer)["referrals"]
    assert (mine["signed_up_through_my_link"], mine["paying"]) == (1, 1)
    assert [(r["months"], r["amount_cents"]) for r in mine["rewards"]] == [(1, MONTH)]
    assert "friend1@example.com" not in str(mine)
    theirs = export_reader(friend)["referrals"]
    assert theirs["came_by_a_referral"] and "ada@example.com" not in str(theirs)
