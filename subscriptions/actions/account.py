"""The signed-in reader: sign-in links, their own settings, the billing portal."""

import datetime
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from subscriptions import stripe_api
from subscriptions.actions.reader_emails import (
    queue_customer_email_update,
    queue_email_change_link,
    queue_sign_in_link,
)
from subscriptions.addresses import normalise_email
from subscriptions.models import (
    DigestFormat,
    Subscriber,
    clean_days,
    days_label,
    iso_or_none,
    validate_time_zone,
)
from subscriptions.signals import digest_choices_changed
from subscriptions.signin import EmailChangeClaim

logger = logging.getLogger(__name__)


@transaction.atomic
def do_sign_in_requested(email: str) -> None:
    """Email a sign-in link if the address is a reader's; say nothing either way.

    Sent even to an address marked bounced or complained: the reader asked
    for it just now (a transactional email, not the digest), and without it
    they could not reach their account to cancel their billing. Digests and
    other reader emails stay suppressed.
    """
    subscriber = Subscriber.objects.filter(email__iexact=normalise_email(email)).first()
    if subscriber is None:
        logger.info("Sign-in link requested for an unknown address")
        return
    queue_sign_in_link(subscriber)


@transaction.atomic
def do_record_sign_in(subscriber_id: int, expected: str) -> Subscriber | None:
    """Use a sign-in link once: move last_signed_in_at, unless another use moved it first."""
    subscriber = Subscriber.objects.select_for_update().filter(pk=subscriber_id).first()
    if subscriber is None or iso_or_none(subscriber.last_signed_in_at) != (expected or None):
        return None
    subscriber.last_signed_in_at = timezone.now()
    subscriber.save(update_fields=["last_signed_in_at", "updated_at"])
    return subscriber


@transaction.atomic
def do_sign_out_everywhere(subscriber: Subscriber) -> None:
    """End every session of the reader, on every device (sessions.current_subscriber)."""
    Subscriber.objects.filter(pk=subscriber.pk).update(
        session_epoch=F("session_epoch") + 1, updated_at=timezone.now()
    )
    logger.info("Subscriber %s signed out everywhere", subscriber.pk)


@transaction.atomic
def do_set_email_status(subscriber: Subscriber, status: Subscriber.EmailStatus) -> bool:
    """The reader's own unsubscribe or resubscribe from the account page.

    Resubscribing undoes an unsubscribe only: a hard bounce or a spam
    complaint is not the reader's to clear from a web form.
    """
    if status == Subscriber.EmailStatus.ACTIVE and subscriber.email_status != (
        Subscriber.EmailStatus.UNSUBSCRIBED
    ):
        return False
    return subscriber.set_email_status(status)


@transaction.atomic
def do_set_preferences(
    subscriber: Subscriber,
    *,
    time_zone: str,
    send_time: datetime.time,
    pause_until: datetime.date | None,
    digest: dict[str, Any] | None = None,
) -> list[str]:
    """Where and when the reader's digest comes, and a pause; return what changed.

    `digest`: the sections, days and format too (do_set_digest_choices's
    keyword arguments), in the same transaction.

    A change of zone or time takes effect from the next morning that has not
    come in the new zone; the digest stays one per local date (the sender's
    unique delivery), so a move mid-week gives neither two nor none.
    """
    validate_time_zone(time_zone)
    changes = []
    if time_zone != subscriber.time_zone:
        changes.append(f"Time zone set to {time_zone}.")
    if send_time != subscriber.send_time:
        changes.append(f"Delivery time set to {send_time:%H:%M}.")
    if pause_until != subscriber.pause_until:
        changes.append(
            f"Paused until {pause_until:%A} {pause_until.day} {pause_until:%B}."
            if pause_until
            else "Pause ended: your digest comes again from your next morning."
        )
    subscriber.time_zone, subscriber.send_time, subscriber.pause_until = (
        time_zone,
        send_time,
        pause_until,
    )
    subscriber.save(update_fields=["time_zone", "send_time", "pause_until", "updated_at"])
    if digest is not None:
        changes += do_set_digest_choices(subscriber, **digest)
    return changes


@transaction.atomic
def do_set_digest_choices(
    subscriber: Subscriber,
    *,
    sections: list[str] | None,
    days: str | list[str],
    digest_format: str,
) -> list[str]:
    """What the reader's digest carries and when: sections, weekdays, format; return what changed.

    `sections` are section slugs, or None for every section (new ones
    included); unknown slugs and an empty list are refused (ValueError), as
    are no days and an unknown format: nothing is saved then.
    """
    days = clean_days(days)
    if digest_format not in DigestFormat.values:
        raise ValueError(f"Unknown format {digest_format!r}: full or headlines.")
    # newsletter.Section, reached through the field: this app never imports newsletter.
    section_model: Any = Subscriber._meta.get_field("sections").related_model
    chosen: list[Any] = []
    if sections is not None:
        chosen = list(section_model._default_manager.filter(slug__in=sections))
        unknown = set(sections) - {section.slug for section in chosen}
        if unknown:
            raise ValueError(f"Unknown section {', '.join(sorted(unknown))}.")
        if not chosen:
            raise ValueError("Choose at least one section.")
    changes = []
    changed = []
    before = subscriber.followed_section_ids()
    after = None if sections is None else frozenset(section.pk for section in chosen)
    if before != after:
        names = ", ".join(section.name for section in sorted(chosen, key=section_order))
        changes.append(f"Sections: {names}." if after else "Sections: every section.")
        changed.append("sections")
    if days != subscriber.days:
        changes.append(f"Days: {days_label(days)}.")
        changed.append("days")
    if digest_format != subscriber.digest_format:
        changes.append(f"Format: {DigestFormat(digest_format).label.lower()}.")
        changed.append("format")
    subscriber.all_sections = sections is None
    subscriber.days = days
    subscriber.digest_format = digest_format
    subscriber.save(update_fields=["all_sections", "days", "digest_format", "updated_at"])
    subscriber.sections.set(chosen)
    if changed:
        digest_choices_changed.send(Subscriber, subscriber=subscriber, changed=changed)
    return changes


def section_order(section: object) -> tuple[int, str]:
    return (getattr(section, "position", 0), str(section))


def portal_url(subscriber: Subscriber) -> str:
    """A Stripe Customer Portal session for the reader (card, invoices, cancel)."""
    customer_id = subscriber.membership.stripe_customer_id
    if not customer_id:
        raise stripe_api.BillingUnavailable(f"Reader {subscriber.pk} has no Stripe customer yet.")
    return stripe_api.create_portal_session(
        customer_id, f"{settings.SITE_URL}{reverse('subscriptions:account')}"
    )


@transaction.atomic
def do_request_email_change(subscriber: Subscriber, new_email: str) -> None:
    """Email the new address a link that moves the reader to it; nothing changes until then."""
    queue_email_change_link(subscriber, normalise_email(new_email))
    logger.info("Subscriber %s asked to change their address", subscriber.pk)


class EmailChangeRefused(Exception):
    """The link cannot move the reader: used already, or the address is another reader's."""


@transaction.atomic
def do_change_email(claim: EmailChangeClaim) -> Subscriber:
    """The owner of the new address opened its link and pressed the button: move the reader.

    Works once: the link names the old address, which the reader no longer
    has afterwards. The Stripe customer's email follows after commit. A new
    address, just proven to receive mail, clears a bounce or complaint of the
    old one; an unsubscribe stays (it was the reader's choice, not the address's).
    """
    subscriber = Subscriber.objects.select_for_update().filter(pk=claim.subscriber_id).first()
    if subscriber is None or subscriber.email != claim.old_email:
        raise EmailChangeRefused("This link was used already, or your address changed since.")
    new_email = normalise_email(claim.new_email)
    taken = Subscriber.objects.filter(email__iexact=new_email).exclude(pk=subscriber.pk)
    if taken.exists():
        raise EmailChangeRefused(
            "That address belongs to another membership: nothing changed. "
            "Sign in with it to see that one."
        )
    subscriber.email = new_email
    fields = ["email", "updated_at"]
    if subscriber.email_status in (
        Subscriber.EmailStatus.BOUNCED,
        Subscriber.EmailStatus.COMPLAINED,
    ):
        subscriber.email_status = Subscriber.EmailStatus.ACTIVE
        subscriber.email_status_changed_at = timezone.now()
        fields += ["email_status", "email_status_changed_at"]
    subscriber.save(update_fields=fields)
    membership = getattr(subscriber, "membership", None)
    if membership is not None and membership.stripe_customer_id:
        queue_customer_email_update(subscriber)
    logger.info("Subscriber %s changed their address", subscriber.pk)
    return subscriber
