"""The site's URLs as they are when EMAIL_ESP is set: with anymail's webhooks."""

from django.urls import include, path

from config.urls import urlpatterns as site_urlpatterns

urlpatterns = [*site_urlpatterns, path("anymail/", include("anymail.urls"))]
