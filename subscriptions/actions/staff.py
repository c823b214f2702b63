"""What staff (and their API keys) do to readers: complimentary readers, edits of a reader.

A complimentary reader is granted by the publisher, never signed up in
their place: the reader gets no email for it (as with an import) and is in
from their next morning. Inviting someone to the trial is not here: it is
the signup form's own emailed confirmation (checkout.do_request_signup),
so no one is ever opted in without confirming.
"""

import datetime
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from subscriptions.actions.account import do_set_digest_choices
from subscriptions.addresses import normalise_email
from subscriptions.models import (
    DigestFormat,
    Membership,
    Subscriber,
    clean_days,
    validate_plain_name,
    validate_time_zone,
)

logger = logging.getLogger(__name__)

# The reader's own settings that staff may change for them; the last three
# (what their digest carries and when) go through do_set_digest_choices.
EDITABLE_FIELDS = ("name", "time_zone", "send_time", "pause_until", "sections", "days", "format")
DIGEST_CHOICES = ("sections", "days", "format")


class ReaderExists(Exception):
    """A reader with this address exists already: nothing was created."""

    def __init__(self, subscriber: Subscriber) -> None:
        super().__init__(f"Reader {subscriber.pk} has this address already.")
        self.subscriber = subscriber


@transaction.atomic
def do_grant_complimentary(
    *,
    email: str,
    name: str = "",
    time_zone: str = "",
    send_time: datetime.time | None = None,
    until: datetime.datetime | None = None,
) -> Subscriber:
    """A new reader with a complimentary membership until `until` (None: no end)."""
    email = normalise_email(email)
    existing = Subscriber.objects.select_for_update().filter(email__iexact=email).first()
    if existing is not None:
        raise ReaderExists(existing)
    time_zone = time_zone or settings.DIGEST_TIMEZONE
    validate_time_zone(time_zone)
    if name:
        validate_plain_name(name)
    subscriber = Subscriber(email=email, name=name, time_zone=time_zone)
    if send_time is not None:
        subscriber.send_time = send_time
    subscriber.save()
    Membership.objects.create(subscriber=subscriber, complimentary=True, complimentary_until=until)
    logger.info("Complimentary reader %s granted until %s", subscriber.pk, until)
    return subscriber


@transaction.atomic
def do_update_reader(subscriber_id: int, changes: dict[str, Any]) -> Subscriber:
    """Change the reader's own settings named in `changes` (EDITABLE_FIELDS only)."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be changed." for field in unknown})
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    choices = {field: changes.pop(field) for field in DIGEST_CHOICES if field in changes}
    if "time_zone" in changes:
        validate_time_zone(changes["time_zone"])
    if changes.get("name"):
        validate_plain_name(changes["name"])
    for field, value in changes.items():
        setattr(subscriber, field, value)
    if changes:
        subscriber.save(update_fields=[*changes, "updated_at"])
    if choices:
        # What is not named stays as it is.
        followed = subscriber.followed_section_ids()
        current_sections = (
            None if followed is None else [section.slug for section in subscriber.sections.all()]
        )
        days = choices.get("days", subscriber.days)
        digest_format = choices.get("format", subscriber.digest_format)
        # Days and format checked first, so a refusal names its own field;
        # what do_set_digest_choices refuses after that is the sections.
        try:
            clean_days(days)
        except ValueError as error:
            raise ValidationError({"days": str(error)}) from None
        if digest_format not in DigestFormat.values:
            raise ValidationError({"format": "Full or headlines."})
        try:
            do_set_digest_choices(
                subscriber,
                sections=choices.get("sections", current_sections),
                days=days,
                digest_format=digest_format,
            )
        except ValueError as error:
            raise ValidationError({"sections": str(error)}) from None
    return subscriber


@transaction.atomic
def do_set_complimentary(subscriber_id: int, until: datetime.datetime | None) -> Membership:
    """Grant (or move the end of) a complimentary membership for an existing reader."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    membership, _ = Membership.objects.select_for_update().get_or_create(subscriber=subscriber)
    membership.complimentary, membership.complimentary_until = True, until
    membership.save(update_fields=["complimentary", "complimentary_until", "updated_at"])
    return membership
