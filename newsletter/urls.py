from django.contrib.sitemaps.views import sitemap
from django.urls import path

from newsletter import views
from newsletter.pagecache import cached_page
from newsletter.sitemaps import SITEMAPS

urlpatterns = [
    path("", views.home, name="home"),
    path("articles/<slug:slug>/", views.article, name="article"),
    path("archive/", views.archive, name="archive"),
    path("sections/<slug:slug>/", views.section, name="section"),
    path("editions/<str:date>/", views.edition, name="edition"),
    path("r/<str:value>/", views.click, name="click"),
    path("feed/", cached_page()(views.LatestArticlesFeed()), name="feed"),
    path("sitemap.xml", sitemap, {"sitemaps": SITEMAPS}, name="sitemap"),
    path("robots.txt", views.robots_txt, name="robots"),
    path("favicon.ico", views.favicon, name="favicon"),
]
