from django.contrib import admin

from subscriptions.models import Membership, Subscriber


class MembershipInline(admin.StackedInline):
    model = Membership
    can_delete = False
    extra = 0


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "email_status", "membership_status", "created_at"]
    list_filter = ["email_status", "membership__status"]
    search_fields = ["email", "name"]
    list_select_related = ["membership"]
    readonly_fields = ["created_at", "updated_at", "email_status_changed_at"]
    inlines = [MembershipInline]

    @admin.display(description="membership", ordering="membership__status")
    def membership_status(self, subscriber: Subscriber) -> str:
        membership = getattr(subscriber, "membership", None)
        return membership.get_status_display() if membership else "none"


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = [
        "subscriber",
        "status",
        "trial_end",
        "current_period_end",
        "cancel_at_period_end",
    ]
    list_filter = ["status", "cancel_at_period_end"]
    search_fields = ["subscriber__email", "stripe_customer_id", "stripe_subscription_id"]
    list_select_related = ["subscriber"]
    raw_id_fields = ["subscriber"]
