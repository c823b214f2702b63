from django.apps import AppConfig


class NewsletterConfig(AppConfig):
    name = "newsletter"
    verbose_name = "Newsletter"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from newsletter import pagecache
        from newsletter.models import Article, Edition, EditionArticle, Section

        # What the public pages show: a change replaces the cached pages
        # (bulk updates do it in the models' querysets).
        for model in (Article, Section, Edition, EditionArticle):
            post_save.connect(pagecache.content_changed, sender=model)
            post_delete.connect(pagecache.content_changed, sender=model)
