from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from subscriptions import webhooks
from subscriptions.models import Membership, ReaderEmail, StripeEvent, Subscriber

# Written only from Stripe (sync_subscription): editing them here would be
# overwritten by the next event, so staff see them but change them at Stripe.
MIRRORED_FROM_STRIPE = [*Membership.MIRRORED_FROM_STRIPE, "stripe_synced_at"]


class MembershipInline(admin.StackedInline):
    model = Membership
    can_delete = False
    extra = 0
    fields = ("complimentary", "complimentary_until", *MIRRORED_FROM_STRIPE)
    readonly_fields = MIRRORED_FROM_STRIPE


READER_EMAIL_FIELDS = ("kind", "cause", "status", "created_at", "sent_at")


class ReaderEmailInline(admin.TabularInline):
    model = ReaderEmail
    extra = 0
    can_delete = False
    fields = READER_EMAIL_FIELDS
    readonly_fields = READER_EMAIL_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Subscriber | None = None) -> bool:
        return False


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "email_status", "membership_status", "created_at"]
    list_filter = ["email_status", "membership__status", "membership__complimentary"]
    search_fields = ["email", "name"]
    list_select_related = ["membership"]
    readonly_fields = ["created_at", "updated_at", "email_status_changed_at", "last_signed_in_at"]
    inlines = [MembershipInline, ReaderEmailInline]

    @admin.display(description="membership", ordering="membership__status")
    def membership_status(self, subscriber: Subscriber) -> str:
        membership = getattr(subscriber, "membership", None)
        if membership is None:
            return "none"
        if membership.is_comped:
            return f"complimentary ({membership.get_status_display()} at Stripe)"
        return membership.get_status_display()


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = [
        "subscriber",
        "status",
        "complimentary",
        "trial_end",
        "current_period_end",
        "cancel_at_period_end",
    ]
    list_filter = ["status", "complimentary", "cancel_at_period_end"]
    search_fields = ["subscriber__email", "stripe_customer_id", "stripe_subscription_id"]
    list_select_related = ["subscriber"]
    raw_id_fields = ["subscriber"]
    fields = ["subscriber", "complimentary", "complimentary_until", *MIRRORED_FROM_STRIPE]
    readonly_fields = MIRRORED_FROM_STRIPE


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "type", "status", "attempts", "note", "received_at"]
    list_filter = ["status", "type"]
    search_fields = ["event_id", "note"]
    readonly_fields = [
        "event_id",
        "type",
        "status",
        "note",
        "error",
        "attempts",
        "stripe_created_at",
        "received_at",
        "processed_at",
        "payload",
    ]
    actions = ["retry_events"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry the selected failed events", permissions=["change"])
    def retry_events(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        results = [webhooks.retry(event_id) for event_id in queryset.values_list("pk", flat=True)]
        succeeded = results.count(True)
        failed = results.count(False)
        skipped = results.count(None)
        self.message_user(
            request,
            f"{succeeded} retried successfully, {failed} failed again, "
            f"{skipped} skipped (not failed).",
            messages.WARNING if failed else messages.SUCCESS,
        )


@admin.register(ReaderEmail)
class ReaderEmailAdmin(admin.ModelAdmin):
    list_display = ["subscriber", "kind", "cause", "status", "created_at", "sent_at"]
    list_filter = ["kind", "status"]
    search_fields = ["subscriber__email", "cause"]
    list_select_related = ["subscriber"]
    readonly_fields = ["subscriber", "kind", "cause", "context", "status", "created_at", "sent_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
