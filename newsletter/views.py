import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.core import signing
from django.core.paginator import Paginator
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import reverse
from django.utils.feedgenerator import Rss201rev2Feed, Stylesheet
from django.utils.html import escape, strip_tags
from django.views.decorators.http import require_GET

from newsletter import clicks, reading
from newsletter.models import Article, Edition, EditionArticle, Section
from newsletter.pagecache import cached_page
from subscriptions import ratelimit
from subscriptions.headers import no_referrer, personal
from subscriptions.models import Subscriber
from subscriptions.sessions import current_subscriber

LATEST_COUNT = 6
PAGE_SIZE = 20
FEED_SIZE = 20


# Reader-only pages and the editors' admin are not for search engines; the
# emailed links (sign-in, preferences, unsubscribe) name one reader each.
ROBOTS_DISALLOW = [
    "/admin/", "/account/", "/signin/", "/subscribe/", "/preferences/", "/unsubscribe/",
    "/outbox/", "/test-checkout/",
]  # fmt: skip


@require_GET
def robots_txt(request: HttpRequest) -> HttpResponse:
    lines = ["User-agent: *", *(f"Disallow: {path}" for path in ROBOTS_DISALLOW)]
    lines.append(f"Sitemap: {settings.SITE_URL}{reverse('sitemap')}")
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page links: the static file's address."""
    return redirect(static("favicon.ico"), permanent=True)


# The public pages are TemplateResponses: the page cache renders them with
# holes for the visitor's CSRF token and nonce (newsletter.pagecache).
@cached_page()
def home(request: HttpRequest) -> HttpResponse:
    articles = Article.objects.published().select_related("section")[:LATEST_COUNT]
    return TemplateResponse(request, "newsletter/home.html", {"articles": articles})


def article(request: HttpRequest, slug: str) -> HttpResponse:
    """An article; opened from a digest's story link, whole for the reader it names."""
    if reading.READING_PARAM in request.GET:
        return article_from_email(request, slug)
    return public_article(request, slug)


@cached_page()
def public_article(request: HttpRequest, slug: str) -> HttpResponse:
    return _article_page(request, slug, current_subscriber(request))


@no_referrer  # the token is in the URL: no Referer carries it to the page's requests
@personal
def article_from_email(request: HttpRequest, slug: str) -> HttpResponse:
    """A story link from a digest (newsletter.reading): the whole text if its reader is entitled.

    Never cached: the page is this reader's. It signs nobody in. A link
    expired, forged or of a reader no longer entitled shows the page as
    anyone sees it (the teaser and the offer), saying why.
    """
    signed_in = current_subscriber(request)
    reader = reading.reader_for(request.GET[reading.READING_PARAM])
    membership = getattr(reader, "membership", None)
    entitled = membership is not None and membership.is_entitled
    return _article_page(
        request,
        slug,
        reader if entitled else signed_in,
        link_refused=not entitled,
    )


def _article_page(
    request: HttpRequest, slug: str, subscriber: Subscriber | None, *, link_refused: bool = False
) -> HttpResponse:
    queryset = Article.objects.select_related("section", "author")
    if not request.user.is_staff:
        queryset = queryset.published()
    article = get_object_or_404(queryset, slug=slug)
    full_text = article.free_to_read or article.is_readable_by(request.user, subscriber)
    return TemplateResponse(
        request,
        "newsletter/article.html",
        {
            "article": article,
            "subscriber": subscriber,
            # Everyone else gets the teaser and the offer, never the body,
            # unless the editors made the article free to read.
            "full_text": full_text,
            "link_refused": link_refused and not full_text,
        },
    )


@cached_page(params=("page",))
def archive(request: HttpRequest) -> HttpResponse:
    # Each edition's articles as its email had them: the editors' order,
    # without those they left out (and without any unpublished since).
    carried = (
        EditionArticle.objects.filter(included=True, article__in=Article.objects.published())
        .select_related("article")
        .order_by("position", "pk")
    )
    editions = (
        Edition.objects.gone_out()
        .order_by("-date")
        .prefetch_related(
            Prefetch("editionarticle_set", queryset=carried, to_attr="carried_articles")
        )
    )
    page = Paginator(editions, PAGE_SIZE).get_page(request.GET.get("page"))
    sections = Section.objects.filter(articles__in=Article.objects.published()).distinct()
    return TemplateResponse(
        request, "newsletter/archive.html", {"page": page, "sections": sections}
    )


@cached_page(params=("page",))
def section(request: HttpRequest, slug: str) -> HttpResponse:
    section = get_object_or_404(Section, slug=slug)
    articles = Article.objects.published().filter(section=section).select_related("author")
    page = Paginator(articles, PAGE_SIZE).get_page(request.GET.get("page"))
    return TemplateResponse(request, "newsletter/section.html", {"section": section, "page": page})


@cached_page()
def edition(request: HttpRequest, date: str) -> HttpResponse:
    """The "view this email in your browser" page: what the digest shows."""
    try:
        day = datetime.date.fromisoformat(date)
    except ValueError:
        raise Http404("Not a date.") from None
    editions = Edition.objects.all()
    if not request.user.is_staff:
        # Drafts and held editions are the editors' business until they go out.
        editions = editions.gone_out()
    edition = get_object_or_404(editions, date=day)
    return TemplateResponse(
        request,
        "newsletter/edition.html",
        {"edition": edition, "articles": edition.ordered_articles()},
    )


def feed_text(value: str) -> str:
    """A short feed field (title, author, category) that readers may render as HTML.

    Tags are removed and any "<" left over is escaped, so nothing in it can
    become markup; "&" stays as typed, for readers that show it as text.
    """
    return strip_tags(value).replace("<", "&lt;")


class StyledRssFeed(Rss201rev2Feed):
    """RSS 2.0 served as application/xml: browsers apply the feed's XSL stylesheet to
    an XML type, and show application/rss+xml as raw text (Chromium). Feed readers
    read the document, whatever the type."""

    content_type = "application/xml; charset=utf-8"


class LatestArticlesFeed(Feed):
    """RSS of the latest articles: title, standfirst and link (the text is for members).

    Every field is text from the editors; feed readers render <description>
    as HTML (and often <title>), so each is escaped or stripped of tags here:
    the syndication framework only escapes it for XML.
    """

    def stylesheets(self) -> list[Stylesheet]:
        """Shown as a page, not raw XML, when a browser opens the feed (static/feed.xsl)."""
        return [Stylesheet(static("feed.xsl"), mimetype="text/xsl")]

    feed_type = StyledRssFeed

    def title(self) -> str:
        return settings.NEWSLETTER_NAME

    def description(self) -> str:
        return f"The latest articles from {settings.NEWSLETTER_NAME}."

    def link(self) -> str:
        return reverse("home")

    def items(self) -> QuerySet[Article]:
        return Article.objects.published().select_related("section", "author")[:FEED_SIZE]

    def item_title(self, item: Article) -> str:
        return feed_text(item.title)

    def item_description(self, item: Article) -> str:
        # RSS's description is HTML: the plain-text standfirst is escaped into it.
        return escape(item.dek or item.teaser)

    def item_pubdate(self, item: Article) -> datetime.datetime | None:
        return item.published_at

    def item_updateddate(self, item: Article) -> datetime.datetime:
        return item.updated_at

    def item_author_name(self, item: Article) -> str:
        return feed_text(item.byline_display)

    def item_categories(self, item: Article) -> list[str]:
        return [feed_text(item.section.name)] if item.section else []


def click(request: HttpRequest, value: str) -> HttpResponse:
    """A story's link in a digest (CLICK_TRACKING): count the click, go to the story.

    Only GET counts: link checkers and mail scanners often ask with HEAD.
    A link from an older digest still leads to its story with tracking off.
    """
    try:
        edition_id, article_id = clicks.unsign_link(value)
    except signing.BadSignature:
        raise Http404("Not a link of ours.") from None
    edition = get_object_or_404(Edition, pk=edition_id)
    article = get_object_or_404(Article.objects.published(), pk=article_id)
    if settings.CLICK_TRACKING and request.method == "GET":
        reader_id = clicks.reader_of(request.GET.get("r", ""))
        if clicks.first_in_window(
            edition, article, reader_id=reader_id, client=ratelimit.client_ip(request)
        ):
            clicks.do_record_click(edition, article, reader_id)
    url = article.get_absolute_url()
    token = request.GET.get(reading.READING_PARAM, "")
    if token:  # the reader's reading token, on to the story (checked there)
        url += "?" + urlencode({reading.READING_PARAM: token})
    return redirect(url)
