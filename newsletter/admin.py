from django.contrib import admin, messages
from django.db import transaction

from newsletter import sending, tasks
from newsletter.models import Article, Delivery, Edition, EditionArticle, Section


@admin.register(Section)
class SectionAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "position"]
    list_editable = ["position"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ["title", "section", "status", "published_at", "author"]
    list_filter = ["status", "section", "published_at"]
    search_fields = ["title", "dek", "body"]
    prepopulated_fields = {"slug": ["title"]}
    date_hierarchy = "published_at"
    autocomplete_fields = ["author"]
    fieldsets = [
        (None, {"fields": ["title", "slug", "dek", "body"]}),
        ("Placement", {"fields": ["section", "author", "byline"]}),
        ("Publication", {"fields": ["status", "published_at"]}),
    ]

    def save_model(self, request, obj, form, change) -> None:
        if not change and obj.author is None:
            obj.author = request.user
        super().save_model(request, obj, form, change)


class EditionArticleInline(admin.TabularInline):
    model = EditionArticle
    extra = 0
    autocomplete_fields = ["article"]


@admin.register(Edition)
class EditionAdmin(admin.ModelAdmin):
    list_display = ["date", "status", "article_count", "sent_count", "failed_count", "sent_at"]
    list_filter = ["status"]
    date_hierarchy = "date"
    inlines = [EditionArticleInline]
    readonly_fields = ["created_at", "send_started_at", "sent_at"]
    actions = ["resend_to_failed"]

    @admin.action(description="Resend to readers whose delivery failed")
    def resend_to_failed(self, request, queryset) -> None:
        total = 0
        for edition in queryset:
            count = sending.resend_failed(edition)
            if count:
                transaction.on_commit(lambda pk=edition.pk: tasks.send_edition.delay(pk))
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


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["edition", "subscriber", "status", "attempts", "sent_at", "last_error"]
    list_filter = ["status", "edition"]
    search_fields = ["subscriber__email"]
    list_select_related = ["edition", "subscriber"]
    raw_id_fields = ["subscriber"]
    readonly_fields = ["created_at", "claimed_at", "sent_at"]
