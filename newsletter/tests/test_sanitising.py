"""Editor HTML never carries script or event handlers to the site or the email."""

import pytest
from django.template import Context, Template

from newsletter import desk
from newsletter.models import Article
from newsletter.tests.factories import article_form, built_edition, make_article
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

HOSTILE = [
    "<script>alert(1)</script>",
    '<img src="x.png" onerror="alert(1)">',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="JaVaScRiPt:alert(1)">mixed case</a>',
    '<a href="&#106;avascript:alert(1)">entity</a>',
    '<p style="width: expression(alert(1))">css expression</p>',
    '<p style="background:url(javascript:alert(1))">css url</p>',
    "<style>body { behavior: url(x.htc) }</style>",
    '<svg onload="alert(1)"><circle r="1"/></svg>',
    '<iframe src="https://evil.example/"></iframe>',
    '<p onmouseover="alert(1)">hover</p>',
    '<form action="https://evil.example/"><input name="card"></form>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data</a>',
    '<object data="x.swf"></object><embed src="x.swf">',
    '<math><mtext><table><mglyph><style><img src=x onerror="alert(1)">',
]
FORBIDDEN = [
    "<script",
    "onerror",
    "onload",
    "onmouseover",
    "javascript:",
    "expression(",
    "style",
    "<iframe",
    "<svg",
    "<form",
    "<input",
    "data:text",
    "<object",
    "<embed",
]
BODY = "<p>Safe words.</p>" + "".join(HOSTILE)


def assert_clean(html: str) -> None:
    lowered = html.lower()
    for needle in FORBIDDEN:
        assert needle not in lowered, f"{needle!r} in {html!r}"


def test_hostile_bodies_are_cleaned_on_save():
    article = make_article(body=BODY)
    article.refresh_from_db()

    assert_clean(article.body)
    assert "<p>Safe words.</p>" in article.body
    assert 'rel="noopener noreferrer"' in article.body


def test_hostile_bodies_are_cleaned_by_the_admin_form(admin_client):
    response = admin_client.post(
        "/admin/newsletter/article/add/", article_form(body=BODY, status="published")
    )

    assert response.status_code == 302
    assert_clean(Article.objects.get().body)


def test_hostile_bodies_written_around_the_model_are_cleaned_on_render(admin_client, client):
    from subscriptions.sessions import SESSION_KEY
    from subscriptions.tests.factories import make_subscriber

    article = make_article()
    # A raw UPDATE (a restored backup, an import) skips Article.save().
    Article.objects.filter(pk=article.pk).update(body=BODY)

    pages = [admin_client.get(article.get_absolute_url()).content.decode()]
    session = client.session
    session[SESSION_KEY] = make_subscriber().pk
    session.save()
    pages.append(client.get(article.get_absolute_url()).content.decode())
    for page in pages:
        body = page[page.index('<div class="body">') : page.index("</article>")]
        assert "Safe words." in body
        assert_clean(body)


def test_the_template_filter_cleans():
    rendered = Template("{% load newsletter_html %}{{ body|sanitized }}").render(
        Context({"body": BODY})
    )
    assert_clean(rendered)
    assert "<p>Safe words.</p>" in rendered


def test_the_teaser_and_the_email_carry_text_only(client):
    import datetime

    article = make_article(
        title='<img src=x onerror="alert(1)">Title',
        dek='<script>alert("dek")</script>',
        body="<p>Opening <script>alert(1)</script></p>",
    )
    edition = built_edition(datetime.date(2026, 11, 30))
    edition.curate({}, '<a href="javascript:alert(1)" onclick="x()">note</a>')

    teaser_page = client.get(article.get_absolute_url()).content.decode()
    assert "<script>alert" not in teaser_page
    assert "<img src=x" not in teaser_page
    message = desk.preview(edition, desk.SampleReader.PAYING)
    email_html = message.html
    assert "<script>" not in email_html
    assert "<img src=x" not in email_html
    assert '<a href="javascript:' not in email_html
    assert "&lt;script&gt;" in email_html  # shown as text, not run
