"""What the newsletter tells other apps without importing them.

articles_published(article_ids): scheduled articles went live by a
queryset update (ArticleQuerySet.publish_due), which sends no save
signals; sent inside its transaction.
"""

from django.dispatch import Signal

articles_published = Signal()
