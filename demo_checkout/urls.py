from django.urls import path

from demo_checkout import views

app_name = "demo_checkout"

urlpatterns = [
    path("test-checkout/portal/", views.portal, name="portal"),
    path("test-checkout/<str:session_id>/", views.checkout, name="checkout"),
]
