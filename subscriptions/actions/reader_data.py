"""The reader's own data: everything we hold about them, and its deletion."""

import logging

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from subscriptions import referrals, stripe_api
from subscriptions.models import GiftCode, Membership, StripeEvent, Subscriber, iso_or_none

logger = logging.getLogger(__name__)


def export_reader(subscriber: Subscriber) -> dict:
    """Everything we hold about a reader, as plain JSON-ready data."""
    membership = Membership.objects.filter(subscriber=subscriber).first()
    return {
        "exported_at": iso_or_none(timezone.now()),
        "reader": {
            "email": subscriber.email,
            "name": subscriber.name,
            "time_zone": subscriber.time_zone,
            "send_time": f"{subscriber.send_time:%H:%M}",
            # What the digest carries: the sections followed (None: every
            # section, new ones included), the weekdays and the format.
            "sections": None
            if subscriber.all_sections
            else sorted(subscriber.sections.values_list("slug", flat=True)),
            "days": subscriber.weekdays,
            "format": subscriber.digest_format,
            "email_status": subscriber.email_status,
            "email_status_changed_at": iso_or_none(subscriber.email_status_changed_at),
            "last_signed_in_at": iso_or_none(subscriber.last_signed_in_at),
            "joined_at": iso_or_none(subscriber.created_at),
        },
        "membership": None
        if membership is None
        else {
            "status": membership.status,
            "trial_end": iso_or_none(membership.trial_end),
            "current_period_end": iso_or_none(membership.current_period_end),
            "cancel_at_period_end": membership.cancel_at_period_end,
            "amount_cents": membership.amount,
            "complimentary": membership.complimentary,
            "complimentary_until": iso_or_none(membership.complimentary_until),
            "stripe_customer_id": membership.stripe_customer_id,
            "stripe_subscription_id": membership.stripe_subscription_id,
        },
        "digests": [
            {
                "edition": d.edition.date.isoformat(),
                "status": d.status,
                "sent_at": iso_or_none(d.sent_at),
            }
            for d in subscriber.deliveries.select_related("edition").order_by("edition__date")
        ],
        "emails": [
            {"kind": e.kind, "status": e.status, "created_at": iso_or_none(e.created_at)}
            for e in subscriber.emails.order_by("created_at")
        ],
        "referrals": referrals.export(subscriber),
    }


def do_delete_reader(subscriber: Subscriber) -> None:
    """Delete a reader and everything we hold about them; stop their billing first.

    The live subscription is cancelled at Stripe before anything is deleted
    here: if Stripe cannot be reached the call raises and nothing is
    deleted, so a reader is never left paying for an account that no longer
    exists. Stripe keeps its own records (the customer, its invoices and
    payments: the publisher's accounting record); we keep nothing. So the
    transaction is declared around the deletion, after the call to Stripe.
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
        # A gift they received keeps the buyer's record (the buyer paid for
        # it) but not the recipient's address.
        GiftCode.objects.filter(
            Q(redeemed_by=subscriber) | Q(recipient_email__iexact=subscriber.email)
        ).update(recipient_email="deleted-reader@invalid", redeemed_by=None)
        reader_id = subscriber.pk
        # Membership, deliveries and reader emails go with it (CASCADE).
        subscriber.delete()
    logger.info("Reader %s deleted at their request", reader_id)
