"""WSGI app for the page load benchmark: the real site, plus one trivial view.

`manage.py bench_pages` serves this with gunicorn and loads the landing page
and the signup POST, and /bench/trivial/ as the baseline: a Django view that
does nothing, through the same middleware, on the same server.
"""

import os

from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def trivial(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


application = get_wsgi_application()
# The benchmark's own URLconf (this module): set once, before any request.
from django.conf import settings  # noqa: E402

settings.ROOT_URLCONF = "newsletter.bench_urls"
