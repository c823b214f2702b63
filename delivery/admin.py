"""The admin of the sends: deliveries, each morning's send slot, and send health.

Send health is the alerts raised and the pauses staff resume (delivery.deliverability.health).
"""

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from delivery import actions
from delivery.models import BounceEvent, Delivery, SendAlert, SendPause, SendSlot
from subscriptions.addresses import mask_addresses
from subscriptions.admin_privacy import ReaderDataAdmin, can_see_readers

if TYPE_CHECKING:
    pass


@admin.register(Delivery)
class DeliveryAdmin(ReaderDataAdmin):
    """Deliveries; with who they went to only for staff who may see readers."""

    # A failure reason may quote the address; the reader's fields are theirs.
    reader_data_fields = ("last_error", "subscriber")

    list_display = ["edition", "subscriber", "status", "attempts", "sent_at", "last_error"]
    list_filter = ["status", "edition"]
    search_fields = ["subscriber__email"]
    list_select_related = ["edition", "subscriber"]
    raw_id_fields = ["subscriber"]
    readonly_fields = ["created_at", "claimed_at", "sent_at"]

    # A delivery's own page names its reader (its title is "… to <address>").
    editor_list_display = ["edition", "status", "attempts", "sent_at", "failure_reason"]

    def get_list_select_related(self, request: HttpRequest) -> list[str]:
        return self.list_select_related if can_see_readers(request) else ["edition"]

    def has_view_permission(self, request: HttpRequest, obj: Delivery | None = None) -> bool:
        if obj is not None and not can_see_readers(request):
            return False
        return super().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Delivery | None = None) -> bool:
        if obj is not None and not can_see_readers(request):
            return False
        return super().has_change_permission(request, obj)

    @admin.display(description="failure reason")
    def failure_reason(self, delivery: Delivery) -> str:
        # Stored masked (delivery.batches); rows of before were not.
        return mask_addresses(delivery.last_error) or "-"


@admin.register(SendSlot)
class SendSlotAdmin(admin.ModelAdmin):
    """Each local morning's send: when it was due, in which zone, and what came of it."""

    list_display = ["date", "send_time", "time_zone", "scheduled_for", "outcome", "readers"]
    list_filter = ["outcome", "date"]
    search_fields = ["time_zone"]
    date_hierarchy = "date"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SendSlot | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: SendSlot | None = None) -> bool:
        return False


@admin.register(SendPause)
class SendPauseAdmin(admin.ModelAdmin):
    list_display = ["date", "reason", "created_at", "resumed_at", "resumed_by"]
    readonly_fields = ["date", "edition", "reason", "created_at", "resumed_at", "resumed_by"]
    actions = ["resume"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Resume the paused sends", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[SendPause]) -> None:
        resumed = sum(actions.do_resume_sends(pause, request.user) for pause in queryset)
        self.message_user(request, f"Resumed {resumed} paused day(s).", messages.SUCCESS)


@admin.register(SendAlert)
class SendAlertAdmin(admin.ModelAdmin):
    list_display = ["edition", "kind", "message", "created_at", "dismissed_at"]
    readonly_fields = ["edition", "kind", "message", "created_at", "dismissed_at"]
    actions = ["dismiss"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Dismiss (hide the banner)", permissions=["change"])
    def dismiss(self, request: HttpRequest, queryset: QuerySet[SendAlert]) -> None:
        queryset.filter(dismissed_at=None).update(dismissed_at=timezone.now())


@admin.register(BounceEvent)
class BounceEventAdmin(ReaderDataAdmin):
    # Counts and reasons, as deliveries show editors: no addresses in the list.
    list_display = ["created_at", "kind", "source", "edition", "detail"]
    list_filter = ["kind", "source"]
    readonly_fields = [
        "kind", "source", "subscriber", "delivery", "edition", "report_id", "detail", "created_at",
    ]  # fmt: skip
    # A bounce's text quotes the address; a report's Message-ID may be the reader's mail's.
    reader_data_fields = ("detail", "report_id", "subscriber", "delivery")

    editor_list_display = ["created_at", "kind", "source", "edition", "masked_detail"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: BounceEvent | None = None) -> bool:
        # An event's own page names its reader.
        if obj is not None and not can_see_readers(request):
            return False
        return super().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="detail")
    def masked_detail(self, event: BounceEvent) -> str:
        return mask_addresses(event.detail) or "-"
