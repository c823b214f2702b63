"""Bringing a list from elsewhere: a CSV of readers, or the subscriptions already at Stripe.

Both are idempotent: a reader is found by address (case-insensitive, one
spelling: subscriptions.addresses) and never created twice; a subscription
already mirrored is only synced again. Both can run dry: the same plan is
reported and nothing is written. Imported readers are not emailed: they
did not sign up here today (their next email is their next digest).
"""

import csv
import datetime
import io
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import stripe
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from subscriptions import stripe_api
from subscriptions.actions.stripe_sync import apply_subscription
from subscriptions.addresses import normalise_email, validate_address
from subscriptions.models import (
    EVERY_DAY,
    NAME_MAX_LENGTH,
    DigestFormat,
    Membership,
    ReaderEmail,
    Subscriber,
    clean_days,
    name_problem,
    validate_time_zone,
)

ALL_SECTIONS = "all"  # a `sections` cell for every section, as the forms' value

logger = logging.getLogger(__name__)


@dataclass
class ImportReport:
    """What an import did (or, dry, would do): counts, and each rejected row with its reason."""

    dry_run: bool = False
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rejected: list[tuple[int | str, str]] = field(default_factory=list)
    format: str = ""

    def lines(self) -> list[str]:
        verb = "Would import" if self.dry_run else "Imported"
        lines = [f"{verb} {len(self.created)} new reader(s) ({self.format or 'Stripe'})."]
        if self.updated:
            lines.append(f"{'Would sync' if self.dry_run else 'Synced'} {len(self.updated)}.")
        lines.append(f"Skipped {len(self.skipped)} already here.")
        lines.append(f"Rejected {len(self.rejected)}.")
        lines += [f"  row {where}: {reason}" for where, reason in self.rejected]
        return lines


# --- CSV of readers ------------------------------------------------------------------


class CsvFormatError(ValueError):
    """The file is not one of the CSV formats we read; nothing was imported."""


@dataclass
class CsvReader:
    email: str
    name: str = ""
    time_zone: str = ""
    unsubscribed: bool = False
    # Paid time left elsewhere (Substack's expiry): complimentary until then.
    paid_until: datetime.datetime | None = None
    complimentary: bool = False
    # The digest's choices (optional columns sections, days, format): None
    # for every section; "" for the defaults.
    sections: list[str] | None = None
    days: str = ""
    digest_format: str = ""


# Between the slugs of a `sections` cell and the days of a `days` cell.
LIST_SEPARATORS = re.compile(r"[\s,;|]+")


def _digest_choices(reader: CsvReader, row: dict[str, str]) -> CsvReader:
    """The row's optional sections, days and format, checked; ValueError names what is wrong."""
    sections = [slug for slug in LIST_SEPARATORS.split(row.get("sections", "").strip()) if slug]
    if sections and sections != [ALL_SECTIONS]:
        known = set(
            Subscriber._meta.get_field("sections")
            .related_model._default_manager.filter(slug__in=sections)
            .values_list("slug", flat=True)
        )
        unknown = sorted(set(sections) - known)
        if unknown:
            raise ValueError(f"unknown section {', '.join(unknown)}")
        reader.sections = sections
    days = [day for day in LIST_SEPARATORS.split(row.get("days", "").strip()) if day]
    if days:
        reader.days = clean_days(days)
    digest_format = row.get("format", "").strip().lower()
    if digest_format and digest_format not in DigestFormat.values:
        raise ValueError(f"format {digest_format!r} is neither full nor headlines")
    reader.digest_format = digest_format
    return reader


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("true", "yes", "1", "t")


def _moment(value: str) -> datetime.datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a date: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def detect_format(header: list[str]) -> str:
    """substack, ghost or plain, from the header row; CsvFormatError otherwise."""
    columns = {column.strip().lower() for column in header}
    if "email" not in columns:
        raise CsvFormatError("The first row must be a header with an 'email' column.")
    if {"active_subscription", "expiry"} <= columns:
        return "substack"
    if {"subscribed_to_emails", "complimentary_plan"} <= columns:
        return "ghost"
    return "plain"


def _row_reader(fmt: str, row: dict[str, str]) -> CsvReader | None:
    """The reader a row describes; None for a row that names nobody to import (Ghost's deleted)."""
    email = row.get("email", "")
    if fmt == "substack":
        paid_until = _moment(row.get("expiry", ""))
        active = _truthy(row.get("active_subscription", ""))
        return CsvReader(
            email=email,
            name=row.get("name", ""),
            unsubscribed=_truthy(row.get("email_disabled", "")),
            paid_until=paid_until if active else None,
        )
    if fmt == "ghost":
        if row.get("deleted_at", "").strip():
            return None
        return CsvReader(
            email=email,
            name=row.get("name", ""),
            unsubscribed=not _truthy(row.get("subscribed_to_emails", "true")),
            complimentary=_truthy(row.get("complimentary_plan", "")),
        )
    return CsvReader(email=email, name=row.get("name", ""), time_zone=row.get("time_zone", ""))


IMPORT_AS = ("complimentary", "trial")


def do_import_readers(
    text: str,
    *,
    import_as: str = "complimentary",
    dry_run: bool = False,
    now: datetime.datetime | None = None,
) -> ImportReport:
    """Import the readers of a CSV (Substack's, Ghost's members export, or email,name,time_zone).

    Each new reader gets a complimentary membership: with no end (`import_as`
    "complimentary"; a Substack row with paid time left ends when it does), or
    for TRIAL_DAYS ("trial"), after which they are asked to start a
    membership like anyone else. A row is rejected, with its number and
    reason, for an address the signup form would refuse
    (addresses.validate_address), a bad zone or date, or an address twice in
    the file, and the other rows are imported; an address that is already a
    reader's is skipped and that reader left unchanged.
    The whole file is one transaction: a failure imports nothing.
    """
    if import_as not in IMPORT_AS:
        raise ValueError(f"import_as must be one of {', '.join(IMPORT_AS)}")
    now = now or timezone.now()
    rows = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if rows.fieldnames is None:
        raise CsvFormatError("The file is empty.")
    rows.fieldnames = [name.strip().lower() for name in rows.fieldnames]
    report = ImportReport(dry_run=dry_run, format=detect_format(rows.fieldnames))
    seen: set[str] = set()
    with transaction.atomic():
        for number, row in enumerate(rows, start=2):  # row 1 is the header
            row = {key: (value or "") for key, value in row.items() if key}
            try:
                reader = _row_reader(report.format, row)
                if reader is None:
                    continue
                reader = _digest_choices(reader, row)
                # The forms' own check: what a reader could not type there is not imported.
                email = validate_address(reader.email)
                if reader.time_zone:
                    validate_time_zone(reader.time_zone.strip())
            except (ValidationError, ValueError) as error:
                message = error.messages[0] if isinstance(error, ValidationError) else str(error)
                report.rejected.append((number, f"{reader_email(row)}: {message}"))
                continue
            if email.lower() in seen:
                report.rejected.append((number, f"{email}: already in this file"))
                continue
            seen.add(email.lower())
            if Subscriber.objects.filter(email__iexact=email).exists():
                report.skipped.append(email)
                continue
            report.created.append(email)
            if not dry_run:
                _create_reader(reader, email, import_as, now)
        if dry_run:
            transaction.set_rollback(True)
    logger.info("CSV import (%s): %s", report.format, " ".join(report.lines()[:4]))
    return report


def reader_email(row: dict[str, str]) -> str:
    """The row's address as written, for the report: a line break in it shows as \\n."""
    typed = row.get("email", "").strip()
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in typed)
    return shown or "(no address)"


def _create_reader(reader: CsvReader, email: str, import_as: str, now: datetime.datetime) -> None:
    name = " ".join(reader.name.split())
    if len(name) > NAME_MAX_LENGTH or name_problem(name):
        name = ""  # kept out of emails; the reader can give it when they sign in
    subscriber = Subscriber.objects.create(
        email=email,
        name=name,
        time_zone=reader.time_zone.strip() or settings.DIGEST_TIMEZONE,
        email_status=(
            Subscriber.EmailStatus.UNSUBSCRIBED
            if reader.unsubscribed
            else Subscriber.EmailStatus.ACTIVE
        ),
        all_sections=reader.sections is None,
        days=reader.days or EVERY_DAY,
        digest_format=reader.digest_format or DigestFormat.FULL,
    )
    if reader.sections is not None:
        section_model: Any = Subscriber._meta.get_field("sections").related_model
        subscriber.sections.set(section_model._default_manager.filter(slug__in=reader.sections))
    if reader.paid_until is not None:
        until: datetime.datetime | None = reader.paid_until
    elif import_as == "trial" and not reader.complimentary:
        until = now + datetime.timedelta(days=settings.TRIAL_DAYS)
    else:
        until = None
    if until is not None and until <= now:
        until = now  # paid time already over: the membership is not entitled
    Membership.objects.create(subscriber=subscriber, complimentary=True, complimentary_until=until)


# --- Subscriptions already at Stripe --------------------------------------------------


def do_import_stripe(*, all_prices: bool = False, dry_run: bool = False) -> ImportReport:
    """Readers and memberships for the live subscriptions at Stripe (on our price, or all).

    A subscription already mirrored is synced again; a new one gets its
    reader (found by the customer's address, or created) and membership. A
    reader whose membership follows another Stripe customer is rejected
    (staff decide), as is a customer without an address. No welcome email
    is sent: the welcome is recorded as skipped.
    """
    report = ImportReport(dry_run=dry_run)
    price = None if all_prices else stripe_api.price_id()
    for subscription in stripe_api.live_subscriptions(price):
        try:
            with transaction.atomic():
                _import_subscription(subscription, report)
                if dry_run:
                    transaction.set_rollback(True)
        except ValidationError as error:
            report.rejected.append((subscription.id, error.messages[0]))
    logger.info("Stripe import: %s", " ".join(report.lines()[:4]))
    return report


def _import_subscription(subscription: stripe.Subscription, report: ImportReport) -> None:
    customer = getattr(subscription, "customer", None)
    subscription_id: str = getattr(subscription, "id", "")
    customer_id = stripe_api.expandable_id(customer)
    address = getattr(customer, "email", None) if not isinstance(customer, str) else None
    known = Membership.objects.select_for_update().filter(stripe_subscription_id=subscription_id)
    membership = known.first() or (
        Membership.objects.select_for_update().filter(stripe_customer_id=customer_id).first()
    )
    if membership is None:
        if not address:
            report.rejected.append((subscription_id, f"customer {customer_id} has no address"))
            return
        email = normalise_email(address)
        subscriber = Subscriber.objects.filter(email__iexact=email).first()
        if subscriber is None:
            name = " ".join((getattr(customer, "name", "") or "").split())
            if len(name) > NAME_MAX_LENGTH or name_problem(name):
                name = ""
            subscriber = Subscriber.objects.create(
                email=email, name=name, time_zone=settings.DIGEST_TIMEZONE
            )
        membership, _ = Membership.objects.select_for_update().get_or_create(subscriber=subscriber)
        if membership.stripe_customer_id and membership.stripe_customer_id != customer_id:
            report.rejected.append(
                (
                    subscription_id,
                    f"{email} already has Stripe customer {membership.stripe_customer_id}",
                )
            )
            return
        if membership.has_live_subscription:
            report.rejected.append(
                (subscription_id, f"{email} already has {membership.stripe_subscription_id}")
            )
            return
        membership.stripe_customer_id = customer_id
        membership.save(update_fields=["stripe_customer_id", "updated_at"])
        report.created.append(email)
    elif membership.stripe_subscription_id == subscription_id:
        report.updated.append(membership.subscriber.email)
    elif membership.has_live_subscription:
        # A second live subscription of one customer: an import must not
        # cancel either (syncing it would); staff decide at Stripe.
        report.rejected.append(
            (
                subscription_id,
                f"{membership.subscriber.email} already has {membership.stripe_subscription_id}",
            )
        )
        return
    else:
        report.created.append(membership.subscriber.email)
    # No welcome for a reader who joined elsewhere: the claim is taken, unsent.
    ReaderEmail.objects.get_or_create(
        kind=ReaderEmail.Kind.WELCOME,
        cause=subscription_id,
        defaults={"subscriber": membership.subscriber, "status": ReaderEmail.Status.SKIPPED},
    )
    # The listing is Stripe's current state: no second fetch per subscription.
    apply_subscription(membership, subscription)
