from django.apps import apps
from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from config import views
from subscriptions import unsubscribe

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<str:name>/", views.outbox_message, name="outbox-message"),
    path("admin/", admin.site.urls),
    path("unsubscribe/<str:token>/", unsubscribe.unsubscribe, name="unsubscribe"),
    path("", include("newsletter.urls")),
    path("", include("subscriptions.urls")),
]

if settings.EMAIL_ESP:
    # The ESP's tracking webhooks (bounces, complaints), behind basic auth.
    urlpatterns.append(path("anymail/", include("anymail.urls")))

if apps.is_installed("demo_checkout"):
    # The keyless demo's local test checkout and portal (DEBUG on, no Stripe key).
    urlpatterns.append(path("", include("demo_checkout.urls")))

# Lead images and other uploads; static() adds nothing unless DEBUG is on.
# In production the web server in front serves MEDIA_ROOT (README.md).
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
