"""sitemap.xml: the public pages search engines may index, on SITE_URL's address."""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.sitemaps import Sitemap
from django.db.models import QuerySet
from django.urls import reverse

from newsletter.models import Article, Edition, Section


class SiteSitemap(Sitemap):
    """Links on SITE_URL, not on whatever Host the request came with."""

    limit = 5000

    def get_domain(self, site: object = None) -> str:
        return urlsplit(settings.SITE_URL).netloc

    def get_protocol(self, protocol: str | None = None) -> str:
        return urlsplit(settings.SITE_URL).scheme


class PagesSitemap(SiteSitemap):
    changefreq = "daily"

    def items(self) -> list[str]:
        return ["home", "archive"]

    def location(self, item: str) -> str:
        return reverse(item)


class ArticlesSitemap(SiteSitemap):
    def items(self) -> QuerySet[Article]:
        return Article.objects.published().order_by("-published_at")

    def lastmod(self, item: Article) -> object:
        return item.updated_at


class SectionsSitemap(SiteSitemap):
    def items(self) -> QuerySet[Section]:
        return Section.objects.filter(articles__in=Article.objects.published()).distinct()


class EditionsSitemap(SiteSitemap):
    def items(self) -> QuerySet[Edition]:
        return Edition.objects.filter(status=Edition.Status.SENT).order_by("-date")


SITEMAPS = {
    "pages": PagesSitemap,
    "articles": ArticlesSitemap,
    "sections": SectionsSitemap,
    "editions": EditionsSitemap,
}
