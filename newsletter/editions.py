"""Building the day's edition: which articles the morning's digest carries.

An edition exists once per date (unique in the database) and carries the
articles published after the previous edition's cutoff, in the editors'
order; building it again only adds what is new, so it is safe to run twice.
"""

import datetime
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from newsletter.models import Article, Edition, EditionArticle
from newsletter.schedule import is_weekday, local_today

logger = logging.getLogger(__name__)


def build_edition(date: datetime.date, now: datetime.datetime | None = None) -> Edition | None:
    """Return the edition for `date`, creating or refreshing it as needed.

    The edition carries the articles published after the previous edition's
    cutoff and up to `now`, in publication order after any the editors have
    placed. A draft edition prepared by the editors keeps their order and
    their left-out articles; newly published ones are added at the end. An
    edition already sending, sent or held is returned as it is. With nothing
    to send (and DIGEST_SEND_WHEN_EMPTY off) there is no edition: None.
    """
    now = now or timezone.now()
    with transaction.atomic():
        edition = Edition.objects.select_for_update().filter(date=date).first()
        if edition is not None and edition.status != Edition.Status.DRAFT:
            return edition
        previous = Edition.objects.filter(date__lt=date).order_by("-date").first()
        published = Article.objects.published_between(
            previous.cutoff if previous else None, now
        ).order_by("published_at", "pk")
        if edition is not None:
            published = published.exclude(editionarticle__edition=edition)
        new_articles = list(published)

        if edition is None:
            if not new_articles and not settings.DIGEST_SEND_WHEN_EMPTY:
                return None
            try:
                with transaction.atomic():
                    edition = Edition.objects.create(date=date, cutoff=now)
            except IntegrityError:
                # Another process built it first; theirs is the edition.
                return Edition.objects.get(date=date)
        else:
            edition.cutoff = now
            edition.save(update_fields=["cutoff"])

        last = edition.editionarticle_set.aggregate(last=Max("position"))["last"] or 0
        EditionArticle.objects.bulk_create(
            EditionArticle(edition=edition, article=article, position=position)
            for position, article in enumerate(new_articles, start=last + 1)
        )
    logger.info("Edition %s: %d new articles added", edition.date, len(new_articles))
    return edition


def build_morning_edition(now: datetime.datetime | None = None) -> Edition | None:
    """The edition the morning send should deliver today, if there is one."""
    now = now or timezone.now()
    today = local_today(now)
    if not is_weekday(today):
        logger.info("No digest on %s: weekends are off", today)
        return None
    edition = build_edition(today, now)
    if edition is None:
        logger.info("No digest on %s: nothing published since the last edition", today)
    return edition
