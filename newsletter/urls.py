from django.urls import path

from newsletter import views

urlpatterns = [
    path("", views.home, name="home"),
    path("articles/<slug:slug>/", views.article, name="article"),
    path("archive/", views.archive, name="archive"),
    path("sections/<slug:slug>/", views.section, name="section"),
    path("editions/<str:date>/", views.edition, name="edition"),
    path("feed/", views.LatestArticlesFeed(), name="feed"),
]
