"""Building the day's edition: which articles the morning's digest carries.

An edition exists once per date (unique in the database) and carries the
articles published after the previous edition's cutoff, in the editors'
order; building it again only adds what is new, so it is safe to run twice.
"""

import datetime
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from newsletter import schedule
from newsletter.models import Article, Edition, EditionArticle

logger = logging.getLogger(__name__)

# After the send time, a day with no edition yet still shows that day for a
# little while: beat may not have built it yet, and an edition built now for
# the next day would take the same articles (it starts after the same
# previous edition).
BEAT_GRACE = datetime.timedelta(minutes=10)


def build_edition(
    date: datetime.date, now: datetime.datetime | None = None, *, even_if_empty: bool = False
) -> Edition | None:
    """Return the edition for `date`, creating or refreshing it as needed.

    The edition carries the articles published after the previous edition's
    cutoff and up to `now`, in publication order after any the editors have
    placed. A draft edition prepared by the editors keeps their order and
    their left-out articles; newly published ones are added at the end, also
    while it is sending (each zone's morning comes at its own time). An
    edition sent or held is returned as it is. With nothing
    to send (and DIGEST_SEND_WHEN_EMPTY off) there is no edition: None,
    unless `even_if_empty` (readers back from a pause may still be owed older
    articles).
    """
    now = now or timezone.now()
    with transaction.atomic():
        edition = Edition.objects.select_for_update().filter(date=date).first()
        # A sending edition still grows: its later zones' readers get what
        # was published before their own morning.
        if edition is not None and edition.status not in (
            Edition.Status.DRAFT,
            Edition.Status.SENDING,
        ):
            return edition
        previous = Edition.objects.filter(date__lt=date).order_by("-date").first()
        published = Article.objects.published_between(
            previous.cutoff if previous else None, now
        ).order_by("published_at", "pk")
        # An article belongs to one edition's list: the first that saw it.
        published = published.exclude(editionarticle__isnull=False)
        new_articles = list(published)

        if edition is None:
            if not new_articles and not (even_if_empty or settings.DIGEST_SEND_WHEN_EMPTY):
                # Another process may have built it meanwhile, taking the
                # articles this one would have: theirs is the edition.
                return Edition.objects.filter(date=date).first()
            try:
                with transaction.atomic():
                    edition = Edition.objects.create(date=date, cutoff=now)
            except IntegrityError:
                # Another process built it first; theirs is the edition.
                return Edition.objects.get(date=date)
        elif now > edition.cutoff:
            edition.cutoff = now
            edition.save(update_fields=["cutoff"])

        last = edition.editionarticle_set.aggregate(last=Max("position"))["last"] or 0
        EditionArticle.objects.bulk_create(
            EditionArticle(edition=edition, article=article, position=position)
            for position, article in enumerate(new_articles, start=last + 1)
        )
    logger.info("Edition %s: %d new articles added", edition.date, len(new_articles))
    return edition


def window_articles(
    edition: Edition, start: datetime.datetime, end: datetime.datetime
) -> list[Article]:
    """What a digest of `edition` carries for a reader whose window is (start, end].

    Every article published in the window (a reader back from a pause gets
    what they missed), except those the editors left out, in the edition's
    order: its placed articles first, then the rest by publication time.
    """
    articles = (
        Article.objects.published_between(start, end)
        .exclude(editionarticle__included=False)
        .with_leads()
        .select_related("section", "author")
    )
    positions = dict(
        EditionArticle.objects.filter(edition=edition).values_list("article_id", "position")
    )
    return sorted(
        articles,
        key=lambda article: (
            article.pk not in positions,
            positions.get(article.pk, 0),
            article.published_at,
            article.pk,
        ),
    )


@dataclass(frozen=True)
class ReaderStories:
    """What one reader's digest carries of a window's articles, and how many it leaves out."""

    stories: list[Article]
    # Published in the window in sections the reader does not follow.
    others: int


def stories_for(articles: list[Article], followed: frozenset[int] | None) -> ReaderStories:
    """The articles of a window (window_articles) a reader following `followed` gets.

    `followed`: section ids, or None for every section. A story with no
    section, and a lead story (an editor's mark that it is for everyone:
    EditionArticle.lead, `is_lead` on the articles), reach every reader.
    The editors' order is kept.
    """
    if followed is None:
        return ReaderStories(list(articles), 0)
    stories = [
        article
        for article in articles
        if article.section_id is None
        or article.section_id in followed
        or getattr(article, "is_lead", False)
    ]
    return ReaderStories(stories, len(articles) - len(stories))


def upcoming_edition_date(now: datetime.datetime | None = None) -> datetime.date:
    """The date of the next morning send that has not started: what editors curate.

    schedule.next_edition_date() stays on today all day; once today's send
    has started (or today went by with nothing to send) the editors are
    preparing tomorrow's, so the next weekday is the one to show.
    """
    now = now or timezone.now()
    day = schedule.next_edition_date(now)
    following = schedule.next_edition_date(schedule.send_time_on(day) + datetime.timedelta(days=1))
    edition = Edition.objects.filter(date=day).first()
    if edition is not None:
        # Not started (being prepared, or held): still the one to curate.
        # Started, even early by hand with send_digest: the next one is.
        return day if edition.status in Edition.CURATABLE else following
    if now < schedule.send_time_on(day) + BEAT_GRACE:
        return day
    return following
