"""Template pieces of the reader side that other pages (the landing page) include."""

from django import template
from django.conf import settings

from newsletter.models import Edition
from subscriptions.forms import SignupForm

register = template.Library()

SAMPLE_ARTICLES = 3


@register.inclusion_tag("subscriptions/_signup_form.html")
def signup_form(form: SignupForm | None = None) -> dict:
    # An inclusion tag does not see the page's context (nor its context
    # processors), so the trial length the button names is passed here.
    return {"form": form or SignupForm(), "trial_days": settings.TRIAL_DAYS}


@register.inclusion_tag("subscriptions/_latest_edition.html")
def latest_edition_sample() -> dict:
    """The last edition sent, as a sample of what arrives each morning."""
    edition = Edition.objects.filter(status=Edition.Status.SENT).order_by("-date").first()
    articles = list(edition.ordered_articles()[:SAMPLE_ARTICLES]) if edition else []
    return {"edition": edition, "articles": articles}
