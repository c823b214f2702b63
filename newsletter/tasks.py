"""Celery tasks of the editorial product: thin wrappers that take ids, safe to run twice.

The sending tasks are delivery's (delivery.tasks); they keep their
"newsletter.tasks.*" names, which queued messages and beat schedules carry.
"""

import logging

from celery import shared_task

from newsletter.models import Article

logger = logging.getLogger(__name__)


@shared_task
def publish_scheduled_articles() -> list[int]:
    """Beat's every-minute task: publish the scheduled articles whose time has come."""
    published = Article.objects.publish_due()
    if published:
        logger.info("Published %d scheduled articles: %s", len(published), published)
    return published
