"""WSGI app for the page load benchmark: the real site, plus one trivial view.

`manage.py bench_pages` serves this with gunicorn and loads the landing page
and the signup POST, and /bench/trivial/ as the baseline: a Django view that
does nothing, through the same middleware, on the same server. The URLs are
bench.settings' ROOT_URLCONF (bench.urls).
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

application = get_wsgi_application()
