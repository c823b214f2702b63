from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict:
    return {
        "newsletter_name": settings.NEWSLETTER_NAME,
        "trial_days": settings.TRIAL_DAYS,
        "debug": settings.DEBUG,
    }
