import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Field, QuerySet
from django.forms.formsets import BaseFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.views.decorators.csp import csp_override

from delivery import actions, send_report
from delivery.models import Delivery
from newsletter import desk, editions, uploads
from newsletter.forms import CurationForm, PreviewForm, TestSendForm
from newsletter.models import Article, Edition, EditionArticle, EditionLocked, NoSendDay, Section
from subscriptions.addresses import mask_addresses
from subscriptions.admin_privacy import can_see_readers

if TYPE_CHECKING:
    pass

FAILURES_SHOWN = 200

admin.site.site_header = f"{settings.NEWSLETTER_NAME}: editors' desk"
admin.site.site_title = settings.NEWSLETTER_NAME


@admin.register(Section)
class SectionAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "position"]
    list_editable = ["position"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name"]


# The admin's structured change message, as LogEntry stores it in JSON.
ChangeMessage = list[dict[str, dict[str, list[str]]]]


def status_change_message(form: forms.ModelForm, default: ChangeMessage) -> str | ChangeMessage:
    """The admin's "Changed Title and Body." plus the status move, if any.

    LogEntry stores either the admin's JSON structure or plain text; plain
    text lets the history say "Status: Draft → Published" as well.
    """
    if "status" not in form.changed_data:
        return default
    before = Article.Status(form.initial["status"]).label
    after = form.instance.get_status_display()
    label = str(form.fields["status"].label)
    for entry in default:
        if "changed" in entry:
            entry["changed"]["fields"] = [f for f in entry["changed"]["fields"] if f != label]
    default = [entry for entry in default if entry.get("changed", {"fields": True})["fields"]]
    text = LogEntry(change_message=json.dumps(default)).get_change_message() if default else ""
    when = ""
    if form.instance.status == Article.Status.SCHEDULED and form.instance.published_at:
        local = timezone.localtime(form.instance.published_at)
        when = f" for {local:%Y-%m-%d %H:%M %Z}"
    return f"{text} Status: {before} → {after}{when}.".strip()


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ["title", "section", "status", "published_at", "byline_or_author", "updated_at"]
    list_filter = ["status", "free_to_read", "section", "published_at"]
    list_select_related = ["section", "author"]
    search_fields = ["title", "dek", "body", "byline"]
    prepopulated_fields = {"slug": ["title"]}
    date_hierarchy = "published_at"
    autocomplete_fields = ["author", "section"]
    radio_fields = {"status": admin.HORIZONTAL}
    actions = ["publish_now", "unpublish"]
    fieldsets = [
        (None, {"fields": ["title", "slug", "dek", "body"]}),
        ("Lead image", {"fields": ["lead_image", "lead_image_alt"]}),
        ("Placement", {"fields": ["section", "byline", "author"]}),
        (
            "Publication",
            {
                "fields": ["status", "published_at", "free_to_read"],
                "description": (
                    "Draft: only staff can see it. Scheduled: goes live at the publication "
                    "time (within a minute). Published: live now; leave the time empty to "
                    "publish at once. Each weekday's digest carries what was published since "
                    "the previous one."
                ),
            },
        ),
    ]

    class Media:
        # Names the rich-text editor after the field's label, for screen readers.
        js = ["js/prose-editor-label.js"]

    def formfield_for_dbfield(
        self, db_field: Field, request: HttpRequest, **kwargs: object
    ) -> forms.Field | None:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None and db_field.name == "lead_image":
            # The admin renders file inputs in a fieldset whose legend does not
            # name the input itself; screen readers would announce "file, no name".
            field.widget.attrs["aria-label"] = "Lead image"
            # Type and pixel limits, on top of the model's size limit.
            field.validators = [*field.validators, uploads.validate_lead_image]
        if field is not None and db_field.name == "published_at":
            field.help_text = (
                f"In the newsroom's time zone, {settings.DIGEST_TIMEZONE} "
                "(the admin's zone for every time)."
            )
        return field

    @admin.display(description="byline", ordering="byline")
    def byline_or_author(self, article: Article) -> str:
        return article.byline_display

    def save_model(
        self, request: HttpRequest, obj: Article, form: forms.ModelForm, change: bool
    ) -> None:
        if not change and obj.author is None and request.user.is_authenticated:
            obj.author = request.user
        super().save_model(request, obj, form, change)

    # django-stubs types the result as the JSON list only; ModelAdmin.log_change
    # and LogEntry store plain text as well, which is what this returns.
    def construct_change_message(  # type: ignore[override]
        self,
        request: HttpRequest,
        form: forms.Form,
        formsets: Iterable[BaseFormSet],
        add: bool = False,
    ) -> str | ChangeMessage:
        default = super().construct_change_message(request, form, formsets, add)
        if add or not isinstance(form, forms.ModelForm):  # the admin's form is a ModelForm
            return default
        return status_change_message(form, default)

    @admin.action(description="Publish the selected articles now", permissions=["change"])
    def publish_now(self, request: HttpRequest, queryset: QuerySet[Article]) -> None:
        count = self._change_status(
            request,
            queryset.exclude(status=Article.Status.PUBLISHED),
            Article.publish,
            "Published (bulk action)",
        )
        self.message_user(request, f"{count} articles published.", messages.SUCCESS)

    @admin.action(
        description="Unpublish the selected articles (back to draft)", permissions=["change"]
    )
    def unpublish(self, request: HttpRequest, queryset: QuerySet[Article]) -> None:
        count = self._change_status(
            request,
            queryset.exclude(status=Article.Status.DRAFT),
            Article.unpublish,
            "Draft (unpublished)",
        )
        self.message_user(
            request,
            f"{count} articles unpublished: off the site, the feed and unsent editions.",
            messages.SUCCESS,
        )

    def _change_status(
        self,
        request: HttpRequest,
        articles: QuerySet[Article],
        change: Callable[[Article], None],
        outcome: str,
    ) -> int:
        """Apply `change` to each article, each in its own transaction, with a history entry."""
        count = 0
        for article in articles:
            with transaction.atomic():
                before = article.get_status_display()
                change(article)
                self.log_change(request, article, f"Status: {before} → {outcome}.")
            count += 1
        return count


class EditionArticleInline(admin.TabularInline):
    model = EditionArticle
    extra = 0
    autocomplete_fields = ["article"]

    # What a sent (or sending) edition carried is its record: the web version
    # and the archive show it. `obj` is the edition.
    def has_add_permission(self, request: HttpRequest, obj: Edition | None = None) -> bool:
        return _curatable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Edition | None = None) -> bool:
        return _curatable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Edition | None = None) -> bool:
        return _curatable(obj) and super().has_delete_permission(request, obj)


def _curatable(edition: Edition | None) -> bool:
    """True for a new edition or one whose send has not started."""
    return edition is None or edition.is_curatable


@admin.register(Edition)
class EditionAdmin(admin.ModelAdmin):
    list_display = ["date", "status", "article_count", "sent_count", "failed_count", "sent_at"]
    list_filter = ["status"]
    date_hierarchy = "date"
    inlines = [EditionArticleInline]
    readonly_fields = ["created_at", "send_started_at", "sent_at"]
    # Once the send has started the edition is the record of what went out:
    # setting it back to draft took it off the web and out of the archive.
    LOCKED_FIELDS = ["date", "status", "cutoff", "editor_note"]
    actions = ["resend_to_failed"]

    def get_readonly_fields(self, request: HttpRequest, obj: Edition | None = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # Status moves by the desk's hold and release and by the send,
            # never by typing it: a draft set to "sent" would skip its send.
            fields.append("status")
            if not obj.is_curatable:
                fields += [field for field in self.LOCKED_FIELDS if field not in fields]
        return fields

    def has_delete_permission(self, request: HttpRequest, obj: Edition | None = None) -> bool:
        # Not even superusers: readers were sent it, its web page is linked
        # from their inboxes, and its deliveries are the send's record. The
        # bulk "delete selected" asks this for each edition too.
        if obj is not None and not obj.is_curatable:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Edition]) -> None:
        super().delete_queryset(request, queryset.filter(status__in=Edition.CURATABLE))

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("next/", view(self.next_edition_view), name="newsletter_edition_next"),
            path(
                "<int:pk>/desk/",
                # The desk previews the email in a frame: inline styles allowed.
                view(csp_override(settings.EMAIL_PREVIEW_CSP)(self.desk_view)),
                name="newsletter_edition_desk",
            ),
            path("<int:pk>/hold/", view(self.hold_view), name="newsletter_edition_hold"),
            path("<int:pk>/release/", view(self.release_view), name="newsletter_edition_release"),
            path("<int:pk>/test/", view(self.test_send_view), name="newsletter_edition_test"),
            path("<int:pk>/resend/", view(self.resend_view), name="newsletter_edition_resend"),
            *super().get_urls(),
        ]

    # ------------------------------------------------------------ the desk

    def _edition_for(self, request: HttpRequest, pk: int, *, change: bool) -> Edition:
        allowed = (
            self.has_change_permission(request) if change else self.has_view_permission(request)
        )
        if not allowed:
            raise PermissionDenied
        return get_object_or_404(Edition, pk=pk)

    def _desk_url(self, edition: Edition) -> str:
        return reverse("admin:newsletter_edition_desk", args=[edition.pk])

    def next_edition_view(self, request: HttpRequest) -> HttpResponse:
        """Build or refresh the next morning's edition and open it on the desk."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        edition = desk.next_edition()
        if edition is not None:
            return redirect(self._desk_url(edition))
        context = {
            **self.admin_site.each_context(request),
            "title": "Next edition",
            "opts": self.opts,
            "date": editions.upcoming_edition_date(),
        }
        return TemplateResponse(request, "admin/newsletter/edition/next_empty.html", context)

    def desk_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The edition as editors see it: curation and previews, or how the send went."""
        edition = self._edition_for(request, pk, change=request.method == "POST")
        form = None
        if edition.is_curatable:
            form = CurationForm(request.POST or None, edition=edition)
            if request.method == "POST" and form.is_valid():
                try:
                    changes = edition.curate(form.placements(), form.cleaned_data["editor_note"])
                except (EditionLocked, ValueError) as error:
                    messages.error(request, str(error))
                    return redirect(self._desk_url(edition))
                if changes:
                    self.log_change(request, edition, " ".join(changes))
                    messages.success(request, "Saved. " + " ".join(changes))
                else:
                    messages.info(request, "Nothing changed.")
                return redirect(self._desk_url(edition))
        elif request.method == "POST":
            messages.error(request, "This edition's send has started: it can no longer change.")
            return redirect(self._desk_url(edition))

        preview_form = PreviewForm(request.GET or None)
        reader, zone = preview_form.choice()
        message = desk.preview(edition, reader, zone=zone)
        progress = send_report.progress(edition)
        show_readers = can_see_readers(request)
        failures = send_report.failures(edition, with_readers=show_readers)
        now = timezone.now()
        context = {
            **self.admin_site.each_context(request),
            "title": f"{edition}",
            "opts": self.opts,
            "edition": edition,
            "form": form,
            "articles": list(edition.ordered_articles()),
            "preview_form": preview_form if preview_form.is_bound else PreviewForm(),
            "zone": zone,
            "preview_at": desk.morning_label(edition, zone),
            "message": message,
            "html": message.html,
            "test_form": TestSendForm(initial={"reader": reader, "zone": zone}),
            "progress": progress,
            "zone_sends": [
                (send, send.finish_label(now)) for send in send_report.zone_sends(edition)
            ],
            "carried": send_report.carried(edition),
            "unconfirmed": send_report.unconfirmed(edition),
            "may_have_had_twice": send_report.may_have_had_twice(edition),
            "next_sends": desk.next_sends(),
            "failures": [
                (
                    delivery,
                    delivery.last_error if show_readers else mask_addresses(delivery.last_error),
                )
                for delivery in failures[:FAILURES_SHOWN]
            ],
            "failure_count": failures.count(),
            "show_readers": show_readers,
            "is_next": edition.date == editions.upcoming_edition_date(),
        }
        return TemplateResponse(request, "admin/newsletter/edition/desk.html", context)

    def hold_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._change_status(request, pk, hold=True)

    def release_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._change_status(request, pk, hold=False)

    def _change_status(self, request: HttpRequest, pk: int, *, hold: bool) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        edition = self._edition_for(request, pk, change=True)
        try:
            edition.hold() if hold else edition.release()
        except EditionLocked as error:
            messages.error(request, str(error))
        else:
            if hold:
                text = "Held: this edition will not be sent until it is released."
            else:
                text = "Released: this edition goes out at the next morning send."
            self.log_change(request, edition, text)
            messages.success(request, text)
        return redirect(self._desk_url(edition))

    def test_send_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        edition = self._edition_for(request, pk, change=False)
        form = TestSendForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose which reader to send the test as.")
            return redirect(self._desk_url(edition))
        reader, zone = form.cleaned_data["reader"], form.cleaned_data["zone"]
        if not request.user.is_authenticated:  # admin_view lets in only signed-in staff
            raise PermissionDenied
        try:
            address = desk.send_test(edition, reader, request.user, zone=zone)
        except (ValueError, desk.TestSendFailed) as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"Test email sent to {address}.")
        query = urlencode({"reader": reader, "zone": zone or settings.DIGEST_TIMEZONE})
        return HttpResponseRedirect(f"{self._desk_url(edition)}?{query}")

    def resend_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        edition = self._edition_for(request, pk, change=True)
        self._resend(request, [edition])
        return redirect(self._desk_url(edition))

    # ------------------------------------------------------------ list

    @admin.action(description="Resend to readers whose delivery failed", permissions=["change"])
    def resend_to_failed(self, request: HttpRequest, queryset: QuerySet[Edition]) -> None:
        self._resend(request, queryset)

    def _resend(self, request: HttpRequest, editions: Iterable[Edition]) -> None:
        total = 0
        for edition in editions:
            count = actions.do_resend_failed(edition)
            if count:
                self.log_change(request, edition, f"Queued {count} failed deliveries again.")
            total += count
        self.message_user(
            request,
            f"{total} failed deliveries queued again." if total else "No failed deliveries.",
            messages.SUCCESS if total else messages.INFO,
        )

    @admin.display(description="failed")
    def failed_count(self, edition: Edition) -> int:
        return edition.deliveries.filter(status=Delivery.Status.FAILED).count()

    @admin.display(description="articles")
    def article_count(self, edition: Edition) -> int:
        return edition.articles.count()

    @admin.display(description="sent")
    def sent_count(self, edition: Edition) -> int:
        return edition.deliveries.filter(status=Delivery.Status.SENT).count()


@admin.register(NoSendDay)
class NoSendDayAdmin(admin.ModelAdmin):
    """Dates with no digest anywhere; what was published rolls into the next one."""

    list_display = ["date", "weekday", "note"]
    date_hierarchy = "date"
    search_fields = ["note"]

    @admin.display(description="Day")
    def weekday(self, day: NoSendDay) -> str:
        return f"{day.date:%A}"
