"""Signup: the reader, their Stripe customer, a Checkout Session, and its fulfilment."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from stripe.params.checkout import SessionCreateParams as CheckoutSessionParams
from stripe.params.checkout import SessionCreateParamsSubscriptionData

from subscriptions import stripe_api
from subscriptions.actions.reader_emails import queue_sign_in_link
from subscriptions.actions.stripe_sync import do_sync_subscription, int_or_none
from subscriptions.addresses import normalise_email
from subscriptions.models import Membership, Subscriber

logger = logging.getLogger(__name__)

Status = Membership.Status
# Statuses in which the reader still has a subscription that bills or will
# bill: starting another checkout would charge them twice.
LIVE_STATUSES = (Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.UNPAID, Status.PAUSED)


@dataclass
class SignupResult:
    subscriber: Subscriber
    checkout_url: str | None = None
    checkout_session_id: str | None = None
    # Whether completing this checkout may sign the browser in: only for a
    # reader with no past (never subscribed, never signed in). Anyone can
    # type a lapsed reader's address; paying must not open their account.
    signs_in: bool = False

    @property
    def already_member(self) -> bool:
        return self.checkout_url is None


def get_or_create_subscriber(email: str, name: str, time_zone: str) -> Subscriber:
    """The reader for this address, created if new.

    An existing reader's name and time zone are not changed from this
    public form (anyone can type any address); they change them signed in.
    """
    email = normalise_email(email)
    subscriber = Subscriber.objects.filter(email__iexact=email).first()
    if subscriber is not None:
        return subscriber
    try:
        with transaction.atomic():
            return Subscriber.objects.create(email=email, name=name, time_zone=time_zone)
    except IntegrityError:
        # The same address signed up at the same moment in another request.
        return Subscriber.objects.get(email__iexact=email)


def do_start_checkout(*, email: str, name: str = "", time_zone: str) -> SignupResult:
    """Start (or restart) a reader's signup: one Stripe customer, one Checkout Session.

    A reader who already has a live subscription, or a complimentary
    membership, gets no checkout (it would bill them twice); they are
    emailed a sign-in link instead.

    The transaction covers the reader's row lock and the customer it
    records; the Checkout Session is created after it commits, so a slow
    Stripe never holds the lock (its idempotency key makes a retry safe).
    """
    subscriber = get_or_create_subscriber(email, name, time_zone)
    with transaction.atomic():
        # The lock serialises two signups of the same reader, so they never
        # create two Stripe customers (the idempotency key covers retries).
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        membership, _ = Membership.objects.select_for_update().get_or_create(subscriber=subscriber)
        if membership.status in LIVE_STATUSES or membership.is_comped:
            queue_sign_in_link(subscriber)
            return SignupResult(subscriber=subscriber)
        no_past = not membership.stripe_subscription_id and subscriber.last_signed_in_at is None
        if not membership.stripe_customer_id:
            membership.stripe_customer_id = stripe_api.create_customer(
                email=subscriber.email, name=subscriber.name, subscriber_id=subscriber.pk
            )
            membership.save(update_fields=["stripe_customer_id", "updated_at"])
    session = stripe_api.create_checkout_session(
        checkout_params(subscriber, membership.stripe_customer_id),
        # A double-click within ten minutes gets the same session back.
        key=stripe_api.idempotency_key(
            "checkout",
            subscriber.pk,
            membership.stripe_customer_id,
            stripe_api.price_id(),
            settings.TRIAL_DAYS,
            settings.TRIAL_REQUIRES_CARD,
            int(timezone.now().timestamp() // 600),
        ),
    )
    logger.info("Checkout session %s started for subscriber %s", session.id, subscriber.pk)
    return SignupResult(
        subscriber=subscriber,
        checkout_url=session.url,
        checkout_session_id=session.id,
        signs_in=no_past,
    )


def checkout_params(subscriber: Subscriber, customer_id: str) -> CheckoutSessionParams:
    success = reverse("subscriptions:checkout-success")
    subscription_data: SessionCreateParamsSubscriptionData = {
        "metadata": {"subscriber_id": str(subscriber.pk)}
    }
    if settings.TRIAL_DAYS > 0:
        subscription_data["trial_period_days"] = settings.TRIAL_DAYS
    params: CheckoutSessionParams = {
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": str(subscriber.pk),
        "line_items": [{"price": stripe_api.price_id(), "quantity": 1}],
        "subscription_data": subscription_data,
        "metadata": {"subscriber_id": str(subscriber.pk)},
        "success_url": f"{settings.SITE_URL}{success}?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{settings.SITE_URL}/?checkout=cancelled#signup",
    }
    if not settings.TRIAL_REQUIRES_CARD and settings.TRIAL_DAYS > 0:
        # No card up front; a trial that ends without one ends the
        # subscription rather than leaving an unpaid invoice behind.
        params["payment_method_collection"] = "if_required"
        subscription_data["trial_settings"] = {"end_behavior": {"missing_payment_method": "cancel"}}
    return params


@transaction.atomic
def do_fulfil_checkout(session_id: str) -> Subscriber | None:
    """Apply a completed Checkout Session: the success page and the webhook both call this.

    Idempotent; returns the reader, or None while the session is not complete.
    """
    session = stripe_api.retrieve_checkout_session(session_id)
    if session.mode != "subscription" or session.status != "complete":
        return None
    subscription_id = stripe_api.expandable_id(session.subscription)
    if subscription_id is None:
        return None  # complete, yet no subscription: not a checkout of ours
    customer_id = stripe_api.expandable_id(session.customer)
    membership = do_sync_subscription(
        subscription_id,
        customer_id=customer_id,
        subscriber_id=int_or_none(session.client_reference_id),
    )
    return membership.subscriber if membership else None
