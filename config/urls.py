from django.contrib import admin
from django.urls import include, path

from config import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<str:name>/", views.outbox_message, name="outbox-message"),
    path("admin/", admin.site.urls),
    path("", include("newsletter.urls")),
    path("", include("subscriptions.urls")),
]
