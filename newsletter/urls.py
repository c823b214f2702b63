from django.urls import path

from newsletter import views

urlpatterns = [
    path("", views.home, name="home"),
    path("articles/<slug:slug>/", views.article, name="article"),
    path("archive/", views.archive, name="archive"),
    path("editions/<str:date>/", views.edition, name="edition"),
]
