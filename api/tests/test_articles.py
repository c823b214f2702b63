"""/api/v1/articles/: drafts cleaned like the admin's, scheduling, publishing, lead images."""

import datetime
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from newsletter.models import Article
from newsletter.tests.factories import make_article, make_section

pytestmark = pytest.mark.django_db

ARTICLES = "/api/v1/articles/"


def png(width: int = 40, height: int = 30) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def image_server():
    """A web server on loopback serving /lead.png, /page.html and /large.png."""
    files = {
        "/lead.png": ("image/png", png()),
        "/page.html": ("text/html", b"<html>not an image</html>"),
        "/large.png": ("image/png", b"\x89PNG" + b"0" * (6 * 1024 * 1024)),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in files:
                self.send_response(404)
                self.end_headers()
                return
            content_type, body = files[self.path]
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_draft_is_cleaned_by_the_admins_rules(api, publisher):
    section = make_section(slug="world")
    answer = api.post(
        ARTICLES,
        {
            "title": "Rain in Spain",
            "dek": "Mainly on the plain.",
            "body": '<p onclick="steal()">Hello <script>alert(1)</script><a href="javascript:x">'
            "link</a></p>",
            "section": "world",
            "free_to_read": True,
        },
    )

    assert answer.status_code == 201
    body = answer.json()
    article = Article.objects.get(pk=body["id"])
    assert (article.status, article.slug, article.section, article.author) == (
        "draft", "rain-in-spain", section, publisher,
    )  # fmt: skip
    assert "script" not in article.body and "onclick" not in article.body
    assert "javascript" not in article.body
    assert body["body"] == article.body and body["url"] is None
    # A second with the same title gets a slug of its own.
    assert api.post(ARTICLES, {"title": "Rain in Spain", "body": "<p>x</p>"}).json()["slug"] == (
        "rain-in-spain-2"
    )


def test_an_empty_body_or_an_unknown_section_is_refused(api):
    answer = api.post(ARTICLES, {"title": "T", "body": "<script></script>", "section": "nope"})
    assert answer.status_code == 400
    assert {error["pointer"] for error in answer.json()["errors"]} == {"/section"}
    answer = api.post(ARTICLES, {"title": "T", "body": "<script>only</script>"})
    assert [error["pointer"] for error in answer.json()["errors"]] == ["/body"]
    assert not Article.objects.exists()


def test_update_schedule_publish_unpublish(api, clock):
    article = api.post(ARTICLES, {"title": "Draft", "body": "<p>Text</p>"}).json()
    path = f"{ARTICLES}{article['id']}/"

    assert api.patch(path, {"dek": "Now with a dek"}).json()["dek"] == "Now with a dek"
    past = (timezone.now() - datetime.timedelta(minutes=1)).isoformat()
    assert api.post(f"{path}schedule/", {"publish_at": past}).status_code == 400
    later = timezone.now() + datetime.timedelta(hours=2)
    scheduled = api.post(f"{path}schedule/", {"publish_at": later.isoformat()}).json()
    assert scheduled["status"] == "scheduled"
    assert Article.objects.get(pk=article["id"]).published_at == later

    published = api.post(f"{path}publish/").json()
    assert published["status"] == "published"
    assert published["url"] == "http://127.0.0.1:8000/articles/draft/"
    assert Article.objects.published().filter(pk=article["id"]).exists()

    assert api.post(f"{path}unpublish/").json()["status"] == "draft"
    assert not Article.objects.published().filter(pk=article["id"]).exists()


def test_the_list_filters(api, clock):
    world, home = make_section(slug="world"), make_section(slug="home")
    first = make_article(section=world)
    make_article(section=home)
    draft = make_article(section=world, status=Article.Status.DRAFT)

    def listed(**params):
        return [row["id"] for row in api.get(ARTICLES, params).json()["results"]]

    assert listed(section="world") == [first.pk, draft.pk]
    assert listed(status="draft") == [draft.pk]
    clock.shift(datetime.timedelta(hours=1))
    since = timezone.now().isoformat()
    api.patch(f"{ARTICLES}{first.pk}/", {"dek": "changed"})
    assert listed(updated_since=since) == [first.pk]


def test_a_lead_image_uploaded(api):
    upload = SimpleUploadedFile("photo.png", png(), content_type="image/png")
    answer = api.post(
        ARTICLES,
        {"title": "Pictured", "body": "<p>x</p>", "lead_image": upload, "lead_image_alt": "Teal"},
        multipart=True,
    )
    assert answer.status_code == 201, answer.json()
    article = Article.objects.get()
    assert (article.lead_image.name or "").endswith(".png")
    assert answer.json()["lead_image"].startswith("http://127.0.0.1:8000/media/articles/")
    article.lead_image.delete(save=False)


def test_an_upload_that_is_not_an_image_is_refused(api):
    upload = SimpleUploadedFile("photo.png", b"MZ not an image", content_type="image/png")
    answer = api.post(
        ARTICLES, {"title": "X", "body": "<p>x</p>", "lead_image": upload}, multipart=True
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["pointer"] == "/lead_image"


def test_a_lead_image_by_url(api, image_server, settings):
    settings.API_ALLOW_PRIVATE_ADDRESSES = True  # the test's server is on loopback
    answer = api.post(
        ARTICLES,
        {
            "title": "Fetched",
            "body": "<p>x</p>",
            "lead_image_url": f"{image_server}/lead.png",
            "lead_image_alt": "Teal",
        },
    )
    assert answer.status_code == 201, answer.json()
    article = Article.objects.get()
    with article.lead_image.open("rb") as stored:
        assert stored.read() == png()
    article.lead_image.delete(save=False)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/page.html", "Upload a valid image"),
        ("/large.png", "larger than 5 MB"),
        ("/missing.png", "answered 404"),
    ],
)
def test_a_url_that_is_no_image_is_refused(api, image_server, settings, path, message):
    settings.API_ALLOW_PRIVATE_ADDRESSES = True
    answer = api.post(
        ARTICLES, {"title": "X", "body": "<p>x</p>", "lead_image_url": f"{image_server}{path}"}
    )
    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert error["pointer"] == "/lead_image_url" and message in error["detail"]
    assert not Article.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1/lead.png",
        "http://localhost/lead.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/x.png",
        "http://[::1]/x.png",
        "http://[::ffff:127.0.0.1]/x.png",
    ],
)
def test_a_url_to_a_private_address_is_never_fetched(api, image_server, url):
    # image_server is up on loopback: were the request made, it would succeed.
    answer = api.post(ARTICLES, {"title": "X", "body": "<p>x</p>", "lead_image_url": url})
    assert answer.status_code == 400
    assert "non-public address" in answer.json()["errors"][0]["detail"]
