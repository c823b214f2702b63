"""The Content Security Policy: strict everywhere, and the pages still work under it.

"Work" is checked on the HTML the browser would get: every script and
stylesheet is either from this site or carries the request's nonce, so the
policy in the header lets it run. (A real browser check of the admin's
rich-text editor is described in docs/reliability.md.)
"""

import base64
import hashlib
import re
from html.parser import HTMLParser

import django_prose_editor
import pytest
from django.conf import settings

from newsletter import schedule
from newsletter.tests.factories import built_edition, make_article
from testing.commands import PRODUCTION, run_manage


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = (part.strip().split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in directives}


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.inline_styles = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "style" in attrs:
            self.inline_styles += 1
        if tag in ("script", "link", "style"):
            self.tags.append((tag, attrs))


def tags_of(response) -> Tags:
    parser = Tags()
    parser.feed(response.content.decode())
    return parser


def assert_runs_under_policy(response) -> None:
    """Each script and style of the page is allowed by the page's own policy."""
    csp = policy(response)
    nonce = re.search(r"'nonce-([^']+)'", " ".join(csp["script-src"]))
    parsed = tags_of(response)
    for tag, attrs in parsed.tags:
        if tag == "link" and attrs.get("rel") != "stylesheet":
            continue
        source = attrs.get("src") or attrs.get("href")
        if source:
            # 'self': a path on this site, never another origin.
            assert source.startswith("/") and not source.startswith("//"), (tag, attrs)
        else:
            assert nonce and attrs.get("nonce") == nonce.group(1), (tag, attrs)
    if "'unsafe-inline'" not in csp["style-src"]:
        assert parsed.inline_styles == 0


def test_the_site_policy_is_strict(client, db):
    response = client.get("/")

    csp = policy(response)
    assert csp["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp["script-src"]
    assert "'unsafe-eval'" not in csp["script-src"]
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    # The signup form leads to Stripe Checkout after its POST.
    assert "https://checkout.stripe.com" in csp["form-action"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/signin/", "/archive/", "/subscribe/success/?x=1"])
def test_reader_pages_load_only_their_own_scripts(client, url):
    make_article(title="Under the policy")
    response = client.get(url, follow=True)

    assert_runs_under_policy(response)
    if url == "/":
        scripts = [attrs for tag, attrs in tags_of(response).tags if tag == "script"]
        assert [s["src"] for s in scripts] == ["/static/js/signup.js"]


@pytest.mark.django_db
def test_the_admin_and_its_rich_text_editor_run_under_the_policy(admin_client):
    make_article()
    response = admin_client.get("/admin/newsletter/article/add/")

    assert_runs_under_policy(response)
    tags = tags_of(response).tags
    # The editor's import map is inline: it is the tag the nonce is for.
    importmaps = [attrs for tag, attrs in tags if attrs.get("type") == "importmap"]
    assert len(importmaps) == 1 and importmaps[0]["nonce"]
    modules = [attrs["src"] for tag, attrs in tags if attrs.get("type") == "module"]
    assert "/static/django_prose_editor/editor.js" in modules
    for url in ["/admin/", "/admin/newsletter/article/", "/admin/newsletter/article/1/change/"]:
        assert_runs_under_policy(admin_client.get(url))


@pytest.mark.django_db
def test_the_email_preview_allows_inline_styles_and_nothing_more(admin_client):
    make_article()
    edition = built_edition(schedule.next_edition_date())

    response = admin_client.get(f"/admin/newsletter/edition/{edition.pk}/desk/")

    assert response.status_code == 200
    csp = policy(response)
    assert csp["style-src"] == ["'self'", "'unsafe-inline'"]
    assert "'unsafe-inline'" not in csp["script-src"]
    assert "sandbox srcdoc=" in response.content.decode()
    # Everywhere else the strict policy holds.
    assert "'unsafe-inline'" not in policy(admin_client.get("/admin/"))["style-src"]


def test_the_editors_injected_base_style_is_allowed_by_its_hash():
    """Tiptap adds its base CSS as a <style> without a nonce; the policy allows its hash."""
    editor = django_prose_editor.__path__[0] + "/static/django_prose_editor/editor.js"
    with open(editor, encoding="utf-8") as source:
        styles = re.findall(r"`(\.ProseMirror \{[^`]*)`", source.read())
    assert len(styles) == 1, "the editor's injected base CSS was not found"
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" == settings.TIPTAP_BASE_CSS_HASH
    assert settings.TIPTAP_BASE_CSS_HASH in settings.SECURE_CSP["style-src"]


def test_production_settings_secure_cookies_hsts_and_the_policy():
    shown = (
        "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_SSL_REDIRECT, bool(s.SECURE_CSP), "
        "'django.middleware.csp.ContentSecurityPolicyMiddleware' in s.MIDDLEWARE)"
    )
    result = run_manage("shell", "-c", shown, **PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == [
        "True",
        "True",
        "True",
        "31536000",
        "True",
        "True",
        "True",
    ]
