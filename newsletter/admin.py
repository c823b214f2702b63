from django.contrib import admin

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
    list_display = ["date", "status", "article_count", "sent_count", "sent_at"]
    list_filter = ["status"]
    date_hierarchy = "date"
    inlines = [EditionArticleInline]
    readonly_fields = ["created_at", "sent_at"]

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
