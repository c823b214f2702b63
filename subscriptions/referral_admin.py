"""Referrals in the admin: every decision with its reason, and the rewards, read-only.

Written only by the flow (subscriptions.actions.referrals): staff read why a
referral earned a reward or not, and what was credited or taken back at
Stripe, and change nothing here (a credit is changed at Stripe).
"""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from subscriptions.referral_models import Referral, ReferralDecision, ReferralReward

DECISION_FIELDS = ("created_at", "outcome", "reason", "detail")
REWARD_FIELDS = (
    "kind",
    "months",
    "amount",
    "status",
    "stripe_customer_id",
    "balance_transaction_id",
    "take_back_transaction_id",
    "granted_at",
    "taken_back_at",
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class DecisionInline(ReadOnlyInline):
    model = ReferralDecision
    fields = DECISION_FIELDS
    readonly_fields = DECISION_FIELDS


class RewardInline(ReadOnlyInline):
    model = ReferralReward
    fields = REWARD_FIELDS
    readonly_fields = REWARD_FIELDS


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "referrer",
        "referred",
        "eligible",
        "refused_reason",
        "first_paid_at",
        "last_decision",
    ]
    list_filter = ["eligible", "refused_reason", "decisions__outcome", "decisions__reason"]
    search_fields = ["referrer__email", "referred__email", "first_invoice_id"]
    list_select_related = ["referrer", "referred"]
    readonly_fields = [
        "referrer",
        "referred",
        "eligible",
        "refused_reason",
        "trial_days",
        "first_paid_at",
        "first_invoice_id",
        "created_at",
    ]
    inlines = [DecisionInline, RewardInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Referral]:
        return super().get_queryset(request).prefetch_related("decisions")

    @admin.display(description="Last decision")
    def last_decision(self, referral: Referral) -> str:
        decisions = list(referral.decisions.all())
        return str(decisions[-1]) if decisions else ""


@admin.register(ReferralReward)
class ReferralRewardAdmin(ReadOnlyAdmin):
    list_display = ["granted_at", "referrer", "kind", "months", "amount", "status"]
    list_filter = ["status", "kind"]
    search_fields = ["referrer__email", "stripe_customer_id", "balance_transaction_id"]
    list_select_related = ["referrer"]
    readonly_fields = ["referrer", "referral", *REWARD_FIELDS]
