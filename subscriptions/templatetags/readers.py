"""Template pieces of the reader side that other pages (the landing page) include."""

from django import template

from newsletter.models import Edition
from subscriptions.forms import SignupForm

register = template.Library()

SAMPLE_ARTICLES = 3


@register.inclusion_tag("subscriptions/_signup_form.html")
def signup_form(form: SignupForm | None = None) -> dict:
    return {"form": form or SignupForm()}


@register.inclusion_tag("subscriptions/_latest_edition.html")
def latest_edition_sample() -> dict:
    """The last edition sent, as a sample of what arrives each morning."""
    edition = Edition.objects.filter(status=Edition.Status.SENT).order_by("-date").first()
    articles = list(edition.ordered_articles()[:SAMPLE_ARTICLES]) if edition else []
    return {"edition": edition, "articles": articles}
