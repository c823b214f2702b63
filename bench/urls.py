"""URLs of the page load benchmark: the site's own, plus a trivial view."""

from django.urls import path

from config.urls import urlpatterns as site_urlpatterns
from newsletter.bench_wsgi import trivial

urlpatterns = [path("bench/trivial/", trivial), *site_urlpatterns]
