"""API keys and webhook endpoints in the admin: secrets shown once, deliveries logged, replays."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from api import events, outbound, scopes, webhooks
from api.models import ApiKey, ApiWrite, WebhookDelivery, WebhookEndpoint, WebhookEvent

# Not stored: shown on the page that follows the save, once.
_NEW_SECRET = "_new_secret"  # noqa: S105 - an attribute name, not a secret


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Only the scopes your own permissions allow: editors may hold article keys only.",
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "requests_per_minute"]

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_scopes(self) -> list[str]:
        chosen = self.cleaned_data["scopes"]
        refused = [scope for scope in chosen if not scopes.may_hold(self.user, scope)]
        if refused:
            raise forms.ValidationError(
                "You may not grant %(scopes)s: your account lacks its permission.",
                params={"scopes": ", ".join(refused)},
            )
        return list(chosen)


def _shown_once(
    request: HttpRequest, title: str, label: str, secret: str, note: str
) -> HttpResponse:
    response = TemplateResponse(
        request,
        "api/secret_once.html",
        {
            **admin.site.each_context(request),
            "title": title,
            "label": label,
            "secret": secret,
            "note": note,
        },
    )
    response["Cache-Control"] = "no-store"  # the one page that shows it
    return response


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "owner", "scopes", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    readonly_fields = ["prefix", "owner", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        keys = super().get_queryset(request).select_related("owner")
        # Each person manages their own keys; superusers see everyone's.
        return keys if request.user.is_superuser else keys.filter(owner_id=request.user.pk)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["form"] = ApiKeyForm
        form_class = super().get_form(request, obj, change=change, **kwargs)

        class WithUser(form_class):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **inner: Any) -> None:
                super().__init__(*args, user=request.user, **inner)

        return WithUser

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if not change:
            token = ApiKey.new_token()
            obj.set_token(token)
            obj.owner = request.user  # type: ignore[assignment]
            setattr(obj, _NEW_SECRET, token)
        super().save_model(request, obj, form, change)

    def response_add(
        self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        token = getattr(obj, _NEW_SECRET, None)
        if token is None:
            return super().response_add(request, obj, post_url_continue)
        return _shown_once(
            request,
            f"API key “{obj.name}” created",
            "Your API key",
            token,
            "Copy it now: it is stored hashed and is never shown again. Send it as "
            "“Authorization: Bearer <key>”.",
        )

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = queryset.filter(revoked_at=None).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} key(s) revoked.", messages.SUCCESS)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoked, never deleted: the writes made with it name it


@admin.register(ApiWrite)
class ApiWriteAdmin(admin.ModelAdmin):
    list_display = ["at", "key", "method", "path", "status_code"]
    list_filter = ["method", "status_code"]
    list_select_related = ["key"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiWrite]:
        writes = super().get_queryset(request)
        return writes if request.user.is_superuser else writes.filter(key__owner_id=request.user.pk)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class WebhookEndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=events.EVENT_TYPES, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "events", "enabled"]

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        try:
            outbound.check_url(url)
        except outbound.RefusedAddress as refused:
            raise forms.ValidationError(str(refused)) from None
        return url

    def clean_events(self) -> list[str]:
        chosen = list(self.cleaned_data["events"])
        if not self.user.has_perm(scopes.READERS_PERMISSION) and (
            set(chosen) & set(events.READER_EVENTS)
        ):
            raise forms.ValidationError(
                "Reader events carry readers' data: only staff who may see readers choose them."
            )
        return chosen


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    can_delete = False
    fields = ("event", "status", "attempts", "response_code", "last_error", "last_attempt_at")
    readonly_fields = fields
    ordering = ["-id"]
    max_num = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        return super().get_queryset(request).select_related("event")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "description", "enabled", "failing_since", "disabled_at"]
    list_filter = ["enabled"]
    readonly_fields = ["failing_since", "disabled_at", "created_at"]
    actions = ["replay_failed", "enable"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["form"] = WebhookEndpointForm
        form_class = super().get_form(request, obj, change=change, **kwargs)

        class WithUser(form_class):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **inner: Any) -> None:
                super().__init__(*args, user=request.user, **inner)

        return WithUser

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        if not change:
            obj.secret = WebhookEndpoint.new_secret()
            setattr(obj, _NEW_SECRET, obj.secret)
        if obj.enabled:
            obj.disabled_at = None
        super().save_model(request, obj, form, change)

    def response_add(
        self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue: str | None = None
    ) -> HttpResponse:
        secret = getattr(obj, _NEW_SECRET, None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        return _shown_once(
            request,
            f"Webhook endpoint {obj.url} added",
            "Its signing secret",
            secret,
            "Copy it now into the receiving application: it verifies the Briefing-Signature "
            "header of every delivery (docs/api.md) and is never shown again.",
        )

    @admin.action(
        description="Replay every failed delivery of the selected endpoints", permissions=["change"]
    )
    def replay_failed(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        failed = WebhookDelivery.objects.filter(
            endpoint__in=queryset, status=WebhookDelivery.Status.FAILED
        ).values_list("pk", flat=True)
        count = webhooks.do_replay(list(failed))
        self.message_user(request, f"{count} failed deliveries queued again.", messages.SUCCESS)

    @admin.action(description="Enable the selected endpoints", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        count = queryset.update(enabled=True, disabled_at=None, failing_since=None)
        self.message_user(request, f"{count} endpoint(s) enabled.", messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: each event to each endpoint, its attempts and last answer."""

    list_display = [
        "event_type", "event_id", "endpoint", "status", "attempts", "response_code",
        "last_attempt_at", "next_attempt_at",
    ]  # fmt: skip
    list_filter = ["status", "event__type", "endpoint"]
    list_select_related = ["event", "endpoint"]
    readonly_fields = [
        "event", "endpoint", "status", "attempts", "response_code", "last_error",
        "last_attempt_at", "next_attempt_at", "delivered_at", "created_at", "payload",
    ]  # fmt: skip
    actions = ["replay"]

    @admin.display(description="event")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type

    @admin.display(description="event id")
    def event_id(self, delivery: WebhookDelivery) -> str:
        return delivery.event.event_id

    @admin.display(description="payload")
    def payload(self, delivery: WebhookDelivery) -> str:
        return webhooks.body_of(delivery.event.payload).decode()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Replay the selected deliveries", permissions=["change"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = webhooks.do_replay(list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} deliveries queued again.", messages.SUCCESS)


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["type", "event_id", "created_at"]
    list_filter = ["type"]
    readonly_fields = ["public_id", "type", "key", "ordering_key", "payload", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
