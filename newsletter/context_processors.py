from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict:
    return {
        "newsletter_name": settings.NEWSLETTER_NAME,
        "trial_days": settings.TRIAL_DAYS,
        "debug": settings.DEBUG,
        # The admin's zone (newsletter.middleware), named wherever it shows times.
        "newsroom_time_zone": settings.DIGEST_TIMEZONE,
    }
