"""URLs of the page load benchmark (bench.settings): the site's own, plus a trivial view."""

from django.urls import path

from bench.views import trivial
from config.urls import urlpatterns as site_urlpatterns

urlpatterns = [path("bench/trivial/", trivial), *site_urlpatterns]
