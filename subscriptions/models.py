import zoneinfo

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            "%(value)s is not a known time zone.", params={"value": value}
        ) from None


def single_line(text: str) -> str:
    """Collapse every run of whitespace, line breaks included, to one space.

    Names end up in email headers, where a line break would start a header
    of the attacker's choosing.
    """
    return " ".join(text.split())


class SubscriberQuerySet(models.QuerySet):
    def deliverable(self) -> "SubscriberQuerySet":
        """Readers whose address we may send to at all."""
        return self.filter(email_status=Subscriber.EmailStatus.ACTIVE)

    def entitled(self) -> "SubscriberQuerySet":
        """Readers who should get the digest: deliverable, with a live membership."""
        return self.deliverable().filter(membership__status__in=Membership.ENTITLED_STATUSES)


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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SubscriberQuerySet.as_manager()

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                name="subscriber_email_unique_ci",
                violation_error_message="A reader with this email address already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs) -> None:
        # The domain part of an address is case-insensitive; keep one spelling.
        local, sep, domain = self.email.strip().rpartition("@")
        self.email = f"{local}{sep}{domain.lower()}" if sep else self.email.strip()
        self.name = single_line(self.name)
        super().save(*args, **kwargs)

    @property
    def is_entitled(self) -> bool:
        """Whether this reader gets the digest (the same rule as the queryset)."""
        return Subscriber.objects.entitled().filter(pk=self.pk).exists()

    def set_email_status(self, status: "Subscriber.EmailStatus") -> bool:
        """Change the email status; return False if it already was `status`."""
        if self.email_status == status:
            return False
        self.email_status = status
        self.email_status_changed_at = timezone.now()
        self.save(update_fields=["email_status", "email_status_changed_at", "updated_at"])
        return True


class Membership(models.Model):
    """The reader's Stripe subscription, mirrored from Stripe."""

    class Status(models.TextChoices):
        # Stripe's own subscription statuses, spelled as Stripe spells them.
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        CANCELED = "canceled", "Canceled"
        UNPAID = "unpaid", "Unpaid"
        INCOMPLETE = "incomplete", "Incomplete"
        INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete, expired"
        PAUSED = "paused", "Paused"

    ENTITLED_STATUSES = (Status.TRIALING, Status.ACTIVE)

    subscriber = models.OneToOneField(Subscriber, on_delete=models.CASCADE)
    status = models.CharField(max_length=20, choices=Status, default=Status.INCOMPLETE)
    trial_end = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    stripe_customer_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_subscription_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.subscriber} ({self.get_status_display()})"

    @property
    def is_entitled(self) -> bool:
        return self.status in self.ENTITLED_STATUSES
