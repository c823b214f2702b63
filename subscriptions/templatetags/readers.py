"""Template pieces of the reader side that other pages (the landing page) include."""

from django import template
from django.conf import settings

from subscriptions.forms import SignupForm

register = template.Library()


@register.inclusion_tag("subscriptions/_signup_form.html")
def signup_form(form: SignupForm | None = None, referral: str = "") -> dict:
    # An inclusion tag does not see the page's context (nor its context
    # processors), so the trial length the button names is passed here.
    # `referral`: the token of the referral link the visitor came by (the
    # view has checked it), sent on with the form.
    trial_days = settings.REFERRAL_TRIAL_DAYS if referral else settings.TRIAL_DAYS
    return {"form": form or SignupForm(), "trial_days": trial_days, "referral": referral}
