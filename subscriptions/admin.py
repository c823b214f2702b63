from collections.abc import Iterator
from typing import TYPE_CHECKING

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.views.decorators.http import require_POST

from subscriptions import csvfiles, stripe_api, webhooks
from subscriptions.actions.imports import (
    IMPORT_AS,
    CsvFormatError,
    ImportReport,
    do_import_readers,
    do_import_stripe,
)
from subscriptions.admin_privacy import ReaderDataAdmin, can_see_readers
from subscriptions.models import (
    DAY_NAMES,
    DIGEST_DAYS,
    GiftCode,
    Membership,
    ReaderEmail,
    StripeEvent,
    Subscriber,
)

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups

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


# Staff with the billing permission (the dashboard's: seeing memberships) may
# export the list; importing writes memberships, so it asks for changing them.
BILLING_PERMISSION = "subscriptions.view_membership"
IMPORT_PERMISSION = "subscriptions.change_membership"


REPORT_LINES_SHOWN = 50  # messages on one admin page; the command prints them all


class ImportReadersForm(forms.Form):
    file = forms.FileField(
        label="CSV file", help_text="Substack's or Ghost's members export, or email,name,time_zone."
    )
    import_as = forms.ChoiceField(
        label="New readers get",
        choices=[
            (
                "complimentary",
                "a complimentary membership (Substack's paid time left: until it ends)",
            ),
            ("trial", "a complimentary membership for the free trial's length"),
        ],
    )
    dry_run = forms.BooleanField(label="Dry run: report only", required=False, initial=True)

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        # Larger lists: manage.py import_readers (no request body limit).
        if upload.size > settings.UPLOAD_REQUEST_MAX_BYTES:
            raise forms.ValidationError(
                "The file is too large for the admin: use manage.py import_readers."
            )
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None


class _Echo:
    def write(self, value: str) -> str:
        return value


class SubscriberForm(forms.ModelForm):
    """A reader as staff edit them: the digest's days as boxes, at least one section and day."""

    days = forms.MultipleChoiceField(
        choices=list(DAY_NAMES.items()),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one day."},
    )

    class Meta:
        model = Subscriber
        exclude: list[str] = []  # every editable field, as the admin's default form

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if self.instance.pk is not None:
            self.initial["days"] = self.instance.weekdays

    def clean_days(self) -> str:
        return ",".join(day for day in DIGEST_DAYS if day in self.cleaned_data["days"])

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        if not cleaned.get("all_sections") and not cleaned.get("sections"):
            self.add_error(
                "sections", "Choose at least one section, or tick “follows every section”."
            )
        return cleaned


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    form = SubscriberForm
    list_display = ["email", "name", "email_status", "membership_status", "created_at"]
    list_filter = [
        "email_status",
        "membership__status",
        "membership__complimentary",
        "digest_format",
        "all_sections",
    ]
    filter_horizontal = ["sections"]
    search_fields = ["email", "name"]
    list_select_related = ["membership"]
    readonly_fields = ["created_at", "updated_at", "email_status_changed_at", "last_signed_in_at"]
    inlines = [MembershipInline, ReaderEmailInline]
    change_list_template = "admin/subscriptions/subscriber/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path(
                "import-csv/",
                view(self.import_csv_view),
                name="subscriptions_subscriber_import_csv",
            ),
            path(
                "import-stripe/",
                view(require_POST(self.import_stripe_view)),
                name="subscriptions_subscriber_import_stripe",
            ),
            path(
                "export-csv/",
                view(self.export_csv_view),
                name="subscriptions_subscriber_export_csv",
            ),
            *super().get_urls(),
        ]

    def _require(self, request: HttpRequest, permission: str) -> None:
        if not request.user.has_perm(permission):
            raise PermissionDenied

    def _report(self, request: HttpRequest, report: ImportReport) -> None:
        level = messages.WARNING if report.rejected or report.dry_run else messages.SUCCESS
        lines = report.lines()
        for line in lines[:REPORT_LINES_SHOWN]:
            self.message_user(request, line, level)
        if len(lines) > REPORT_LINES_SHOWN:
            # Every rejected row must reach whoever fixes the file.
            self.message_user(
                request,
                f"… and {len(lines) - REPORT_LINES_SHOWN} more line(s): "
                "manage.py import_readers FILE --dry-run lists every rejected row.",
                level,
            )

    def import_csv_view(self, request: HttpRequest) -> HttpResponse:
        """Import readers from a CSV (the same as manage.py import_readers)."""
        self._require(request, IMPORT_PERMISSION)
        form = ImportReadersForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                report = do_import_readers(
                    form.cleaned_data["file"],
                    import_as=form.cleaned_data["import_as"],
                    dry_run=form.cleaned_data["dry_run"],
                )
            except CsvFormatError as error:
                form.add_error("file", str(error))
            else:
                self._report(request, report)
                return redirect("admin:subscriptions_subscriber_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Import readers from a CSV",
            "form": form,
            "opts": self.model._meta,
            "import_as": IMPORT_AS,
        }
        return TemplateResponse(request, "admin/subscriptions/subscriber/import_csv.html", context)

    def import_stripe_view(self, request: HttpRequest) -> HttpResponse:
        """Import the live subscriptions at Stripe (the same as manage.py import_stripe)."""
        self._require(request, IMPORT_PERMISSION)
        try:
            report = do_import_stripe(
                all_prices=request.POST.get("all_prices") == "on",
                dry_run=request.POST.get("dry_run") == "on",
            )
        except (stripe_api.StripeError, stripe_api.BillingUnavailable) as error:
            self.message_user(request, f"Stripe could not be reached: {error}", messages.ERROR)
        else:
            self._report(request, report)
        return redirect("admin:subscriptions_subscriber_changelist")

    def export_csv_view(self, request: HttpRequest) -> StreamingHttpResponse:
        """Every reader as CSV, streamed: address, name, zone, email and membership status."""
        self._require(request, BILLING_PERMISSION)
        writer = csvfiles.writer(_Echo())
        header = [
            "email", "name", "time_zone", "email_status", "membership_status",
            "complimentary", "complimentary_until", "trial_end", "current_period_end",
            "cancel_at_period_end", "stripe_customer_id", "created_at",
        ]  # fmt: skip

        def rows() -> Iterator[str]:
            yield writer.writerow(header)
            readers = Subscriber.objects.select_related("membership").order_by("pk")
            for reader in readers.iterator(chunk_size=2000):
                membership = getattr(reader, "membership", None)
                yield writer.writerow(
                    [
                        reader.email,
                        reader.name,
                        reader.time_zone,
                        reader.email_status,
                        membership.status if membership else "",
                        membership.complimentary if membership else "",
                        _iso(membership.complimentary_until if membership else None),
                        _iso(membership.trial_end if membership else None),
                        _iso(membership.current_period_end if membership else None),
                        membership.cancel_at_period_end if membership else "",
                        (membership.stripe_customer_id or "") if membership else "",
                        _iso(reader.created_at),
                    ]
                )

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="readers.csv"'
        return response

    @admin.display(description="membership", ordering="membership__status")
    def membership_status(self, subscriber: Subscriber) -> str:
        membership = getattr(subscriber, "membership", None)
        if membership is None:
            return "none"
        if membership.is_comped:
            return f"complimentary ({membership.get_status_display()} at Stripe)"
        return membership.get_status_display()


def _iso(value: object) -> str:
    return value.isoformat() if value is not None and hasattr(value, "isoformat") else ""


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
class StripeEventAdmin(ReaderDataAdmin):
    list_display = ["event_id", "type", "status", "attempts", "note", "received_at"]
    list_filter = ["status", "type"]
    search_fields = ["event_id", "note"]
    # An event carries the customer's address and name; an error may quote them.
    reader_data_fields = ("payload", "error")
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

    def get_fields(self, request: HttpRequest, obj: StripeEvent | None = None) -> "_FieldGroups":
        fields = super().get_fields(request, obj)
        if can_see_readers(request):
            return fields
        return [name for name in fields if name not in self.reader_data_fields]

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


@admin.register(GiftCode)
class GiftCodeAdmin(admin.ModelAdmin):
    """Gifts as staff see them: who gave whom, paid, delivered, used. Written only by the flow."""

    list_display = [
        "code",
        "status",
        "buyer_email",
        "recipient_email",
        "deliver_on",
        "paid_at",
        "redeemed_at",
    ]
    list_filter = ["status", "deliver_on"]
    search_fields = ["code", "buyer_email", "recipient_email", "checkout_session_id"]
    readonly_fields = [field.name for field in GiftCode._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: GiftCode | None = None) -> bool:
        return False


# The referral and team admin pages live in their own modules.
from subscriptions import referral_admin, team_admin  # noqa: E402, F401
