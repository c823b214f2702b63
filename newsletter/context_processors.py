from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict:
    return {
        "newsletter_name": settings.NEWSLETTER_NAME,
        "trial_days": settings.TRIAL_DAYS,
        "debug": settings.DEBUG,
        # Absolute links in the pages' share tags (Open Graph), as in emails.
        "site_url": settings.SITE_URL,
        # The admin's zone (newsletter.middleware), named wherever it shows times.
        "newsroom_time_zone": settings.DIGEST_TIMEZONE,
        # The preferences page tells readers their clicks are recorded.
        "reader_clicks_tracked": settings.CLICK_TRACKING and settings.TRACK_READER_CLICKS,
    }
