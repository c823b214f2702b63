"""The site's URLs as they are when EMAIL_ESP is set: with that provider's webhook only.

config.urls decides at import, under the test settings (no ESP); this
module builds the patterns when the resolver asks for them, after a test
has set EMAIL_ESP (and then ROOT_URLCONF, which clears the URL caches).
"""

from django.conf import settings
from django.urls import URLPattern, URLResolver

from config.urls import esp_tracking_urls, site_urlpatterns


def __getattr__(name: str) -> list[URLPattern | URLResolver]:
    if name == "urlpatterns":
        return [*site_urlpatterns, *esp_tracking_urls(settings.EMAIL_ESP)]
    raise AttributeError(name)
