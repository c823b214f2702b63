"""What readers and Stripe do to memberships, one function per action.

Each action runs in one transaction; the emails it causes are claimed in
that transaction (ReaderEmail, unique per cause) and queued to Celery only
once it commits. Views, webhook handlers and tasks call these and nothing
else writes a membership.
"""

import datetime
import logging
from dataclasses import dataclass

import stripe
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from subscriptions import stripe_api
from subscriptions.models import (
    Membership,
    ReaderEmail,
    StripeEvent,
    Subscriber,
    validate_time_zone,
)

logger = logging.getLogger(__name__)

Status = Membership.Status
# Statuses in which the reader still has a subscription that bills or will
# bill: starting another checkout would charge them twice.
LIVE_STATUSES = (Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.UNPAID, Status.PAUSED)
ENDED_STATUSES = (Status.CANCELED, Status.UNPAID)


def from_timestamp(value: int | None) -> datetime.datetime | None:
    return None if value is None else datetime.datetime.fromtimestamp(value, tz=datetime.UTC)


def normalise_email(email: str) -> str:
    local, sep, domain = email.strip().rpartition("@")
    return f"{local}{sep}{domain.lower()}"


# --- Emails -----------------------------------------------------------------


def queue_email(
    subscriber: Subscriber, kind: ReaderEmail.Kind, cause: str, context: dict | None = None
) -> ReaderEmail | None:
    """Claim the email for this cause and send it after commit; None if already claimed."""
    try:
        with transaction.atomic():
            email = ReaderEmail.objects.create(
                subscriber=subscriber, kind=kind, cause=cause, context=context or {}
            )
    except IntegrityError:
        return None  # this cause already had its email
    from subscriptions import tasks

    transaction.on_commit(lambda: tasks.send_reader_email.delay(email.pk))
    return email


def queue_sign_in_link(subscriber: Subscriber) -> None:
    """Email a sign-in link (not once per cause: a reader may ask again)."""
    from subscriptions import tasks

    transaction.on_commit(lambda: tasks.send_sign_in_link.delay(subscriber.pk))


# --- Signup and checkout --------------------------------------------------------


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


def checkout_params(subscriber: Subscriber, customer_id: str) -> dict:
    success = reverse("subscriptions:checkout-success")
    subscription_data: dict = {"metadata": {"subscriber_id": str(subscriber.pk)}}
    if settings.TRIAL_DAYS > 0:
        subscription_data["trial_period_days"] = settings.TRIAL_DAYS
    params: dict = {
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


def do_fulfil_checkout(session_id: str) -> Subscriber | None:
    """Apply a completed Checkout Session: the success page and the webhook both call this.

    Idempotent; returns the reader, or None while the session is not complete.
    """
    session = stripe_api.retrieve_checkout_session(session_id)
    if session.mode != "subscription" or session.status != "complete":
        return None
    subscription_id = stripe_api.expandable_id(session.subscription)
    customer_id = stripe_api.expandable_id(session.customer)
    membership = sync_subscription(
        subscription_id,
        customer_id=customer_id,
        subscriber_id=_int_or_none(session.client_reference_id),
    )
    return membership.subscriber if membership else None


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


# --- Mirroring a subscription ------------------------------------------------------


def _find_membership(
    subscription_id: str | None, customer_id: str | None, subscriber_id: int | None
) -> Membership | None:
    memberships = Membership.objects.select_for_update()
    for lookup in (
        {"stripe_subscription_id": subscription_id},
        {"stripe_customer_id": customer_id},
        {"subscriber_id": subscriber_id},
    ):
        value = next(iter(lookup.values()))
        if value is not None:
            membership = memberships.filter(**lookup).first()
            if membership is not None:
                return membership
    return None


def sync_subscription(
    subscription_id: str,
    *,
    customer_id: str | None = None,
    subscriber_id: int | None = None,
) -> Membership | None:
    """Fetch the subscription from Stripe and mirror it onto the reader's membership.

    The membership row is locked first and the subscription fetched inside
    the lock, so whatever order events arrive in, concurrently or not, the
    last write is Stripe's latest state. Returns None for a subscription
    that belongs to no reader of ours.
    """
    return _sync(subscription_id, customer_id, subscriber_id)[0]


def _sync(
    subscription_id: str, customer_id: str | None = None, subscriber_id: int | None = None
) -> tuple[Membership | None, stripe.Subscription]:
    with transaction.atomic():
        membership = _find_membership(subscription_id, customer_id, subscriber_id)
        subscription = stripe_api.retrieve_subscription(subscription_id)
        if membership is None:
            # Not known by these ids: try what Stripe says about the owner.
            metadata_owner = _int_or_none(_metadata(subscription, "subscriber_id"))
            membership = _find_membership(
                None, stripe_api.expandable_id(subscription.customer), metadata_owner
            )
        if membership is None:
            logger.warning("Subscription %s belongs to no reader; ignored", subscription_id)
            return None, subscription
        apply_subscription(membership, subscription)
        return membership, subscription


def _metadata(obj: stripe.StripeObject, key: str) -> str | None:
    metadata = getattr(obj, "metadata", None)
    return metadata[key] if metadata is not None and key in metadata else None


def apply_subscription(membership: Membership, subscription: stripe.Subscription) -> bool:
    """Write a subscription fetched from Stripe onto a locked membership.

    Returns False when the subscription must not replace what we have:
    an older subscription of the reader's, or one that would revive a
    subscription Stripe has ended.
    """
    incoming = subscription.status
    current_id = membership.stripe_subscription_id
    if current_id and current_id != subscription.id:
        if incoming in Membership.TERMINAL_STATUSES or membership.status not in (
            *Membership.TERMINAL_STATUSES,
            Status.INCOMPLETE,
        ):
            # The reader's membership follows another subscription, which
            # is live (or this one is over): this one does not replace it.
            logger.warning(
                "Subscription %s (%s) ignored: membership %s follows %s (%s)",
                subscription.id,
                incoming,
                membership.pk,
                current_id,
                membership.status,
            )
            if incoming not in Membership.TERMINAL_STATUSES:
                _cancel_duplicate(subscription)
            return False
    elif (
        current_id == subscription.id
        and membership.status in Membership.TERMINAL_STATUSES
        and incoming not in Membership.TERMINAL_STATUSES
    ):
        # Stripe never brings an ended subscription back; a stale copy must not.
        logger.warning(
            "Subscription %s is %s; not revived to %s", current_id, membership.status, incoming
        )
        return False

    previous_status = membership.status
    before = [getattr(membership, field) for field in Membership.MIRRORED_FROM_STRIPE]
    now = timezone.now()
    membership.stripe_subscription_id = subscription.id
    membership.stripe_customer_id = stripe_api.expandable_id(subscription.customer)
    membership.status = incoming
    membership.trial_end = from_timestamp(subscription.trial_end)
    membership.current_period_end = from_timestamp(stripe_api.subscription_period_end(subscription))
    membership.cancel_at_period_end = bool(
        subscription.cancel_at_period_end or subscription.cancel_at
    )
    membership.amount = stripe_api.subscription_amount(subscription)
    if incoming != Status.PAST_DUE:
        membership.past_due_since = None
    elif previous_status != Status.PAST_DUE or membership.past_due_since is None:
        membership.past_due_since = now
    membership.stripe_synced_at = now
    if [getattr(membership, field) for field in Membership.MIRRORED_FROM_STRIPE] == before:
        # Nothing changed: record the check without touching updated_at, which
        # reconciliation reads as "changed recently, check again".
        Membership.objects.filter(pk=membership.pk).update(stripe_synced_at=now)
    else:
        membership.save()

    subscriber = membership.subscriber
    if incoming in (Status.TRIALING, Status.ACTIVE):
        queue_email(
            subscriber,
            ReaderEmail.Kind.WELCOME,
            cause=subscription.id,
            context={"trial_end": _iso(membership.trial_end), "status": incoming},
        )
    elif (
        incoming in ENDED_STATUSES
        and ReaderEmail.objects.filter(
            kind=ReaderEmail.Kind.WELCOME, cause=subscription.id
        ).exists()
    ):
        # Only a membership that had started can end; an abandoned signup
        # that expires is not news to the reader.
        queue_email(
            subscriber,
            ReaderEmail.Kind.MEMBERSHIP_ENDED,
            cause=subscription.id,
            context={"status": incoming},
        )
    if previous_status != incoming:
        logger.info(
            "Membership %s: %s -> %s (%s)",
            membership.pk,
            previous_status,
            incoming,
            subscription.id,
        )
    return True


def _cancel_duplicate(subscription: stripe.Subscription) -> None:
    """A second live subscription for one reader (two checkouts finished in two tabs).

    One reader pays for one membership: a duplicate that has taken no money
    yet (trialing or incomplete) is cancelled at Stripe; one that has been
    paid is left for staff to refund, loudly.
    """
    if subscription.status in (Status.TRIALING, Status.INCOMPLETE):
        logger.warning("Cancelling duplicate subscription %s", subscription.id)
        transaction.on_commit(lambda: stripe_api.cancel_subscription(subscription.id))
    else:
        logger.error(
            "Duplicate paid subscription %s (%s) for customer %s: refund and cancel it at Stripe",
            subscription.id,
            subscription.status,
            stripe_api.expandable_id(subscription.customer),
        )


def _iso(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value else None


def do_trial_ending(subscription_id: str) -> None:
    """Stripe says the trial ends in a few days: sync, and tell the reader the date and amount."""
    with transaction.atomic():
        membership, subscription = _sync(subscription_id)
        if membership is None or membership.stripe_subscription_id != subscription_id:
            return
        if membership.status != Status.TRIALING or membership.trial_end is None:
            return
        if membership.cancel_at_period_end:
            return  # they cancelled already: nothing will be charged
        queue_email(
            membership.subscriber,
            ReaderEmail.Kind.TRIAL_ENDING,
            # A trial extended by staff gets its own reminder.
            cause=f"{subscription_id}:{int(membership.trial_end.timestamp())}",
            context={
                "trial_end": _iso(membership.trial_end),
                "amount": membership.amount or stripe_api.PRICE_CENTS,
                "has_payment_method": subscription.default_payment_method is not None,
            },
        )


def do_invoice_event(invoice: stripe.Invoice, kind: ReaderEmail.Kind | None) -> None:
    """An invoice was paid or failed: sync its subscription; email the reader if `kind`."""
    subscription_id = stripe_api.invoice_subscription_id(invoice)
    if subscription_id is None:
        return  # not a subscription invoice: nothing of ours
    with transaction.atomic():
        membership = sync_subscription(
            subscription_id, customer_id=stripe_api.expandable_id(invoice.customer)
        )
        if membership is None or kind is None:
            return
        queue_email(
            membership.subscriber,
            kind,
            cause=invoice.id,
            context={
                "amount": invoice.amount_due,
                "hosted_invoice_url": invoice.hosted_invoice_url,
                "next_payment_attempt": _iso(from_timestamp(invoice.next_payment_attempt)),
            },
        )


# --- Reconciliation ------------------------------------------------------------------

RECONCILE_RECENT = datetime.timedelta(days=2)
RECONCILE_LIMIT = 500


def memberships_to_reconcile(now: datetime.datetime | None = None) -> list[int]:
    """Memberships whose Stripe state we should check again, oldest check first.

    Recently changed ones (an event may have been lost right after), and
    suspicious ones: a signup with a customer but no subscription yet (the
    checkout webhook may be lost), past_due, a trial past its end, a paid
    period past its end without renewal.
    """
    now = now or timezone.now()
    memberships = Membership.objects.exclude(stripe_customer_id=None)
    recent = memberships.filter(updated_at__gte=now - RECONCILE_RECENT)
    suspicious = (
        memberships.filter(
            status=Status.INCOMPLETE, created_at__lte=now - datetime.timedelta(minutes=30)
        )
        | memberships.filter(status=Status.PAST_DUE)
        | memberships.filter(status=Status.TRIALING, trial_end__lt=now)
        | memberships.filter(status=Status.ACTIVE, current_period_end__lt=now)
    )
    ids = (recent | suspicious).exclude(
        status__in=Membership.TERMINAL_STATUSES, updated_at__lt=now - RECONCILE_RECENT
    )
    return list(
        ids.order_by("stripe_synced_at", "pk").values_list("pk", flat=True)[:RECONCILE_LIMIT]
    )


def do_reconcile_membership(membership_id: int) -> None:
    membership = Membership.objects.get(pk=membership_id)
    if membership.stripe_subscription_id:
        sync_subscription(membership.stripe_subscription_id)
        return
    # No subscription known yet: did a checkout complete without its webhook?
    subscription = stripe_api.latest_subscription(membership.stripe_customer_id)
    if subscription is not None:
        sync_subscription(subscription.id, customer_id=membership.stripe_customer_id)


# --- Account ------------------------------------------------------------------------------


def do_sign_in_requested(email: str) -> None:
    """Email a sign-in link if the address is a reader's; say nothing either way."""
    subscriber = Subscriber.objects.filter(email__iexact=normalise_email(email)).first()
    if subscriber is None:
        logger.info("Sign-in link requested for an unknown address")
        return
    if subscriber.email_status in (
        Subscriber.EmailStatus.BOUNCED,
        Subscriber.EmailStatus.COMPLAINED,
    ):
        logger.info(
            "Sign-in link not sent to subscriber %s: address not deliverable", subscriber.pk
        )
        return
    with transaction.atomic():
        queue_sign_in_link(subscriber)


def do_record_sign_in(subscriber_id: int, expected: str) -> Subscriber | None:
    """Use a sign-in link once: move last_signed_in_at, unless another use moved it first."""
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(pk=subscriber_id).first()
        if subscriber is None or _iso(subscriber.last_signed_in_at) != (expected or None):
            return None
        subscriber.last_signed_in_at = timezone.now()
        subscriber.save(update_fields=["last_signed_in_at", "updated_at"])
        return subscriber


def do_set_email_status(subscriber: Subscriber, status: Subscriber.EmailStatus) -> bool:
    """The reader's own unsubscribe or resubscribe from the account page.

    Resubscribing undoes an unsubscribe only: a hard bounce or a spam
    complaint is not the reader's to clear from a web form.
    """
    if status == Subscriber.EmailStatus.ACTIVE and subscriber.email_status != (
        Subscriber.EmailStatus.UNSUBSCRIBED
    ):
        return False
    with transaction.atomic():
        return subscriber.set_email_status(status)


def do_set_time_zone(subscriber: Subscriber, time_zone: str) -> None:
    validate_time_zone(time_zone)
    subscriber.time_zone = time_zone
    subscriber.save(update_fields=["time_zone", "updated_at"])


def portal_url(subscriber: Subscriber) -> str:
    """A Stripe Customer Portal session for the reader (card, invoices, cancel)."""
    membership = subscriber.membership
    return stripe_api.create_portal_session(
        membership.stripe_customer_id, f"{settings.SITE_URL}{reverse('subscriptions:account')}"
    )


# --- The reader's own data -------------------------------------------------------------


def do_export_reader(subscriber: Subscriber) -> dict:
    """Everything we hold about a reader, as plain JSON-ready data."""
    membership = Membership.objects.filter(subscriber=subscriber).first()
    return {
        "exported_at": _iso(timezone.now()),
        "reader": {
            "email": subscriber.email,
            "name": subscriber.name,
            "time_zone": subscriber.time_zone,
            "email_status": subscriber.email_status,
            "email_status_changed_at": _iso(subscriber.email_status_changed_at),
            "last_signed_in_at": _iso(subscriber.last_signed_in_at),
            "joined_at": _iso(subscriber.created_at),
        },
        "membership": None
        if membership is None
        else {
            "status": membership.status,
            "trial_end": _iso(membership.trial_end),
            "current_period_end": _iso(membership.current_period_end),
            "cancel_at_period_end": membership.cancel_at_period_end,
            "amount_cents": membership.amount,
            "complimentary": membership.complimentary,
            "complimentary_until": _iso(membership.complimentary_until),
            "stripe_customer_id": membership.stripe_customer_id,
            "stripe_subscription_id": membership.stripe_subscription_id,
        },
        "digests": [
            {"edition": d.edition.date.isoformat(), "status": d.status, "sent_at": _iso(d.sent_at)}
            for d in subscriber.deliveries.select_related("edition").order_by("edition__date")
        ],
        "emails": [
            {"kind": e.kind, "status": e.status, "created_at": _iso(e.created_at)}
            for e in subscriber.emails.order_by("created_at")
        ],
    }


def do_delete_reader(subscriber: Subscriber) -> None:
    """Delete a reader and everything we hold about them; stop their billing first.

    The live subscription is cancelled at Stripe before anything is deleted
    here: if Stripe cannot be reached the call raises and nothing is
    deleted, so a reader is never left paying for an account that no longer
    exists. Stripe keeps its own records (the customer, its invoices and
    payments: the publisher's accounting record); we keep nothing.
    """
    membership = Membership.objects.filter(subscriber=subscriber).first()
    if (
        membership is not None
        and membership.stripe_subscription_id
        and membership.status not in Membership.TERMINAL_STATUSES
    ):
        try:
            stripe_api.cancel_subscription(membership.stripe_subscription_id)
        except stripe_api.InvalidRequestError as error:
            # Already gone at Stripe (deleted by hand, say): nothing to stop.
            if getattr(error, "code", None) != "resource_missing":
                raise
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        customer_id = membership.stripe_customer_id if membership else None
        if customer_id:
            # Our copies of Stripe's events about them carry their address.
            StripeEvent.objects.filter(
                Q(payload__data__object__customer=customer_id)
                | Q(payload__data__object__id=customer_id)
            ).delete()
        # The admin's history names the reader (its object_repr is the address).
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Subscriber), object_id=str(subscriber.pk)
        ).delete()
        if membership is not None:
            LogEntry.objects.filter(
                content_type=ContentType.objects.get_for_model(Membership),
                object_id=str(membership.pk),
            ).delete()
        reader_id = subscriber.pk
        # Membership, deliveries and reader emails go with it (CASCADE).
        subscriber.delete()
    logger.info("Reader %s deleted at their request", reader_id)
