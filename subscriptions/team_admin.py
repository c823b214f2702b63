"""Teams in the admin, read-only: their subscription as mirrored from Stripe, and their seats.

Written only by the flow (subscriptions.actions.teams) and Stripe's events:
staff see who manages which team, how many seats are bought and taken, and
who holds them; they change seats and subscriptions at Stripe or through the
manager's page.
"""

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from subscriptions.referral_admin import ReadOnlyAdmin, ReadOnlyInline
from subscriptions.team_models import Team, TeamSeat

SEAT_FIELDS = ("subscriber", "claimed_at", "removed_at", "access_until")


class SeatInline(ReadOnlyInline):
    model = TeamSeat
    fields = SEAT_FIELDS
    readonly_fields = SEAT_FIELDS


@admin.register(Team)
class TeamAdmin(ReadOnlyAdmin):
    list_display = ["name", "manager", "status", "seats", "seats_taken", "current_period_end"]
    list_filter = ["status"]
    search_fields = ["name", "manager__email", "stripe_customer_id", "stripe_subscription_id"]
    list_select_related = ["manager"]
    readonly_fields = [
        "name",
        "manager",
        "status",
        "seats",
        "seats_requested",
        "amount",
        "current_period_end",
        "cancel_at_period_end",
        "past_due_since",
        "ended_at",
        "stripe_customer_id",
        "stripe_subscription_id",
        "stripe_synced_at",
        "created_at",
    ]
    inlines = [SeatInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return (
            super()
            .get_queryset(request)
            .annotate(taken=Count("seat_holders", filter=Q(seat_holders__removed_at__isnull=True)))
        )

    @admin.display(description="Seats taken")
    def seats_taken(self, team: Team) -> int:
        return getattr(team, "taken", 0)
