"""API keys, the writes they made, webhook endpoints, events and their deliveries."""

import datetime
import hashlib
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

KEY_PREFIX = "mbk_"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, as Stripe marks its secrets


def hash_key(token: str) -> str:
    """A key's token is 256 random bits: a plain SHA-256 of it cannot be walked back."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet):
    def live(self) -> "ApiKeyQuerySet":
        return self.filter(revoked_at__isnull=True, owner__is_active=True)


class ApiKey(models.Model):
    """A named key staff made for an integration: stored hashed, scoped, revocable.

    It acts for its owner: a scope is granted only with the owner's
    permission for it (api.scopes), checked again at every request, so a key
    never does what its owner could not do in the admin.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read readers, articles, editions and figures"
        WRITE_READERS = "write:readers", "Write readers"
        WRITE_ARTICLES = "write:articles", "Write articles"

    name = models.CharField(max_length=100, help_text="What uses it, e.g. “CMS” or “CRM sync”.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    scopes = models.JSONField(default=list)
    # The first characters of the token, to tell keys apart in lists and logs.
    prefix = models.CharField(max_length=16, editable=False)
    hashed = models.CharField(max_length=64, unique=True, editable=False)
    requests_per_minute = models.PositiveIntegerField(
        default=120, help_text="Requests beyond this in a minute are answered 429."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def new_token() -> str:
        return KEY_PREFIX + secrets.token_urlsafe(32)

    def set_token(self, token: str) -> None:
        self.prefix = token[: len(KEY_PREFIX) + 6]
        self.hashed = hash_key(token)

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class ApiWrite(models.Model):
    """One write made through the API, with the key that made it."""

    key = models.ForeignKey(ApiKey, on_delete=models.PROTECT, related_name="writes")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=300)
    status_code = models.PositiveSmallIntegerField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at"]
        verbose_name = "API write"

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.key})"


class WebhookEndpoint(models.Model):
    """A URL of the publisher's that wants some of our events, signed with its own secret."""

    url = models.URLField(max_length=500, help_text="https:// address that receives the events.")
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list)
    secret = models.CharField(max_length=80, editable=False)
    enabled = models.BooleanField(default=True)
    # The first failure since the last success: an endpoint failing for
    # WEBHOOK_DISABLE_AFTER is disabled, and staff are emailed.
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["url"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.url

    @staticmethod
    def new_secret() -> str:
        return SECRET_PREFIX + secrets.token_urlsafe(32)


class WebhookEvent(models.Model):
    """Something that happened, recorded in the transaction that made it happen.

    `key` makes an event happen once (a reader's first payment, an
    edition's send to one zone), however often its cause is seen. The
    public id is what consumers deduplicate on.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=40, db_index=True)
    key = models.CharField(max_length=200, unique=True)
    # Deliveries of events with the same ordering key reach each endpoint in
    # the order the events happened ("reader:12"); empty: no order needed.
    ordering_key = models.CharField(max_length=60, blank=True)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "webhook event"

    def __str__(self) -> str:
        return f"{self.type} {self.public_id}"

    @property
    def event_id(self) -> str:
        return f"evt_{self.public_id.hex}"


class WebhookDeliveryQuerySet(models.QuerySet):
    def due(self, now: datetime.datetime) -> "WebhookDeliveryQuerySet":
        return self.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)


class WebhookDelivery(models.Model):
    """One event to one endpoint: its attempts, their outcome, and when to try again."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(max_length=20, choices=Status, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} to {self.endpoint}"
