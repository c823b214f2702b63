import os

from django.core.wsgi import get_wsgi_application

from config.sentry import init_from_settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Before the application loads, so Sentry's Django integration sees it whole.
init_from_settings()
application = get_wsgi_application()
