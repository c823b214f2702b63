"""What the API reads and writes, field by field.

Every input serializer is Strict: a field it does not know, or one that is
read-only (billing, ids, times), is refused by name rather than ignored,
so a typo never passes for a change that did not happen.

Adding a reader field: add it to READER_FIELDS and, if readers may change
it, to ReaderUpdateSerializer and subscriptions.actions.staff.EDITABLE_FIELDS;
the document and the reader.* webhooks follow.
"""

import datetime
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api import readers
from newsletter.models import Article, Section
from subscriptions.models import (
    DIGEST_DAYS,
    NAME_MAX_LENGTH,
    DigestFormat,
    Membership,
    Subscriber,
    validate_time_zone,
)


class StrictMixin:
    """Refuse fields the serializer does not take (unknown, or read-only)."""

    # Fields of what is written that are shown but never written (ids, billing).
    read_only_names: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            fields = self.fields  # type: ignore[attr-defined]
            writable = {name for name, field in fields.items() if not field.read_only}
            read_only = set(self.read_only_names) | set(fields)
            refused = {
                name: ["This field is read-only." if name in read_only else "Unknown field."]
                for name in data
                if name not in writable
            }
            if refused:
                raise serializers.ValidationError(refused)
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictSerializer(StrictMixin, serializers.Serializer):
    pass


@extend_schema_field({"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"})
class HourMinuteField(serializers.TimeField):
    """A time of day as HH:MM, in and out (the preferences page's own format)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%H:%M", input_formats=["%H:%M"], **kwargs)


def validate_zone(value: str) -> None:
    try:
        validate_time_zone(value)
    except DjangoValidationError:
        raise serializers.ValidationError(f"{value!r} is not a known IANA time zone.") from None


# --- Readers ---------------------------------------------------------------------------


class MembershipSerializer(serializers.ModelSerializer):
    """Billing, read-only: Stripe is its source of truth."""

    class Meta:
        model = Membership
        fields = (
            "status",
            "complimentary",
            "complimentary_until",
            "trial_end",
            "current_period_end",
            "cancel_at_period_end",
            "amount",
            "next_charge_amount",
        )
        read_only_fields = fields


READER_FIELDS = (
    "id",
    "email",
    "name",
    "state",
    "email_status",
    "time_zone",
    "send_time",
    "pause_until",
    "sections",
    "days",
    "format",
    "membership",
    "created_at",
    "updated_at",
)


SECTIONS_HELP = "Slugs of the sections the reader follows; null: every section, new ones too."
DAYS_HELP = "The weekdays a digest comes on, of mon, tue, wed, thu and fri."


class ReaderSerializer(serializers.ModelSerializer):
    state = serializers.SerializerMethodField()
    membership = MembershipSerializer(read_only=True, allow_null=True)
    send_time = HourMinuteField()
    sections = serializers.SerializerMethodField(help_text=SECTIONS_HELP)
    days = serializers.SerializerMethodField(help_text=DAYS_HELP)
    format = serializers.ChoiceField(
        source="digest_format", choices=DigestFormat.choices, read_only=True
    )

    class Meta:
        model = Subscriber
        fields = READER_FIELDS
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=readers.STATES))
    def get_state(self, subscriber: Subscriber) -> str:
        return readers.state_of(subscriber, timezone.now())

    @extend_schema_field(serializers.ListField(child=serializers.CharField(), allow_null=True))
    def get_sections(self, subscriber: Subscriber) -> list[str] | None:
        # sections.all(): prefetched for a page of readers (api.views.readers).
        if subscriber.followed_section_ids() is None:
            return None
        return sorted(section.slug for section in subscriber.sections.all())

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(DIGEST_DAYS)))
    def get_days(self, subscriber: Subscriber) -> list[str]:
        return subscriber.weekdays


def reader_data(subscriber: Subscriber) -> dict[str, Any]:
    """A reader as the API and the reader.* webhooks show it."""
    return dict(ReaderSerializer(subscriber).data)


class ReaderFilterSerializer(StrictSerializer):
    state = serializers.ChoiceField(choices=readers.STATES, required=False)
    section = serializers.SlugField(
        required=False, help_text="Readers who follow this section (a slug)."
    )
    time_zone = serializers.CharField(required=False, validators=[validate_zone])
    created_since = serializers.DateTimeField(required=False)
    updated_since = serializers.DateTimeField(required=False)
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)


class ReaderLookupSerializer(StrictSerializer):
    email = serializers.EmailField()


class ReaderCreateSerializer(StrictSerializer):
    """A complimentary reader (with an end, or none), or an invitation to the trial."""

    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(max_length=NAME_MAX_LENGTH, required=False, allow_blank=True)
    time_zone = serializers.CharField(required=False, validators=[validate_zone])
    send_time = HourMinuteField(required=False)
    kind = serializers.ChoiceField(
        choices=[("complimentary", "complimentary"), ("trial_invitation", "trial_invitation")],
        help_text="complimentary: a reader now, no email. trial_invitation: the signup "
        "form's emailed confirmation; nothing is stored until they confirm.",
    )
    complimentary_until = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="The end of a complimentary membership; null or absent: no end.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        until = attrs.get("complimentary_until")
        if attrs["kind"] == "trial_invitation":
            extra = {"send_time", "complimentary_until"} & set(attrs)
            if extra:
                raise serializers.ValidationError(
                    {field: "Only for a complimentary reader." for field in extra}
                )
        elif until is not None and until <= timezone.now():
            raise serializers.ValidationError({"complimentary_until": "This is in the past."})
        return attrs


class ReaderUpdateSerializer(StrictSerializer):
    read_only_names = READER_FIELDS
    name = serializers.CharField(max_length=NAME_MAX_LENGTH, required=False, allow_blank=True)
    time_zone = serializers.CharField(required=False, validators=[validate_zone])
    send_time = HourMinuteField(required=False)
    pause_until = serializers.DateField(required=False, allow_null=True)
    sections = serializers.ListField(
        child=serializers.SlugField(),
        required=False,
        allow_null=True,
        allow_empty=False,
        help_text=SECTIONS_HELP,
    )
    days = serializers.ListField(
        child=serializers.ChoiceField(DIGEST_DAYS),
        required=False,
        allow_empty=False,
        help_text=DAYS_HELP,
    )
    format = serializers.ChoiceField(choices=DigestFormat.choices, required=False)


class ComplimentarySerializer(StrictSerializer):
    complimentary_until = serializers.DateTimeField(allow_null=True)


# --- Articles --------------------------------------------------------------------------


class ArticleSerializer(serializers.ModelSerializer):
    section: serializers.SlugRelatedField[Section] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    lead_image = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Article
        fields = (
            "id",
            "title",
            "slug",
            "dek",
            "body",
            "section",
            "byline",
            "lead_image",
            "lead_image_alt",
            "free_to_read",
            "status",
            "published_at",
            "url",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_lead_image(self, article: Article) -> str | None:
        return f"{settings.SITE_URL}{article.lead_image.url}" if article.lead_image else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_url(self, article: Article) -> str | None:
        if article.status != Article.Status.PUBLISHED:
            return None
        return f"{settings.SITE_URL}{article.get_absolute_url()}"


def article_data(article: Article) -> dict[str, Any]:
    return dict(ArticleSerializer(article).data)


class ArticleWriteSerializer(StrictSerializer):
    """A draft's fields; lead_image_url is fetched, lead_image uploaded (multipart)."""

    title = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=200, required=False)
    dek = serializers.CharField(max_length=300, required=False, allow_blank=True)
    body = serializers.CharField(
        help_text="HTML, cleaned by the admin's rules (nh3): scripts, styles and "
        "event handlers are removed."
    )
    section: serializers.SlugRelatedField[Section] = serializers.SlugRelatedField(
        slug_field="slug", queryset=Section.objects.all(), required=False, allow_null=True
    )
    byline = serializers.CharField(max_length=200, required=False, allow_blank=True)
    free_to_read = serializers.BooleanField(required=False)
    lead_image_url = serializers.URLField(
        required=False, max_length=500, help_text="An https:// image the server fetches."
    )
    lead_image = serializers.ImageField(required=False)
    lead_image_alt = serializers.CharField(max_length=300, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "lead_image_url" in attrs and "lead_image" in attrs:
            raise serializers.ValidationError(
                {"lead_image_url": "Send either lead_image_url or lead_image, not both."}
            )
        return attrs


class ArticleUpdateSerializer(ArticleWriteSerializer):
    read_only_names = ("id", "status", "published_at", "url", "created_at", "updated_at")
    title = serializers.CharField(max_length=200, required=False)
    body = serializers.CharField(required=False)


class ArticleFilterSerializer(StrictSerializer):
    status = serializers.ChoiceField(choices=Article.Status.choices, required=False)
    section = serializers.SlugField(required=False)
    updated_since = serializers.DateTimeField(required=False)
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)


class ScheduleSerializer(StrictSerializer):
    publish_at = serializers.DateTimeField()

    def validate_publish_at(self, value: datetime.datetime) -> datetime.datetime:
        if value <= timezone.now():
            raise serializers.ValidationError("A scheduled time must be in the future.")
        return value


# --- Editions and figures --------------------------------------------------------------


class EditionArticleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    slug = serializers.CharField()
    section = serializers.CharField(allow_null=True)
    published_at = serializers.DateTimeField()


class NextSendSerializer(serializers.Serializer):
    time_zone = serializers.CharField()
    send_time = HourMinuteField()
    sends_at = serializers.DateTimeField(help_text="UTC.")
    sends_at_local = serializers.CharField(help_text="In the zone, with its name.")
    readers = serializers.IntegerField()
    since = serializers.DateTimeField(help_text="What it carries was published after this.")
    articles = EditionArticleSerializer(many=True)


class NextEditionSerializer(serializers.Serializer):
    date = serializers.DateField()
    status = serializers.CharField(allow_null=True)
    editor_note = serializers.CharField(allow_blank=True)
    zones = NextSendSerializer(many=True)


class ZoneReportSerializer(serializers.Serializer):
    time_zone = serializers.CharField(help_text="Empty: sent by hand.")
    deliveries = serializers.IntegerField()
    delivered = serializers.IntegerField()
    failed = serializers.IntegerField()
    bounced = serializers.IntegerField()
    missed = serializers.IntegerField()
    complaints = serializers.IntegerField()
    unsubscribes = serializers.IntegerField(help_text="Within 48 hours of the digest.")
    began = serializers.DateTimeField(allow_null=True)
    ended = serializers.DateTimeField(allow_null=True)
    duration_seconds = serializers.FloatField(allow_null=True)


class EditionReportSerializer(serializers.Serializer):
    date = serializers.DateField()
    subject = serializers.CharField()
    status = serializers.CharField()
    send_started_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    articles = EditionArticleSerializer(many=True)
    zones = ZoneReportSerializer(many=True)


class NoQuerySerializer(StrictSerializer):
    """An endpoint that takes no query parameters: any is refused."""


class EditionFilterSerializer(StrictSerializer):
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)


class FiguresQuerySerializer(StrictSerializer):
    days = serializers.IntegerField(required=False, min_value=1, max_value=366, default=30)


class CountSerializer(serializers.Serializer):
    # A field named like Field.label: DRF takes it out of the class, mypy cannot see that.
    label = serializers.CharField()  # type: ignore[assignment]
    count = serializers.IntegerField()


class CohortSerializer(serializers.Serializer):
    week = serializers.DateField()
    trials = serializers.IntegerField()
    converted = serializers.IntegerField()
    still_trialing = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)


class FlowSerializer(serializers.Serializer):
    period = serializers.DateField()
    paying_at_start = serializers.IntegerField()
    started = serializers.IntegerField()
    stopped = serializers.IntegerField()
    mrr_cents_at_end = serializers.IntegerField()
    churn_rate = serializers.FloatField(allow_null=True)


class FiguresSerializer(serializers.Serializer):
    first_day = serializers.DateField()
    last_day = serializers.DateField()
    time_zone = serializers.CharField()
    readers_by_state = CountSerializer(many=True)
    paying = serializers.IntegerField()
    mrr_cents = serializers.IntegerField()
    arr_cents = serializers.IntegerField()
    trials_per_day = CountSerializer(many=True)
    conversion_by_week = CohortSerializer(many=True)
    churn_per_month = FlowSerializer(many=True)
