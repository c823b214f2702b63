"""The site's URLs and the view of testing.sentry_app that fails."""

from django.urls import include, path

from testing.sentry_app import fail_with_secrets

urlpatterns = [
    path("test-failure/<str:token>/", fail_with_secrets),
    path("", include("config.urls")),
]
