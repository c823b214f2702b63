"""Referrals: made at signup, rewarded at the first payment, taken back on a refund.

Each decision is a ReferralDecision row with its reason, in the same
transaction as what it decides; the credit (or debit) on the referrer's
Stripe customer balance is written after commit, by a task that takes the
reward's id (subscriptions.side_effects), with an idempotency key.

Why the customer balance and not a coupon: a balance credit is an amount,
so rewards add up (three referrals, three months) and a milestone's bonus
simply adds more; Stripe applies it by itself to the next invoice, before
the card is charged, and the invoice and the Customer Portal show it; and
taking a reward back is the opposite balance transaction, which is exact.
A coupon is a discount on a subscription: several rewards would need
several discounts, a coupon's "amount off" is spent by the first invoice,
and taking one back means removing a discount that may be half used.
"""

import datetime
import functools
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from subscriptions import referrals, side_effects, stripe_api
from subscriptions.models import Membership, Subscriber
from subscriptions.referral_models import (
    Reason,
    Referral,
    ReferralDecision,
    ReferralPreference,
    ReferralReward,
)

logger = logging.getLogger(__name__)

Outcome = ReferralDecision.Outcome
# A charge is made a little before its invoice is marked paid.
CHARGE_BEFORE_PAYMENT = datetime.timedelta(days=1)


def _decide(
    referral: Referral,
    outcome: str,
    reason: str = "",
    detail: str = "",
    now: datetime.datetime | None = None,
) -> ReferralDecision:
    decision = ReferralDecision.objects.create(
        referral=referral,
        outcome=outcome,
        reason=reason,
        detail=detail[:255],
        created_at=now or timezone.now(),
    )
    logger.info(
        "Referral %s (reader %s by %s): %s %s",
        referral.pk,
        referral.referred_id,
        referral.referrer_id,
        outcome,
        reason,
    )
    return decision


def _had_trial(subscriber: Subscriber) -> bool:
    """The address had a subscription (and with it its trial) before the referral."""
    membership = Membership.objects.filter(subscriber=subscriber).first()
    return membership is not None and bool(membership.stripe_subscription_id)


@transaction.atomic
def do_record_referral(
    subscriber: Subscriber, token: str, now: datetime.datetime | None = None
) -> Referral | None:
    """The visitor who came by `token`'s link is now a reader: record who brought them.

    Once per reader (the first referral stands). A referral of oneself
    (the same address once normalised) or of an address that had a trial
    before is recorded, refused, with its reason: it brings neither the
    longer trial nor, later, a reward. None if the token names nobody.
    """
    referrer = referrals.referrer_for_token(token)
    if referrer is None:
        return None
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
    existing = Referral.objects.filter(referred=subscriber).first()
    if existing is not None:
        return existing
    now = now or timezone.now()
    reason = ""
    if referrer.pk == subscriber.pk or referrals.identity(referrer.email) == referrals.identity(
        subscriber.email
    ):
        reason = Reason.SELF_ADDRESS
    elif _had_trial(subscriber):
        reason = Reason.HAD_TRIAL
    referral = Referral.objects.create(
        referrer=referrer,
        referred=subscriber,
        eligible=not reason,
        refused_reason=reason,
        trial_days=0 if reason else referrals.referred_trial_days(),
    )
    if reason:
        _decide(referral, Outcome.REFUSED, reason, "no longer trial and no reward", now)
    else:
        _decide(
            referral, Outcome.TRIAL_OFFERED, detail=f"{referral.trial_days}-day free trial", now=now
        )
    return referral


@transaction.atomic
def do_set_show_first_name(subscriber: Subscriber, show: bool) -> None:
    """The reader allows (or not) their link's page to name them by first name."""
    ReferralPreference.objects.update_or_create(
        subscriber=subscriber, defaults={"show_first_name": show}
    )


# --- The first payment --------------------------------------------------------------


def _fingerprint_of_subscription(subscription_id: str | None) -> str | None:
    if not subscription_id:
        return None
    try:
        subscription = stripe_api.retrieve_subscription(subscription_id)
    except stripe_api.InvalidRequestError:
        return None  # gone at Stripe (deleted by staff): no card to compare
    return stripe_api.card_fingerprint(getattr(subscription, "default_payment_method", None))


def _refusal(
    referral: Referral, referrer_membership: Membership | None, invoice_customer: str | None
) -> tuple[str, str]:
    """Why this paying referral earns nothing, as (reason, detail); ("", "") if it earns."""
    if not referral.eligible:
        return referral.refused_reason, "refused when the referral was made"
    referred = referral.referred
    referrer = referral.referrer
    if referrals.identity(referrer.email) == referrals.identity(referred.email):
        return Reason.SELF_ADDRESS, ""
    referrer_customer = referrer_membership.stripe_customer_id if referrer_membership else None
    if referrer_customer and referrer_customer == invoice_customer:
        return Reason.SAME_CUSTOMER, referrer_customer
    if not referrer_customer:
        return Reason.NO_BILLING_ACCOUNT, ""
    referred_membership = Membership.objects.filter(subscriber=referred).first()
    referred_card = _fingerprint_of_subscription(
        referred_membership.stripe_subscription_id if referred_membership else None
    )
    referrer_card = _fingerprint_of_subscription(
        referrer_membership.stripe_subscription_id if referrer_membership else None
    )
    if referred_card and referred_card == referrer_card:
        return Reason.SAME_CARD, ""
    return "", ""


def _grant(
    referral: Referral,
    membership: Membership,
    kind: str,
    months: int,
    now: datetime.datetime,
) -> ReferralReward:
    reward = ReferralReward.objects.create(
        referrer=referral.referrer,
        referral=referral,
        kind=kind,
        months=months,
        amount=months * referrals.monthly_value(membership.amount),
        stripe_customer_id=membership.stripe_customer_id or "",
        granted_at=now,
    )
    transaction.on_commit(lambda: side_effects.credit_referral_reward.delay(reward.pk))
    return reward


def _months_left(referrer: Subscriber, now: datetime.datetime) -> int:
    used = referrals.months_granted_since(referrer, referrals.year_before(now))
    return max(0, settings.REFERRAL_MONTHS_PER_YEAR - used)


@transaction.atomic
def do_referred_payment(invoice_id: str, now: datetime.datetime | None = None) -> str:
    """An invoice was paid: if it is a referred reader's first payment, decide the reward.

    The invoice is fetched from Stripe; only a paid one that took money
    counts (a trial's $0 invoice never does). The referral is decided once,
    under a lock on it and on the referrer (whose yearly cap it counts
    against), and the decision is recorded with its reason. Returns what
    was decided, for the webhook's log.
    """
    invoice = stripe_api.retrieve_invoice(invoice_id)
    if invoice.status != "paid" or not invoice.amount_paid:
        return "no money taken"
    customer_id = stripe_api.expandable_id(invoice.customer)
    if customer_id is None:
        return "no customer"
    referral = (
        Referral.objects.select_for_update(of=("self",))
        .filter(referred__membership__stripe_customer_id=customer_id)
        .first()
    )
    if referral is None:
        return "not a referred reader"
    if referral.first_paid_at is not None:
        return "first payment already decided"
    now = now or timezone.now()
    referrer = Subscriber.objects.select_for_update().get(pk=referral.referrer_id)
    paid_at = stripe_api.from_timestamp(
        getattr(getattr(invoice, "status_transitions", None), "paid_at", None)
    )
    referral.first_paid_at = paid_at or now
    referral.first_invoice_id = invoice.id or ""
    referral.save(update_fields=["first_paid_at", "first_invoice_id"])
    membership = Membership.objects.filter(subscriber=referrer).first()
    reason, detail = _refusal(referral, membership, customer_id)
    if reason:
        _decide(referral, Outcome.REFUSED, reason, detail, now)
        return f"no reward: {reason}"
    assert membership is not None  # _refusal refuses a referrer without a customer
    left = _months_left(referrer, now)
    if left <= 0:
        _decide(referral, Outcome.REFUSED, Reason.CAP, "", now)
        return "no reward: cap"
    months = min(settings.REFERRAL_REWARD_MONTHS, left)
    reward = _grant(referral, membership, ReferralReward.Kind.REFERRAL, months, now)
    _decide(
        referral,
        Outcome.REWARDED,
        Reason.FIRST_PAYMENT,
        f"{months} free month(s), {reward.amount} cents"
        + (" (cut to the yearly cap)" if months < settings.REFERRAL_REWARD_MONTHS else ""),
        now,
    )
    rewarded = (
        ReferralReward.objects.filter(referrer=referrer, kind=ReferralReward.Kind.REFERRAL)
        .exclude(status=ReferralReward.Status.TAKEN_BACK)
        .count()
    )
    bonus = settings.REFERRAL_MILESTONES.get(rewarded, 0)
    if bonus:
        left = _months_left(referrer, now)
        if left <= 0:
            _decide(referral, Outcome.REFUSED, Reason.CAP, f"milestone of {rewarded}", now)
        else:
            bonus_months = min(bonus, left)
            milestone = _grant(
                referral, membership, ReferralReward.Kind.MILESTONE, bonus_months, now
            )
            _decide(
                referral,
                Outcome.REWARDED,
                Reason.MILESTONE,
                f"{rewarded} paying referrals: {bonus_months} more month(s), "
                f"{milestone.amount} cents",
                now,
            )
    return "rewarded"


# --- Refunds and disputes -----------------------------------------------------------


@transaction.atomic
def do_referred_payment_reversed(
    charge_id: str, reason: str, now: datetime.datetime | None = None
) -> str:
    """A referred reader's payment was refunded or disputed: take back an unused reward.

    The charge is fetched from Stripe and must really be refunded (or
    disputed), be the referred customer's, and come from the paid first
    payment, within REFERRAL_TAKE_BACK_DAYS of it. A reward not yet
    credited is simply not written; a credited one is taken back when the
    referrer's balance still holds its credit, and kept (with the reason
    "already used") when an invoice has used it.
    """
    charge = stripe_api.retrieve_charge(charge_id)
    if reason == Reason.REFUNDED and not (charge.refunded or charge.amount_refunded):
        return "not refunded"
    if reason == Reason.DISPUTED and not charge.disputed:
        return "not disputed"
    customer_id = stripe_api.expandable_id(charge.customer)
    if customer_id is None:
        return "no customer"
    referral = (
        Referral.objects.select_for_update(of=("self",))
        .filter(referred__membership__stripe_customer_id=customer_id, first_paid_at__isnull=False)
        .first()
    )
    if referral is None or referral.first_paid_at is None:
        return "not a referred reader's paid first payment"
    now = now or timezone.now()
    charged_at = stripe_api.from_timestamp(charge.created)
    if charged_at is not None and charged_at < referral.first_paid_at - CHARGE_BEFORE_PAYMENT:
        return "a charge from before the first payment"
    if now - referral.first_paid_at > datetime.timedelta(days=settings.REFERRAL_TAKE_BACK_DAYS):
        if referral.rewards.exclude(status=ReferralReward.Status.TAKEN_BACK).exists():
            _decide(
                referral,
                Outcome.KEPT,
                reason,
                f"after {settings.REFERRAL_TAKE_BACK_DAYS} days: the reward stands",
                now,
            )
        return "outside the take-back window"
    Subscriber.objects.select_for_update().get(pk=referral.referrer_id)
    rewards = list(
        referral.rewards.select_for_update()
        .exclude(status=ReferralReward.Status.TAKEN_BACK)
        .order_by("-granted_at", "-pk")
    )
    if not rewards:
        return "no reward to take back"
    available: int | None = None
    taken = 0
    for reward in rewards:
        if reward.status == ReferralReward.Status.CREDITED:
            if available is None:
                available = stripe_api.unused_credit(reward.stripe_customer_id)
            if available < reward.amount:
                _decide(
                    referral,
                    Outcome.KEPT,
                    Reason.ALREADY_USED,
                    f"{reward.get_kind_display()}: {available} cents of credit left, "
                    f"{reward.amount} granted",
                    now,
                )
                continue
            available -= reward.amount
            transaction.on_commit(
                functools.partial(side_effects.take_back_referral_reward.delay, reward.pk)
            )
        reward.status = ReferralReward.Status.TAKEN_BACK
        reward.taken_back_at = now
        reward.save(update_fields=["status", "taken_back_at"])
        _decide(referral, Outcome.TAKEN_BACK, reason, reward.get_kind_display(), now)
        taken += 1
    return f"{taken} reward(s) taken back"
