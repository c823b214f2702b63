"""Celery tasks for readers: thin, take ids, safe to run twice."""

import logging
import smtplib
from collections.abc import Callable

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from subscriptions import emails, stripe_api
from subscriptions.actions import gifts, lifecycle, stripe_sync
from subscriptions.models import GiftCode, ReaderEmail, Subscriber

logger = logging.getLogger(__name__)

UNDELIVERABLE = (Subscriber.EmailStatus.BOUNCED, Subscriber.EmailStatus.COMPLAINED)
MAIL_ERRORS = (smtplib.SMTPException, OSError)


@shared_task(autoretry_for=MAIL_ERRORS, retry_backoff=30, max_retries=6)
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


@shared_task(autoretry_for=MAIL_ERRORS, retry_backoff=10, max_retries=3)
def send_sign_in_link(subscriber_id: int) -> None:
    # Not held back for a bounced or complained address: only the reader's own
    # request queues it (subscriptions.actions.account.do_sign_in_requested),
    # and it is their way back to their account and billing.
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        return
    emails.sign_in_link(subscriber).send()


@shared_task(autoretry_for=MAIL_ERRORS, retry_backoff=10, max_retries=3)
def send_signup_link(email: str, name: str, time_zone: str) -> None:
    """Answer a signup request by email: a member is sent a sign-in link, anyone else a link on."""
    message = emails.signup_reply(email, name, time_zone)
    if message is not None:
        message.send()


@shared_task(autoretry_for=MAIL_ERRORS, retry_backoff=10, max_retries=3)
def send_email_change_link(subscriber_id: int, new_email: str) -> None:
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        return
    emails.email_change_link(subscriber, new_email).send()


@shared_task(autoretry_for=(stripe_api.StripeError,), retry_backoff=30, max_retries=8)
def update_stripe_customer_email(subscriber_id: int) -> None:
    """The reader's current address onto their Stripe customer; safe to run twice."""
    subscriber = Subscriber.objects.select_related("membership").filter(pk=subscriber_id).first()
    membership = getattr(subscriber, "membership", None) if subscriber else None
    if subscriber is None or membership is None or not membership.stripe_customer_id:
        return
    stripe_api.update_customer_email(membership.stripe_customer_id, subscriber.email)
    logger.info("Stripe customer of subscriber %s has their new address", subscriber.pk)


@shared_task
def reconcile_memberships() -> int:
    """Re-fetch recently changed and suspicious subscriptions from Stripe."""
    if not stripe_api.billing_configured():
        return 0
    checked = 0
    for membership_id in stripe_sync.memberships_to_reconcile():
        try:
            stripe_sync.do_reconcile_membership(membership_id)
        except stripe_api.StripeError as error:
            # One reader's trouble (or Stripe's) must not stop the others;
            # the next run tries again.
            logger.warning("Reconciling membership %s failed: %s", membership_id, error)
            continue
        checked += 1
    logger.info("Reconciled %d memberships with Stripe", checked)
    return checked


@shared_task
def billing_lifecycle() -> dict[str, int]:
    """The hourly check of the paid year: renewal notices due, then win-back emails due.

    Each is claimed once per cause, so running it again (or alongside the
    invoice.upcoming webhook) sends nothing twice.
    """
    if not stripe_api.billing_configured():
        return {"renewal_notices": 0, "win_backs": 0}
    notices = 0
    for subscription_id in lifecycle.renewals_due_notice():
        try:
            outcome = lifecycle.do_renewal_notice(subscription_id)
        except stripe_api.StripeError as error:
            # The next hour's run tries again; one reader's trouble stops no one else.
            logger.warning("Renewal notice for %s failed: %s", subscription_id, error)
            continue
        notices += outcome == "renewal notice queued"
    win_backs = sum(lifecycle.do_win_back(pk) for pk in lifecycle.win_back_candidates())
    for gift_id in gifts.gifts_to_deliver():
        deliver_gift.delay(gift_id)
    gifts.do_gift_reminders()
    logger.info("Billing lifecycle: %d renewal notices, %d win-back emails", notices, win_backs)
    return {"renewal_notices": notices, "win_backs": win_backs}


@shared_task(autoretry_for=(stripe_api.StripeError,), retry_backoff=60, max_retries=8)
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


@shared_task(autoretry_for=MAIL_ERRORS, retry_backoff=30, max_retries=6)
def send_gift_receipt(gift_id: int) -> None:
    """The buyer's receipt: what they paid, for whom, when it will be delivered."""
    _send_gift_email(gift_id, "receipt_sent_at", emails.gift_receipt)


@shared_task(autoretry_for=MAIL_ERRORS, retry_backoff=30, max_retries=6)
def deliver_gift(gift_id: int) -> None:
    """The recipient's email, on the delivery date, with the single-use link."""
    with transaction.atomic():
        due = GiftCode.objects.filter(pk=gift_id, status=GiftCode.Status.PAID).exists()
    if due:
        _send_gift_email(gift_id, "delivered_at", emails.gift_delivery)
