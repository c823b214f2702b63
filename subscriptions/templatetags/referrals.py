"""The account page's referral panel: the reader's link, their choice, their referrals."""

from django import template
from django.conf import settings

from subscriptions import referrals
from subscriptions.models import Subscriber

register = template.Library()


@register.inclusion_tag("subscriptions/_referrals_panel.html")
def referral_panel(subscriber: Subscriber) -> dict:
    return {
        "referral_url": referrals.referral_url(subscriber),
        "show_first_name": referrals.shows_first_name(subscriber),
        "first_name": referrals.first_name(subscriber),
        "summary": referrals.summary(subscriber),
        "referral_trial_days": settings.REFERRAL_TRIAL_DAYS,
        "reward_months": settings.REFERRAL_REWARD_MONTHS,
        "months_per_year": settings.REFERRAL_MONTHS_PER_YEAR,
    }
