"""What search engines, link previews and browsers find: share tags, sitemap, robots, icons."""

import xml.etree.ElementTree as ET

import pytest

from newsletter.models import Article
from newsletter.tests.factories import make_article
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

SITE = "https://briefing.example.com"


@pytest.fixture(autouse=True)
def site_url(settings):
    settings.SITE_URL = SITE


def test_a_shared_article_link_has_its_title_standfirst_and_image(client):
    article = make_article(title="River treaty signed", dek="Six nations share the water.")

    page = client.get(article.get_absolute_url()).content.decode()

    assert '<meta property="og:type" content="article">' in page
    assert '<meta property="og:title" content="River treaty signed">' in page
    assert '<meta property="og:description" content="Six nations share the water.">' in page
    assert f'<meta property="og:url" content="{SITE}/articles/{article.slug}/">' in page
    assert f'<meta property="og:image" content="{SITE}/static/img/og-default.png">' in page
    assert '<meta name="twitter:card" content="summary_large_image">' in page


def test_every_page_names_its_icons_and_the_site(client):
    page = client.get("/").content.decode()

    assert 'rel="icon" href="/static/favicon.svg"' in page
    assert 'rel="apple-touch-icon"' in page
    assert '<meta property="og:site_name"' in page
    assert 'class="wordmark"' in page
    favicon = client.get("/favicon.ico")
    assert favicon.status_code == 301
    assert favicon["Location"] == "/static/favicon.ico"


def test_sitemap_lists_published_articles_on_the_site_s_address(client):
    live = make_article(title="Live")
    draft = make_article(title="Draft", status=Article.Status.DRAFT, slug="draft-one")

    response = client.get("/sitemap.xml")

    assert response.status_code == 200
    urls = [
        loc.text
        for loc in ET.fromstring(response.content).iter(  # noqa: S314 - our own XML
            "{http://www.sitemaps.org/schemas/sitemap/0.9}loc"
        )
    ]
    assert f"{SITE}/" in urls
    assert f"{SITE}/archive/" in urls
    assert f"{SITE}{live.get_absolute_url()}" in urls
    assert f"{SITE}{draft.get_absolute_url()}" not in urls


def test_robots_txt_keeps_crawlers_off_reader_pages_and_names_the_sitemap(client):
    response = client.get("/robots.txt")

    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "Disallow: /account/\n" in text
    assert "Disallow: /unsubscribe/\n" in text
    assert f"Sitemap: {SITE}/sitemap.xml" in text


def test_the_feed_names_its_xsl_stylesheet(client):
    make_article(title="Comet")

    body = client.get("/feed/").content.decode()

    assert '<?xml-stylesheet href="/static/feed.xsl" media="screen" type="text/xsl"?>' in body
