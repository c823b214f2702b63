"""The admin of send health: the alerts raised, and the pauses staff resume (newsletter.bounces)."""

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from newsletter import bounces
from newsletter.models import BounceEvent, SendAlert, SendPause
from subscriptions.addresses import mask_addresses
from subscriptions.admin_privacy import ReaderDataAdmin, can_see_readers

if TYPE_CHECKING:
    from django.contrib.admin.options import _ListDisplayT


@admin.register(SendPause)
class SendPauseAdmin(admin.ModelAdmin):
    list_display = ["date", "reason", "created_at", "resumed_at", "resumed_by"]
    readonly_fields = ["date", "edition", "reason", "created_at", "resumed_at", "resumed_by"]
    actions = ["resume"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Resume the paused sends", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[SendPause]) -> None:
        resumed = sum(bounces.do_resume_sends(pause, request.user) for pause in queryset)
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

    def get_list_display(self, request: HttpRequest) -> "_ListDisplayT[Any]":
        if can_see_readers(request):
            return self.list_display
        return ["created_at", "kind", "source", "edition", "masked_detail"]

    # django-stubs leave out the None that Django documents ("no links").
    def get_list_display_links(  # type: ignore[override]
        self, request: HttpRequest, list_display: "_ListDisplayT[Any]"
    ) -> "_ListDisplayT[Any] | None":
        if can_see_readers(request):
            return super().get_list_display_links(request, list_display)
        return None

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
