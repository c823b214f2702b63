from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("weekly-summary/", views.weekly_summary, name="weekly_summary"),
    path("<slug:slug>/", views.figure, name="figure"),
]
