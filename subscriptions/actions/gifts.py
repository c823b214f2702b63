"""Gift subscriptions: a buyer pays $46 once; the recipient gets a year, no card asked.

The buyer's Checkout Session is in payment mode (no subscription, never
billed again). Its completion (webhook or success page, whichever first)
marks the gift paid, once, and the buyer's receipt goes out. On the
delivery date the recipient is emailed a signed single-use link; opening it
and pressing the button starts a one-year complimentary membership. Before
that year ends they are reminded, and when it ends offered to continue at
$46 (a normal checkout without a trial).
"""

import datetime
import logging
import secrets
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from stripe.params.checkout import SessionCreateParams as CheckoutSessionParams

from subscriptions import side_effects, stripe_api
from subscriptions.actions.checkout import apply_tax_settings
from subscriptions.actions.reader_emails import queue_email
from subscriptions.actions.stripe_sync import int_or_none
from subscriptions.addresses import normalise_email
from subscriptions.models import GiftCode, Membership, ReaderEmail, Subscriber, iso_or_none

logger = logging.getLogger(__name__)

GIFT_LENGTH = datetime.timedelta(days=365)
# How far ahead a buyer may set the delivery date.
LATEST_DELIVERY = datetime.timedelta(days=366)


class GiftProblem(Exception):
    """The gift cannot be redeemed (or bought) as asked; the message says why, to a person."""


def newsroom_today(now: datetime.datetime) -> datetime.date:
    """Delivery dates are the newsroom's (DIGEST_TIMEZONE), as the form says."""
    return timezone.localtime(now, ZoneInfo(settings.DIGEST_TIMEZONE)).date()


def do_start_gift(
    *,
    buyer_email: str,
    buyer_name: str,
    recipient_email: str,
    recipient_name: str,
    deliver_on: datetime.date,
) -> tuple[str, str]:
    """Record the gift and open its Checkout Session (payment mode): (Checkout's URL, its id).

    The row is written first (its id is the session's reference), the
    session created after the commit, so a slow Stripe holds no lock.
    """
    with transaction.atomic():
        gift = GiftCode.objects.create(
            code=secrets.token_urlsafe(16),
            buyer_email=normalise_email(buyer_email),
            buyer_name=buyer_name,
            recipient_email=normalise_email(recipient_email),
            recipient_name=recipient_name,
            deliver_on=deliver_on,
            amount=stripe_api.PRICE_CENTS,
        )
    params = gift_checkout_params(gift)
    session = stripe_api.create_checkout_session(
        params, key=stripe_api.idempotency_key("gift", gift.pk, params)
    )
    GiftCode.objects.filter(pk=gift.pk).update(checkout_session_id=session.id)
    return session.url or settings.SITE_URL, session.id


def gift_checkout_params(gift: GiftCode) -> CheckoutSessionParams:
    thanks = reverse("subscriptions:gift-thanks")
    params: CheckoutSessionParams = {
        "mode": "payment",
        "customer_email": gift.buyer_email,
        "client_reference_id": f"gift-{gift.pk}",
        "line_items": [
            {
                "price_data": {
                    "currency": stripe_api.PRICE_CURRENCY,
                    "unit_amount": gift.amount,
                    "product": stripe_api.PRODUCT_ID,
                },
                "quantity": 1,
            }
        ],
        "metadata": {"gift_id": str(gift.pk)},
        "success_url": f"{settings.SITE_URL}{thanks}?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{settings.SITE_URL}{reverse('subscriptions:gift')}?checkout=cancelled",
    }
    apply_tax_settings(params, has_customer=False)
    return params


@transaction.atomic
def do_fulfil_gift(session_id: str, now: datetime.datetime | None = None) -> GiftCode | None:
    """A gift's Checkout completed: mark it paid once, queue the receipt (and the delivery if due).

    The session is fetched from Stripe; only a paid one counts. Idempotent.
    """
    now = now or timezone.now()
    session = stripe_api.retrieve_checkout_session(session_id)
    if session.mode != "payment" or session.payment_status != "paid":
        return None
    metadata = getattr(session, "metadata", None)
    gift_id = metadata["gift_id"] if metadata is not None and "gift_id" in metadata else None
    gift_pk = int_or_none(gift_id)
    wanted = Q(checkout_session_id=session_id) | (Q(pk=gift_pk) if gift_pk else Q(pk__in=[]))
    gift = GiftCode.objects.select_for_update().filter(wanted).first()
    if gift is None:
        logger.warning("Paid checkout %s names no gift of ours", session_id)
        return None
    if gift.status != GiftCode.Status.AWAITING_PAYMENT:
        return gift
    gift.status = GiftCode.Status.PAID
    gift.paid_at = now
    gift.checkout_session_id = session_id
    gift.amount = session.amount_total if session.amount_total is not None else gift.amount
    gift.save(update_fields=["status", "paid_at", "checkout_session_id", "amount"])
    transaction.on_commit(lambda: side_effects.send_gift_receipt.delay(gift.pk))
    if gift.deliver_on <= newsroom_today(now):
        transaction.on_commit(lambda: side_effects.deliver_gift.delay(gift.pk))
    logger.info("Gift %s paid (session %s)", gift.pk, session_id)
    return gift


def gifts_to_deliver(now: datetime.datetime | None = None) -> list[int]:
    """Paid gifts whose delivery date has come in the newsroom and whose email has not gone."""
    today = newsroom_today(now or timezone.now())
    return list(
        GiftCode.objects.filter(
            status=GiftCode.Status.PAID, delivered_at=None, deliver_on__lte=today
        ).values_list("pk", flat=True)
    )


@transaction.atomic
def do_redeem_gift(
    gift_id: int, *, name: str, time_zone: str, now: datetime.datetime | None = None
) -> Subscriber:
    """The recipient pressed the button: one year complimentary, from now (or the end of a comp).

    The link went to the recipient's address, so it stands for them: the
    reader is found or created by that address. Used once: a second press,
    here or in another tab, is refused. A reader who pays Stripe for a live
    membership is asked to cancel its renewal first, so nobody pays twice.
    """
    now = now or timezone.now()
    gift = GiftCode.objects.select_for_update().get(pk=gift_id)
    if gift.redeemed_at is not None:
        raise GiftProblem("This gift has already been used.")
    if gift.status != GiftCode.Status.DELIVERED:
        raise GiftProblem("This gift is not ready yet.")
    subscriber = Subscriber.objects.select_for_update().filter(
        email__iexact=gift.recipient_email
    ).first() or Subscriber.objects.create(email=gift.recipient_email, time_zone=time_zone)
    membership, _ = Membership.objects.select_for_update().get_or_create(subscriber=subscriber)
    if membership.has_live_subscription and not membership.cancel_at_period_end:
        raise GiftProblem(
            "You already pay for a membership. Cancel its renewal in your account "
            "(the briefing continues meanwhile), then use this link again."
        )
    start = now
    if membership.is_comped and membership.complimentary_until is not None:
        start = max(now, membership.complimentary_until)
    membership.complimentary = True
    membership.complimentary_until = start + GIFT_LENGTH
    membership.save(update_fields=["complimentary", "complimentary_until", "updated_at"])
    subscriber.last_signed_in_at = now  # the emailed link signs them in: older links lapse
    if name:
        subscriber.name = name
    if not subscriber.pk or subscriber.time_zone != time_zone:
        subscriber.time_zone = time_zone
    subscriber.save()
    gift.status = GiftCode.Status.REDEEMED
    gift.redeemed_at = now
    gift.redeemed_by = subscriber
    gift.save(update_fields=["status", "redeemed_at", "redeemed_by"])
    logger.info("Gift %s redeemed by subscriber %s", gift.pk, subscriber.pk)
    return subscriber


def do_gift_reminders(now: datetime.datetime | None = None) -> int:
    """Before a gift year ends, a reminder; once it has ended, the offer to continue. Each once."""
    now = now or timezone.now()
    soon = now + datetime.timedelta(days=settings.RENEWAL_NOTICE_DAYS)
    sent = 0
    gifts = GiftCode.objects.filter(status=GiftCode.Status.REDEEMED).select_related(
        "redeemed_by__membership"
    )
    for gift in gifts.exclude(redeemed_by=None):
        subscriber = gift.redeemed_by
        assert subscriber is not None
        membership = getattr(subscriber, "membership", None)
        until = membership.complimentary_until if membership else None
        if membership is None or until is None or membership.has_live_subscription:
            continue  # they pay now (or staff changed the grant): nothing to offer
        if until <= now:
            kind = ReaderEmail.Kind.GIFT_ENDED
        elif until <= soon:
            kind = ReaderEmail.Kind.GIFT_ENDING
        else:
            continue
        with transaction.atomic():
            queued = queue_email(
                subscriber, kind, cause=f"gift:{gift.pk}", context={"until": iso_or_none(until)}
            )
        sent += queued is not None
    return sent
