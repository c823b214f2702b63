"""The side effects actions queue on commit: emails to readers, and calls to Stripe.

Celery tasks, thin, taking ids, safe to run twice. They import no action:
the actions (subscriptions/actions/) queue them, and beat's periodic tasks
(subscriptions/tasks.py), which run actions, queue them too. Each keeps the
name it had in subscriptions/tasks.py ("subscriptions.tasks.<name>", given
explicitly): queued messages carry it.
"""

import logging
import smtplib
from collections.abc import Callable

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from subscriptions import emails, stripe_api
from subscriptions.models import GiftCode, ReaderEmail, Subscriber
from subscriptions.referral_models import ReferralReward
from subscriptions.team_models import Team, TeamSeat

logger = logging.getLogger(__name__)

UNDELIVERABLE = (Subscriber.EmailStatus.BOUNCED, Subscriber.EmailStatus.COMPLAINED)
MAIL_ERRORS = (smtplib.SMTPException, OSError)


@shared_task(
    name="subscriptions.tasks.send_reader_email",
    autoretry_for=MAIL_ERRORS,
    retry_backoff=30,
    max_retries=6,
)
def send_reader_email(reader_email_id: int) -> None:
    """Send a claimed ReaderEmail once; a second run finds it sent and does nothing."""
    with transaction.atomic():
        email = (
            ReaderEmail.objects.select_for_update(of=("self",))
            .select_related("subscriber", "subscriber__membership")
            .filter(pk=reader_email_id)
            .first()
        )
        if email is None or email.status != ReaderEmail.Status.QUEUED:
            return
        if email.subscriber.email_status in UNDELIVERABLE:
            # Billing emails go to unsubscribed readers too (they are about
            # their money), but never to an address that bounced or complained.
            email.status = ReaderEmail.Status.SKIPPED
            email.save(update_fields=["status"])
            return
        emails.build(email).send()
        email.status = ReaderEmail.Status.SENT
        email.sent_at = timezone.now()
        email.save(update_fields=["status", "sent_at"])
    logger.info("Sent %s", email)


@shared_task(
    name="subscriptions.tasks.send_sign_in_link",
    autoretry_for=MAIL_ERRORS,
    retry_backoff=10,
    max_retries=3,
)
def send_sign_in_link(subscriber_id: int) -> None:
    # Not held back for a bounced or complained address: only the reader's own
    # request queues it (subscriptions.actions.account.do_sign_in_requested),
    # and it is their way back to their account and billing.
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        return
    emails.sign_in_link(subscriber).send()


@shared_task(
    name="subscriptions.tasks.send_signup_link",
    autoretry_for=MAIL_ERRORS,
    retry_backoff=10,
    max_retries=3,
)
def send_signup_link(email: str, name: str, time_zone: str, referral: str = "") -> None:
    """Answer a signup request by email: a member is sent a sign-in link, anyone else a link on.

    `referral`: the referral link's token the visitor came by, carried in
    the link on (subscriptions.signin), so the referral survives opening the
    email in another browser.
    """
    message = emails.signup_reply(email, name, time_zone, referral)
    if message is not None:
        message.send()


@shared_task(
    name="subscriptions.tasks.credit_referral_reward",
    autoretry_for=(stripe_api.StripeError,),
    retry_backoff=30,
    max_retries=8,
)
def credit_referral_reward(reward_id: int) -> None:
    """Credit a decided referral reward to the referrer's Stripe balance, once.

    The row's lock and status make a second run do nothing; the idempotency
    key (the reward's id) makes a retry after a lost answer return the first
    credit. A reward taken back before it was credited is never written.
    """
    with transaction.atomic():
        reward = ReferralReward.objects.select_for_update().filter(pk=reward_id).first()
        if reward is None or reward.status != ReferralReward.Status.PENDING:
            return
        reward.balance_transaction_id = stripe_api.credit_balance(
            reward.stripe_customer_id,
            reward.amount,
            f"Referral reward: {reward.months} free month(s)",
            key_parts=("referral-reward", reward.pk),
        )
        reward.status = ReferralReward.Status.CREDITED
        reward.save(update_fields=["balance_transaction_id", "status"])
    logger.info("Referral reward %s credited (%s cents)", reward_id, reward.amount)


@shared_task(
    name="subscriptions.tasks.take_back_referral_reward",
    autoretry_for=(stripe_api.StripeError,),
    retry_backoff=30,
    max_retries=8,
)
def take_back_referral_reward(reward_id: int) -> None:
    """Debit a credited reward that was decided taken back, once (its id is the key)."""
    with transaction.atomic():
        reward = ReferralReward.objects.select_for_update().filter(pk=reward_id).first()
        if (
            reward is None
            or reward.status != ReferralReward.Status.TAKEN_BACK
            or not reward.balance_transaction_id
            or reward.take_back_transaction_id
        ):
            return
        reward.take_back_transaction_id = stripe_api.debit_balance(
            reward.stripe_customer_id,
            reward.amount,
            "Referral reward taken back: the referred payment was refunded or disputed",
            key_parts=("referral-take-back", reward.pk),
        )
        reward.save(update_fields=["take_back_transaction_id"])
    logger.info("Referral reward %s taken back (%s cents)", reward_id, reward.amount)


@shared_task(
    name="subscriptions.tasks.send_team_seat_link",
    autoretry_for=MAIL_ERRORS,
    retry_backoff=10,
    max_retries=3,
)
def send_team_seat_link(team_id: int, email: str, name: str, time_zone: str) -> None:
    """Email the link that claims a team's seat (by address: it may be no reader's yet)."""
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        return
    emails.team_seat_link(team, email, name, time_zone).send()


@shared_task(
    name="subscriptions.tasks.send_team_seat_ended",
    autoretry_for=MAIL_ERRORS,
    retry_backoff=30,
    max_retries=6,
)
def send_team_seat_ended(seat_id: int) -> None:
    """Tell a removed member until when they read, and offer a trial: once per seat."""
    with transaction.atomic():
        seat = (
            TeamSeat.objects.select_for_update(of=("self",))
            .select_related("team", "subscriber")
            .filter(pk=seat_id, removed_at__isnull=False, ended_email_sent_at__isnull=True)
            .first()
        )
        if seat is None or seat.subscriber.email_status != Subscriber.EmailStatus.ACTIVE:
            return
        emails.team_seat_ended(seat).send()
        seat.ended_email_sent_at = timezone.now()
        seat.save(update_fields=["ended_email_sent_at"])


@shared_task(
    name="subscriptions.tasks.cancel_own_plan_prorated",
    autoretry_for=(stripe_api.StripeError,),
    retry_backoff=30,
    max_retries=8,
)
def cancel_own_plan_prorated(subscription_id: str) -> None:
    """A reader moved onto a team's seat: their own plan ends now, the rest credited.

    Safe to run twice: the idempotency key returns the first answer, and the
    subscription's deletion event mirrors the end onto their membership.
    """
    stripe_api.cancel_subscription_prorated(subscription_id)
    logger.info("Own plan %s cancelled, prorated, for a team seat", subscription_id)


@shared_task(
    name="subscriptions.tasks.send_email_change_link",
    autoretry_for=MAIL_ERRORS,
    retry_backoff=10,
    max_retries=3,
)
def send_email_change_link(subscriber_id: int, new_email: str) -> None:
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        return
    emails.email_change_link(subscriber, new_email).send()


@shared_task(
    name="subscriptions.tasks.update_stripe_customer_email",
    autoretry_for=(stripe_api.StripeError,),
    retry_backoff=30,
    max_retries=8,
)
def update_stripe_customer_email(subscriber_id: int) -> None:
    """The reader's current address onto their Stripe customer; safe to run twice."""
    subscriber = Subscriber.objects.select_related("membership").filter(pk=subscriber_id).first()
    membership = getattr(subscriber, "membership", None) if subscriber else None
    if subscriber is None or membership is None or not membership.stripe_customer_id:
        return
    stripe_api.update_customer_email(membership.stripe_customer_id, subscriber.email)
    logger.info("Stripe customer of subscriber %s has their new address", subscriber.pk)


@shared_task(
    name="subscriptions.tasks.collect_after_pause",
    autoretry_for=(stripe_api.StripeError,),
    retry_backoff=60,
    max_retries=8,
)
def collect_after_pause(subscription_id: str) -> list[str]:
    """A pause of billing ended: finalize its drafts so Stripe collects them (safe to repeat)."""
    finalized = stripe_api.collect_paused_invoices(subscription_id)
    if finalized:
        logger.info("After the pause of %s, finalized %s", subscription_id, ", ".join(finalized))
    return finalized


def _send_gift_email(gift_id: int, field: str, build: "Callable[[GiftCode], object]") -> None:
    """Send one of a gift's two emails once: claimed by its *_sent_at moment, in the lock."""
    with transaction.atomic():
        gift = GiftCode.objects.select_for_update().filter(pk=gift_id).first()
        if gift is None or getattr(gift, field) is not None:
            return
        message = build(gift)
        message.send()  # type: ignore[attr-defined]
        setattr(gift, field, timezone.now())
        update = [field]
        if field == "delivered_at":
            gift.status = GiftCode.Status.DELIVERED
            update.append("status")
        gift.save(update_fields=update)
    logger.info("Gift %s: %s", gift_id, field)


@shared_task(
    name="subscriptions.tasks.send_gift_receipt",
    autoretry_for=MAIL_ERRORS,
    retry_backoff=30,
    max_retries=6,
)
def send_gift_receipt(gift_id: int) -> None:
    """The buyer's receipt: what they paid, for whom, when it will be delivered."""
    _send_gift_email(gift_id, "receipt_sent_at", emails.gift_receipt)


@shared_task(
    name="subscriptions.tasks.deliver_gift",
    autoretry_for=MAIL_ERRORS,
    retry_backoff=30,
    max_retries=6,
)
def deliver_gift(gift_id: int) -> None:
    """The recipient's email, on the delivery date, with the single-use link."""
    with transaction.atomic():
        due = GiftCode.objects.filter(pk=gift_id, status=GiftCode.Status.PAID).exists()
    if due:
        _send_gift_email(gift_id, "delivered_at", emails.gift_delivery)
