"""Template pieces about editions that pages include (the landing page's sample)."""

from django import template

from newsletter.models import Edition

register = template.Library()

SAMPLE_ARTICLES = 3


@register.inclusion_tag("newsletter/_latest_edition.html")
def latest_edition_sample() -> dict[str, object]:
    """The last edition sent, as a sample of what arrives each morning."""
    edition = Edition.objects.filter(status=Edition.Status.SENT).order_by("-date").first()
    articles = list(edition.ordered_articles()[:SAMPLE_ARTICLES]) if edition else []
    return {"edition": edition, "articles": articles}
