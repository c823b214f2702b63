"""Signup: the emailed link, the reader, their Stripe customer, a Checkout Session, fulfilment.

The signup form only sends an email (do_request_signup), the same answer
for every address: a member gets a sign-in link, anyone else a link to
continue. Nothing is stored and nothing reaches Stripe until the owner of
the address opens that link and presses its button (do_continue_signup,
which signs them in); their checkout then starts from their session
(do_start_checkout).
"""

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from stripe.params.checkout import SessionCreateParams as CheckoutSessionParams
from stripe.params.checkout import (
    SessionCreateParamsCustomerUpdate,
    SessionCreateParamsSubscriptionData,
)

from subscriptions import signin, stripe_api, trials
from subscriptions.actions.account import do_set_digest_choices
from subscriptions.actions.reader_emails import queue_signup_link
from subscriptions.actions.stripe_sync import do_sync_subscription, int_or_none
from subscriptions.addresses import normalise_email
from subscriptions.models import Membership, Subscriber, iso_or_none
from subscriptions.referral_models import Referral

logger = logging.getLogger(__name__)


@dataclass
class SignupResult:
    subscriber: Subscriber
    checkout_url: str | None = None
    checkout_session_id: str | None = None
    trial_days: int = 0

    @property
    def already_member(self) -> bool:
        return self.checkout_url is None


@transaction.atomic
def do_request_signup(*, email: str, name: str, time_zone: str, referral: str = "") -> None:
    """Email the address what it needs to join (or sign in); store nothing, call no one.

    Which email it is (a link to continue, or, for a member, a sign-in
    link) is decided by the task that sends it, after this request has
    answered, so the answer and its timing are the same for any address.
    """
    queue_signup_link(normalise_email(email), name, time_zone, referral)


def _find_subscriber(email: str) -> Subscriber | None:
    return Subscriber.objects.select_for_update().filter(email__iexact=email).first()


@transaction.atomic
def do_continue_signup(
    claim: signin.SignupClaim,
    *,
    name: str,
    time_zone: str,
    digest: dict[str, Any] | None = None,
) -> Subscriber | None:
    """The owner pressed the button of their emailed signup link: the reader, signed in.

    Creates the reader for a new address. The name and time zone are the
    ones the owner confirmed on the link's page, and so are `digest`'s
    sections, days and format (do_set_digest_choices). Moves last_signed_in_at,
    as a sign-in link does, so the link works once; None if it was used
    already (or the reader signed in since it was sent).
    """
    email = normalise_email(claim.email)
    subscriber = _find_subscriber(email)
    if subscriber is None:
        if claim.last_signed_in_at:
            return None  # the reader it was made for is gone (deleted their account)
        try:
            with transaction.atomic():
                subscriber = Subscriber.objects.create(email=email, time_zone=time_zone)
        except IntegrityError:
            return None  # the same link, used at the same moment in another request
    elif iso_or_none(subscriber.last_signed_in_at) != (claim.last_signed_in_at or None):
        return None
    subscriber.last_signed_in_at = timezone.now()
    subscriber.time_zone = time_zone
    if name:
        subscriber.name = name
    subscriber.save(update_fields=["last_signed_in_at", "time_zone", "name", "updated_at"])
    if digest is not None:
        do_set_digest_choices(subscriber, **digest)
    return subscriber


def do_start_checkout(
    subscriber: Subscriber, *, allow_trial: bool = True, resume: str | None = None
) -> SignupResult:
    """Start (or restart) a signed-in reader's checkout: one Stripe customer, one Checkout Session.

    Without `allow_trial` (the way back offered to a reader whose membership
    ended) the checkout never starts a free trial, whatever the settings.

    A reader who already has a live subscription, or a complimentary
    membership, gets no checkout (it would bill them twice). The Stripe
    customer is created here, when a checkout really starts, never for a
    signup request.

    The transaction covers the reader's row lock and the customer it
    records; the Checkout Session is created after it commits, so a slow
    Stripe never holds the lock (its idempotency key makes a retry safe).

    `resume` is the id of the Checkout Session this browser started last: if
    it is still open, for this reader's customer, the reader goes back to it
    instead of a second one (the Back button, then the form again). Two open
    checkouts could both be finished, in two tabs, and bill twice.
    """
    with transaction.atomic():
        # The lock serialises two checkouts of the same reader, so they never
        # create two Stripe customers (the idempotency key covers retries).
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        membership, _ = Membership.objects.select_for_update().get_or_create(subscriber=subscriber)
        if membership.needs_no_checkout:
            return SignupResult(subscriber=subscriber)
        trial_days = trials.trial_days(membership, ask_stripe=True) if allow_trial else 0
        if not membership.stripe_customer_id:
            membership.stripe_customer_id = stripe_api.create_customer(
                email=subscriber.email, name=subscriber.greeting_name, subscriber_id=subscriber.pk
            )
            membership.save(update_fields=["stripe_customer_id", "updated_at"])
    if resume:
        try:
            previous = stripe_api.retrieve_checkout_session(resume)
        except stripe_api.InvalidRequestError:
            previous = None  # gone, or another mode's: start a new one
        if (
            previous is not None
            and previous.status == "open"
            and previous.url
            and stripe_api.expandable_id(previous.customer) == membership.stripe_customer_id
        ):
            logger.info("Checkout session %s resumed for subscriber %s", resume, subscriber.pk)
            return SignupResult(
                subscriber=subscriber,
                checkout_url=previous.url,
                checkout_session_id=previous.id,
                trial_days=trial_days,
            )
    session = stripe_api.create_checkout_session(
        checkout_params(subscriber, membership.stripe_customer_id, trial_days),
        # A double-click within ten minutes gets the same session back.
        key=stripe_api.idempotency_key(
            "checkout",
            subscriber.pk,
            membership.stripe_customer_id,
            stripe_api.price_id(),
            trial_days,
            settings.TRIAL_REQUIRES_CARD,
            settings.ALLOW_PROMOTION_CODES,
            settings.STRIPE_AUTOMATIC_TAX,
            settings.STRIPE_TAX_ID_COLLECTION,
            int(timezone.now().timestamp() // 600),
        ),
    )
    logger.info("Checkout session %s started for subscriber %s", session.id, subscriber.pk)
    return SignupResult(
        subscriber=subscriber,
        checkout_url=session.url,
        checkout_session_id=session.id,
        trial_days=trial_days,
    )


def checkout_params(
    subscriber: Subscriber, customer_id: str, trial_days: int
) -> CheckoutSessionParams:
    success = reverse("subscriptions:checkout-success")
    metadata = {"subscriber_id": str(subscriber.pk)}
    referral = Referral.objects.filter(referred=subscriber, eligible=True).first()
    if referral is not None:
        # Who brought them, for whoever reads the subscription at Stripe.
        metadata["referred_by"] = str(referral.referrer_id)
    subscription_data: SessionCreateParamsSubscriptionData = {"metadata": metadata}
    if trial_days > 0:
        subscription_data["trial_period_days"] = trial_days
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
    apply_tax_settings(params, has_customer=True)
    if settings.ALLOW_PROMOTION_CODES:
        # Stripe's page then has a "promotion code" field; the discount it
        # gives is read back from Stripe (stripe_sync), never assumed.
        params["allow_promotion_codes"] = True
    if not settings.TRIAL_REQUIRES_CARD and trial_days > 0:
        # No card up front; a trial that ends without one ends the
        # subscription rather than leaving an unpaid invoice behind.
        params["payment_method_collection"] = "if_required"
        subscription_data["trial_settings"] = {"end_behavior": {"missing_payment_method": "cancel"}}
    return params


def apply_tax_settings(params: CheckoutSessionParams, *, has_customer: bool) -> None:
    """Stripe Tax and tax id collection, as the settings say (both off by default).

    With an existing customer Stripe must be allowed to save what Checkout
    asks for on it: the address tax is computed from, the business name a
    tax id goes with.
    """
    customer_update: SessionCreateParamsCustomerUpdate = {}
    if settings.STRIPE_AUTOMATIC_TAX:
        params["automatic_tax"] = {"enabled": True}
        customer_update["address"] = "auto"
    if settings.STRIPE_TAX_ID_COLLECTION:
        params["tax_id_collection"] = {"enabled": True}
        customer_update["name"] = "auto"
    if has_customer and customer_update:
        params["customer_update"] = customer_update


@dataclass
class FulfilledCheckout:
    subscriber: Subscriber
    # The reader's membership follows another subscription (an older checkout
    # finished first): this one was not kept, and is cancelled at Stripe.
    duplicate: bool = False


@transaction.atomic
def do_fulfil_checkout(session_id: str) -> Subscriber | None:
    """Apply a completed Checkout Session: the success page and the webhook both call this.

    Idempotent; returns the reader, or None while the session is not complete.
    """
    fulfilled = do_fulfil_checkout_for_page(session_id)
    return fulfilled.subscriber if fulfilled else None


@transaction.atomic
def do_fulfil_checkout_for_page(session_id: str) -> FulfilledCheckout | None:
    """do_fulfil_checkout, and whether the session's subscription is the one the reader keeps."""
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
    if membership is None:
        return None
    return FulfilledCheckout(
        membership.subscriber, duplicate=membership.stripe_subscription_id != subscription_id
    )
