import datetime
import unicodedata
import zoneinfo
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Lower
from django.utils import timezone

from subscriptions.addresses import display_email, normalise_email
from subscriptions.stripe_statuses import SubscriptionStatus
from subscriptions.team_models import Team, TeamSeat


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    # OSError: a folder of the database ("America" is one), not a zone.
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError(
            "%(value)s is not a known time zone.", params={"value": value}
        ) from None


def single_line(text: str) -> str:
    """Collapse every run of whitespace, line breaks included, to one space.

    Names end up in email headers, where a line break would start a header
    of the attacker's choosing.
    """
    return " ".join(text.split())


NAME_MAX_LENGTH = 60
# What a name never needs and a phishing line does: a web or email address.
_NOT_IN_NAMES = ("://", "www.", "@")


def name_problem(value: str) -> str | None:
    """Why `value` is not a plain name to greet a reader by, or None if it is one.

    A name is printed in official emails ("Hello …"); whoever types an
    address into the signup form types the name too, so it must not be
    able to carry a link, an address or text that reads backwards.
    """
    lowered = value.lower()
    if any(marker in lowered for marker in _NOT_IN_NAMES):
        return "Please give just your name, without web or email addresses."
    # Line breaks, tabs and invisible formatting (right-to-left overrides).
    if any(unicodedata.category(char) in ("Cc", "Cf") for char in value):
        return "Please give just your name, on one line, without special characters."
    return None


def validate_plain_name(value: str) -> None:
    problem = name_problem(value)
    if problem is not None:
        raise ValidationError(problem, code="not_a_name")


def iso_or_none(value: datetime.datetime | None) -> str | None:
    """A moment as ISO 8601 for JSON (email contexts, exports), or None."""
    return value.isoformat() if value else None


def default_send_time() -> datetime.time:
    """DIGEST_SEND_TIME: the delivery time of a reader who has not chosen one."""
    send_time: datetime.time = settings.DIGEST_SEND_TIME
    return send_time


# The weekdays a reader may have a digest on, in the order pages show them.
DIGEST_DAYS = ("mon", "tue", "wed", "thu", "fri")
DAY_NAMES = dict(
    zip(DIGEST_DAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"), strict=True)
)
EVERY_DAY = ",".join(DIGEST_DAYS)


def day_key(day: datetime.date) -> str:
    """A date's weekday as Subscriber.days spells it ("wed"); "" for a weekend day."""
    weekday = day.weekday()
    return DIGEST_DAYS[weekday] if weekday < len(DIGEST_DAYS) else ""


def clean_days(days: "list[str] | tuple[str, ...] | str") -> str:
    """Weekdays as stored ("mon,wed,fri": known, once each, Monday first); ValueError if none.

    Accepts a list of day keys or their stored comma-separated form.
    """
    if isinstance(days, str):
        days = [part for part in days.split(",") if part.strip()]
    wanted = {day.strip().lower() for day in days}
    unknown = wanted - set(DIGEST_DAYS)
    if unknown:
        raise ValueError(
            f"Unknown day {', '.join(sorted(unknown))}: days are {', '.join(DIGEST_DAYS)}."
        )
    if not wanted:
        raise ValueError("Choose at least one day.")
    return ",".join(day for day in DIGEST_DAYS if day in wanted)


def validate_days(value: str) -> None:
    try:
        canonical = clean_days(value)
    except ValueError as error:
        raise ValidationError(str(error), code="days") from None
    if canonical != value:
        raise ValidationError(
            "Write the days as %(canonical)s.", params={"canonical": canonical}, code="days"
        )


def days_label(days: str) -> str:
    """The weekdays in words: "Monday to Friday", "Monday, Wednesday and Friday"."""
    keys = days.split(",")
    if keys == list(DIGEST_DAYS):
        return "Monday to Friday"
    names = [DAY_NAMES[key] for key in keys]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


class DigestFormat(models.TextChoices):
    # The whole of each story in the email (headlines past the clipping limit).
    FULL = "full", "Full stories"
    # Title, standfirst and a link, as the digest always was.
    HEADLINES = "headlines", "Headlines only"


class SubscriberQuerySet(models.QuerySet):
    def deliverable(self) -> "SubscriberQuerySet":
        """Readers whose address we may send to at all."""
        return self.filter(email_status=Subscriber.EmailStatus.ACTIVE)

    def following(self, section_slug: str) -> "SubscriberQuerySet":
        """Readers whose digest carries this section's stories.

        Those who follow every section, those who chose it, and those whose
        chosen sections were all deleted (following none is following all,
        as Subscriber.followed_section_ids says).
        """
        chosen = Subscriber.sections.through.objects
        return self.filter(
            Q(all_sections=True)
            | Q(pk__in=chosen.filter(section__slug=section_slug).values("subscriber_id"))
            | ~Q(pk__in=chosen.values("subscriber_id"))
        )

    def entitled(self, now: datetime.datetime | None = None) -> "SubscriberQuerySet":
        """Readers who should get the digest: deliverable, with a live membership.

        This is the one definition of entitlement; the sender, the pages and
        Subscriber.is_entitled all use it. The membership is the reader's own
        (or complimentary), or a seat on a team whose subscription is entitled.
        """
        return self.deliverable().filter(
            entitled_membership_q("membership__", now) | entitled_seat_q(now)
        )

    def on_their_day(self, day: datetime.date) -> "SubscriberQuerySet":
        """Readers who want a digest on `day`'s weekday (Subscriber.days; a weekend: all)."""
        key = day_key(day)
        return self.filter(days__contains=key) if key else self


def entitled_membership_q(prefix: str = "", now: datetime.datetime | None = None) -> Q:
    """The membership side of entitlement, as a filter on fields under `prefix`.

    trialing and active are in, unless the reader paused billing (and with
    it the digest) until a moment still to come; past_due is in for
    PAST_DUE_GRACE_DAYS after it started (Stripe retries the card meanwhile, and a reader should not
    miss mornings over an expired card they are about to replace); a
    complimentary membership granted by staff is in until its end date.
    """
    now = now or timezone.now()
    grace_start = now - datetime.timedelta(days=settings.PAST_DUE_GRACE_DAYS)
    status = f"{prefix}status"
    # Billing paused by the reader (pause_collection) pauses the digest too,
    # until the pause ends: by the clock, even before Stripe's event says so.
    not_paused = Q(**{f"{prefix}pause_resumes_at__isnull": True}) | Q(
        **{f"{prefix}pause_resumes_at__lte": now}
    )
    return (
        (
            Q(**{f"{status}__in": Membership.ENTITLED_STATUSES})
            | Q(
                **{
                    status: Membership.Status.PAST_DUE,
                    f"{prefix}past_due_since__gt": grace_start,
                }
            )
        )
        & not_paused
    ) | (
        Q(**{f"{prefix}complimentary": True})
        & (
            Q(**{f"{prefix}complimentary_until__isnull": True})
            | Q(**{f"{prefix}complimentary_until__gt": now})
        )
    )


def entitled_seat_q(now: datetime.datetime | None = None) -> Q:
    """A seat on a team whose subscription is entitled, held now (a reader filter).

    The team's status follows the individual rule (trialing, active,
    past_due within PAST_DUE_GRACE_DAYS); a removed member keeps the digest
    until their access_until, the end of the day they were removed on. An
    EXISTS, so a reader with a past seat and a present one is one row.
    """
    now = now or timezone.now()
    grace_start = now - datetime.timedelta(days=settings.PAST_DUE_GRACE_DAYS)
    seats = TeamSeat.objects.filter(subscriber=OuterRef("pk")).filter(
        Q(removed_at__isnull=True) | Q(access_until__gt=now),
        Q(team__status__in=(Team.Status.TRIALING, Team.Status.ACTIVE))
        | Q(team__status=Team.Status.PAST_DUE, team__past_due_since__gt=grace_start),
    )
    return Q(Exists(seats))


class Subscriber(models.Model):
    class EmailStatus(models.TextChoices):
        ACTIVE = "active", "Active"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Hard bounced"
        COMPLAINED = "complained", "Spam complaint"

    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    time_zone = models.CharField(
        max_length=64, default="America/New_York", validators=[validate_time_zone]
    )
    email_status = models.CharField(
        max_length=20, choices=EmailStatus, default=EmailStatus.ACTIVE, db_index=True
    )
    email_status_changed_at = models.DateTimeField(null=True, blank=True)
    # Each reader's own morning: the digest goes out at send_time in
    # time_zone, Monday to Friday of their calendar (newsletter.schedule).
    send_time = models.TimeField(
        default=default_send_time, help_text="When the digest arrives, in the reader's zone."
    )
    # No digest before this date; digests resume on it.
    pause_until = models.DateField(null=True, blank=True)
    # What the digest carries (delivery.contents): the sections followed,
    # with "every section" a state of its own so that a new section is
    # followed by those readers; a reader whose followed sections were all
    # deleted follows every section again (Subscriber.followed_section_ids).
    all_sections = models.BooleanField(
        "follows every section",
        default=True,
        db_default=True,
        help_text="Every section, those added later included. Off: only the sections below.",
    )
    sections = models.ManyToManyField(
        "newsletter.Section",
        blank=True,
        related_name="followers",
        help_text="The sections followed when not every section is.",
    )
    # Which weekdays, of the reader's own calendar, a digest comes on.
    days = models.CharField(
        max_length=19,
        default=EVERY_DAY,
        db_default=EVERY_DAY,
        validators=[validate_days],
        help_text="Weekdays with a digest, e.g. mon,wed,fri.",
    )
    digest_format = models.CharField(
        "format",
        max_length=10,
        choices=DigestFormat,
        default=DigestFormat.FULL,
        db_default=DigestFormat.FULL,
    )
    # Changes on every sign-in, which makes every sign-in link issued before
    # it useless: links are single use without a table of tokens.
    last_signed_in_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Every session remembers the epoch it was signed in under; "Sign out
    # everywhere" moves it on, which ends every session at once
    # (subscriptions.sessions.current_subscriber compares the two).
    session_epoch = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SubscriberQuerySet.as_manager()

    class Meta:
        ordering = ["email"]
        # The scheduler reads the distinct (zone, time) slots every minute,
        # and cuts each slot's audience into chunks by id (delivery.audience).
        indexes = [
            models.Index(fields=["time_zone", "send_time", "id"], name="subscriber_send_slot")
        ]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                name="subscriber_email_unique_ci",
                violation_error_message="A reader with this email address already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    def save(self, *args: Any, **kwargs: Any) -> None:
        # One spelling of each address (subscriptions.addresses); forms and the
        # admin refuse the unusable ones before they get here.
        try:
            self.email = normalise_email(self.email)
        except ValidationError:
            self.email = self.email.strip()
        self.name = single_line(self.name)
        super().save(*args, **kwargs)

    def followed_section_ids(self) -> frozenset[int] | None:
        """The ids of the sections this reader follows; None: every section.

        Following none (the last followed section deleted) is following all:
        nobody loses their digest to an editor's reorganisation.
        """
        if self.all_sections:
            return None
        ids = frozenset(section.pk for section in self.sections.all())
        return ids or None

    @property
    def weekdays(self) -> list[str]:
        return self.days.split(",")

    def clean(self) -> None:
        super().clean()
        try:
            self.days = clean_days(self.days)
        except ValueError as error:
            raise ValidationError({"days": str(error)}) from None

    @property
    def display_email(self) -> str:
        """The address as people read it (an IDN domain in Unicode)."""
        return display_email(self.email)

    @property
    def is_entitled(self) -> bool:
        """Whether this reader gets the digest (the same rule as the queryset)."""
        return Subscriber.objects.entitled().filter(pk=self.pk).exists()

    @property
    def greeting_name(self) -> str:
        """The name reader emails greet by, or "" to greet nobody by name.

        Only a name the owner stands behind: they signed in by emailed link
        (or paid), and it is a plain name. A name stored before names were
        checked, or typed by a stranger for this address, is never printed.
        """
        if not self.name or len(self.name) > NAME_MAX_LENGTH or name_problem(self.name):
            return ""
        if self.last_signed_in_at is not None:
            return self.name
        membership = getattr(self, "membership", None)
        return self.name if membership is not None and membership.stripe_subscription_id else ""

    def set_email_status(self, status: "Subscriber.EmailStatus") -> bool:
        """Change the email status; return False if it already was `status`."""
        if self.email_status == status:
            return False
        self.email_status = status
        self.email_status_changed_at = timezone.now()
        self.save(update_fields=["email_status", "email_status_changed_at", "updated_at"])
        return True


class MembershipQuerySet(models.QuerySet):
    def entitled(self, now: datetime.datetime | None = None) -> "MembershipQuerySet":
        return self.filter(entitled_membership_q("", now))


class Membership(models.Model):
    """The reader's Stripe subscription, mirrored from Stripe.

    Stripe is the source of truth: these fields are only ever written from a
    subscription fetched from Stripe (subscriptions.actions.stripe_sync.do_sync_subscription),
    except the complimentary grant, which is ours.
    """

    Status = SubscriptionStatus

    ENTITLED_STATUSES = (Status.TRIALING, Status.ACTIVE)
    # Statuses in which the reader still has a subscription that bills or will
    # bill: starting another checkout would charge them twice.
    LIVE_STATUSES = (Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.UNPAID, Status.PAUSED)
    # A subscription in one of these never comes back; Stripe starts a new one.
    TERMINAL_STATUSES = (Status.CANCELED, Status.INCOMPLETE_EXPIRED)
    # Written only from Stripe (subscriptions.actions.stripe_sync.apply_subscription).
    MIRRORED_FROM_STRIPE = (
        "status",
        "trial_end",
        "current_period_end",
        "cancel_at_period_end",
        "amount",
        "next_charge_amount",
        "ended_at",
        "pause_resumes_at",
        "past_due_since",
        "stripe_customer_id",
        "stripe_subscription_id",
    )

    subscriber = models.OneToOneField(Subscriber, on_delete=models.CASCADE)
    status = models.CharField(max_length=20, choices=Status, default=Status.INCOMPLETE)
    trial_end = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    stripe_customer_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_subscription_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    # When the subscription last became past_due, for the grace period.
    past_due_since = models.DateTimeField(null=True, blank=True)
    # What Stripe charges each period, in cents (from the subscription's
    # price), so pages and emails name the real amount.
    amount = models.PositiveIntegerField(null=True, blank=True)
    # What the next charge really is, in cents, after any promotion code's
    # discount (the subscription's discounts applied to the price); None:
    # Stripe told us nothing beyond the list amount.
    next_charge_amount = models.PositiveIntegerField(null=True, blank=True)
    # When Stripe ended the subscription (its ended_at): the win-back email
    # counts its days from here.
    ended_at = models.DateTimeField(null=True, blank=True)
    # Billing (and the digest) paused by the reader with Stripe's
    # pause_collection until this moment; None: not paused. Not the digest's
    # own pause (Subscriber.pause_until), which leaves billing alone.
    pause_resumes_at = models.DateTimeField(null=True, blank=True)
    stripe_synced_at = models.DateTimeField(
        null=True, blank=True, help_text="When the subscription was last fetched from Stripe."
    )
    complimentary = models.BooleanField(
        default=False,
        help_text="Granted by staff: gets the digest whatever the Stripe status.",
    )
    complimentary_until = models.DateTimeField(
        null=True, blank=True, help_text="End of the complimentary membership; empty: no end."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["status"]), models.Index(fields=["updated_at"])]

    def __str__(self) -> str:
        return f"{self.subscriber} ({self.get_status_display()})"

    @property
    def is_entitled(self) -> bool:
        """Whether this membership gets the digest (the queryset's rule)."""
        return Membership.objects.entitled().filter(pk=self.pk).exists()

    @property
    def is_comped(self) -> bool:
        return self.complimentary and (
            self.complimentary_until is None or self.complimentary_until > timezone.now()
        )

    @property
    def needs_no_checkout(self) -> bool:
        """Live or complimentary: a checkout would bill them twice, or for nothing."""
        return self.status in self.LIVE_STATUSES or self.is_comped

    @property
    def charge_amount(self) -> int | None:
        """What the next charge really is, in cents: after a promotion code's discount, if any."""
        return self.next_charge_amount if self.next_charge_amount is not None else self.amount

    def billing_paused(self, now: datetime.datetime | None = None) -> bool:
        """Whether the reader's pause of billing and the digest is running now."""
        return self.pause_resumes_at is not None and self.pause_resumes_at > (now or timezone.now())

    @property
    def has_live_subscription(self) -> bool:
        """A Stripe subscription that still bills or may bill: no second checkout."""
        return bool(self.stripe_subscription_id) and self.status not in (
            *self.TERMINAL_STATUSES,
            self.Status.INCOMPLETE,
        )


class StripeEvent(models.Model):
    """Every webhook event Stripe sent us, stored once (by its id) before it is handled.

    The row is the log an operator reads when a reader says "I paid but...",
    and the handle by which a failed event is retried from the admin.
    """

    class Status(models.TextChoices):
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField()
    status = models.CharField(
        max_length=20, choices=Status, default=Status.PROCESSING, db_index=True
    )
    error = models.TextField(blank=True)
    note = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    stripe_created_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        # The metrics count events by type and status at every scrape: from
        # this index alone, never the rows with their payloads.
        indexes = [models.Index(fields=["type", "status"], name="stripe_event_type_status")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class ReaderEmail(models.Model):
    """One email to a reader for one cause (a subscription, an invoice, a trial end).

    The unique (kind, cause) claim is what makes each email go out once,
    however often Stripe repeats the event that causes it.
    """

    class Kind(models.TextChoices):
        WELCOME = "welcome", "Welcome"
        TRIAL_ENDING = "trial_ending", "Trial ending"
        PAYMENT_FAILED = "payment_failed", "Payment failed"
        PAYMENT_ACTION_REQUIRED = "payment_action_required", "Payment action required"
        MEMBERSHIP_ENDED = "membership_ended", "Membership ended"
        RENEWAL_NOTICE = "renewal_notice", "Renewal notice"
        WIN_BACK = "win_back", "Win-back"
        GIFT_ENDING = "gift_ending", "Gift membership ending"
        GIFT_ENDED = "gift_ended", "Gift membership ended"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed by email"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped (address not deliverable)"

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="emails")
    kind = models.CharField(max_length=40, choices=Kind)
    cause = models.CharField(max_length=255, help_text="What this email is about, e.g. sub_123.")
    context = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status, default=Status.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "cause"], name="reader_email_once_per_cause")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.subscriber} ({self.cause})"


class GiftCode(models.Model):
    """A year of the briefing bought for someone else, paid once at Stripe Checkout.

    The code is the secret in the recipient's link (signed on top: see
    subscriptions.gifts); it is used once, to start a one-year complimentary
    membership. Each email is claimed by its *_sent_at moment, once.
    """

    class Status(models.TextChoices):
        AWAITING_PAYMENT = "awaiting_payment", "Awaiting payment"
        PAID = "paid", "Paid, to be delivered"
        DELIVERED = "delivered", "Delivered"
        REDEEMED = "redeemed", "Redeemed"

    code = models.CharField(max_length=32, unique=True, editable=False)
    status = models.CharField(
        max_length=20, choices=Status, default=Status.AWAITING_PAYMENT, db_index=True
    )
    buyer_email = models.EmailField(max_length=254)
    buyer_name = models.CharField(max_length=200, blank=True)
    recipient_email = models.EmailField(max_length=254)
    recipient_name = models.CharField(max_length=200, blank=True)
    deliver_on = models.DateField(
        help_text="The recipient is emailed on this date (newsroom zone)."
    )
    amount = models.PositiveIntegerField(help_text="Paid, in cents.")
    checkout_session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    receipt_sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    redeemed_by = models.ForeignKey(
        Subscriber, null=True, blank=True, on_delete=models.SET_NULL, related_name="gifts"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Gift {self.code[:6]}… for {self.recipient_email} ({self.get_status_display()})"


# Referrals live in their own module; imported here so Django finds their models.
from subscriptions import referral_models  # noqa: E402, F401
