"""Template pieces of the reader side that other pages (the landing page) include."""

from django import template
from django.conf import settings

from subscriptions.forms import SignupForm

register = template.Library()


@register.inclusion_tag("subscriptions/_signup_form.html")
def signup_form(form: SignupForm | None = None) -> dict:
    # An inclusion tag does not see the page's context (nor its context
    # processors), so the trial length the button names is passed here.
    return {"form": form or SignupForm(), "trial_days": settings.TRIAL_DAYS}
