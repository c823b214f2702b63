"""The site's URLs with every one of anymail's webhooks mounted, as they once were.

Only for the test that shows the tracking handler ignores another
provider's events even when that provider's view is reachable.
"""

from django.urls import include, path

from config.urls import site_urlpatterns

urlpatterns = [*site_urlpatterns, path("anymail/", include("anymail.urls"))]
