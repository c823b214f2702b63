from django.apps import apps
from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.utils.module_loading import import_string
from django.views.generic import RedirectView

from config import metrics, views
from config.admin_login import RateLimitedAdminLoginForm
from subscriptions import unsubscribe
from subscriptions import views as subscription_views

# The one tracking webhook (bounces, complaints) of each provider EMAIL_ESP may
# name. Only the configured provider's is mounted: each anymail view checks
# its own provider's proof (Mailgun's signature), but all share the basic-auth
# password, so mounting all of anymail.urls let anyone holding it post, say,
# SendGrid's format and skip Mailgun's signature check.
ESP_TRACKING_VIEWS = {
    "amazon_ses": "anymail.webhooks.amazon_ses.AmazonSESTrackingWebhookView",
    "mailgun": "anymail.webhooks.mailgun.MailgunTrackingWebhookView",
    "postmark": "anymail.webhooks.postmark.PostmarkTrackingWebhookView",
    "sendgrid": "anymail.webhooks.sendgrid.SendGridTrackingWebhookView",
}


def esp_tracking_urls(esp: str | None) -> list[URLPattern | URLResolver]:
    """The tracking webhook of `esp` alone, at /anymail/<esp>/tracking/; none without one."""
    if not esp:
        return []
    view = import_string(ESP_TRACKING_VIEWS[esp])
    return [path(f"anymail/{esp}/tracking/", view.as_view(), name=f"{esp}_tracking_webhook")]


# Password guessing at /admin/login/ is limited per address and per username.
admin.site.login_form = RateLimitedAdminLoginForm

# The site without any ESP webhook (test URL modules add the one they configure).
site_urlpatterns: list[URLPattern | URLResolver] = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<str:name>/", views.outbox_message, name="outbox-message"),
    # Before the admin's own URLs, which would read "dashboard" as an app label.
    path("admin/dashboard/", include("dashboard.urls")),
    # The send's models moved from the newsletter app to the delivery app:
    # staff's bookmarks of their old admin pages lead to the new ones.
    re_path(
        r"^admin/newsletter/(?P<model>delivery|sendslot|bounceevent|sendalert|sendpause)/(?P<rest>.*)$",
        RedirectView.as_view(url="/admin/delivery/%(model)s/%(rest)s", query_string=True),
    ),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("unsubscribe/<str:token>/", unsubscribe.unsubscribe, name="unsubscribe"),
    path("preferences/<str:token>/", subscription_views.preferences, name="preferences"),
    path("", include("newsletter.urls")),
    path("", include("subscriptions.urls")),
]

if apps.is_installed("demo_checkout"):
    # The keyless demo's local test checkout and portal (DEBUG on, no Stripe key).
    site_urlpatterns.append(path("", include("demo_checkout.urls")))

# Lead images and other uploads; static() adds nothing unless DEBUG is on.
# In production the web server in front serves MEDIA_ROOT (README.md).
site_urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

urlpatterns = [*site_urlpatterns, *esp_tracking_urls(settings.EMAIL_ESP)]
