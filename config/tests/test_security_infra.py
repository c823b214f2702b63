"""Hostile review, infrastructure: request sizes, the proxy, client addresses, the feed."""

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from django.core.files.uploadhandler import FileUploadHandler

from newsletter.tests.factories import make_article, make_section
from testing.clock import MONDAY_BEFORE_SEND
from testing.proxy import CADDYFILE, CaddyUnavailable, caddyfile_for, ensure_caddy

pytestmark = pytest.mark.clock(MONDAY_BEFORE_SEND)


# --- The RSS feed ----------------------------------------------------------------------


@pytest.mark.faults
@pytest.mark.django_db
def test_the_feed_carries_no_markup_a_feed_reader_would_render(client):
    make_article(
        title='Markets <img src=x onerror="alert(1)"> & more',
        dek='<img src=x onerror="alert(document.cookie)">Rates rise',
        byline="<b onmouseover=alert(2)>Ada</b>",
        section=make_section(name="<svg onload=alert(3)>World"),
    )

    response = client.get("/feed/")

    item = ET.fromstring(response.content).find("channel/item")  # noqa: S314 - our own feed
    assert item is not None
    # Feed readers render <description> (and often <title>) as HTML: what the
    # XML parser hands them must hold no tag, only text.
    for tag in ["title", "description", "category", "{http://purl.org/dc/elements/1.1/}creator"]:
        for element in item.iter(tag):
            assert "<" not in (element.text or ""), (tag, element.text)
    assert "Rates rise" in (item.findtext("description") or "")
    assert "Markets" in (item.findtext("title") or "")


# --- The client's address behind the proxy -------------------------------------------------


def address(settings, remote: str, forwarded: str | None = None, **config) -> str:
    from django.test import RequestFactory

    from subscriptions import ratelimit

    settings.BEHIND_PROXY = True
    for name, value in config.items():
        setattr(settings, name, value)
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    request = RequestFactory().get("/", REMOTE_ADDR=remote, headers=headers)
    return ratelimit.client_ip(request)


@pytest.mark.faults
def test_a_forwarded_for_header_sent_straight_to_gunicorn_is_ignored(settings):
    # gunicorn reachable directly from the internet: its peer is the client.
    assert address(settings, "198.51.100.7", "203.0.113.99") == "198.51.100.7"
    assert address(settings, "198.51.100.7", "10.1.2.3, 203.0.113.99") == "198.51.100.7"


@pytest.mark.faults
def test_behind_the_proxy_only_the_address_it_saw_counts(settings):
    # The proxy (on compose's private network) appends the address it saw;
    # whatever the client wrote before it is not read.
    assert address(settings, "172.18.0.5", "203.0.113.9") == "203.0.113.9"
    assert address(settings, "172.18.0.5", "6.6.6.6, 1.2.3.4, 203.0.113.9") == "203.0.113.9"
    assert address(settings, "172.18.0.5") == "172.18.0.5"  # no header: the peer
    assert address(settings, "::ffff:172.18.0.5", "203.0.113.9") == "203.0.113.9"  # dual stack
    assert address(settings, "172.18.0.5", "not-an-address") == "172.18.0.5"


def test_two_proxy_hops_read_the_second_address_from_the_right(settings):
    forwarded = "6.6.6.6, 203.0.113.9, 10.0.0.2"
    assert address(settings, "10.0.0.3", forwarded, TRUSTED_PROXY_HOPS=2) == "203.0.113.9"


def test_a_listed_proxy_is_the_only_one_trusted(settings):
    import ipaddress

    listed = [ipaddress.ip_network("192.0.2.10/32")]
    assert address(settings, "192.0.2.10", "203.0.113.9", TRUSTED_PROXIES=listed) == "203.0.113.9"
    assert address(settings, "10.0.0.1", "203.0.113.9", TRUSTED_PROXIES=listed) == "10.0.0.1"


@pytest.mark.faults
def test_ipv6_clients_are_counted_by_their_64(settings):
    settings.BEHIND_PROXY = False
    one = address(settings, "2001:db8:1:2:aaaa::1")
    assert one == address(settings, "2001:db8:1:2:bbbb:cccc:dddd:2") == "2001:db8:1:2::/64"
    assert address(settings, "2001:db8:1:3::1") != one
    assert address(settings, "::ffff:203.0.113.9") == "203.0.113.9"
    assert address(settings, "203.0.113.9") == "203.0.113.9"


@pytest.mark.faults
@pytest.mark.django_db
def test_a_new_forwarded_for_per_request_does_not_escape_the_sign_in_limit(settings, client):
    import uuid

    from subscriptions import views

    settings.BEHIND_PROXY = True
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": uuid.uuid4().hex,
        }
    }
    statuses = []
    for number in range(views.SIGN_IN_LIMIT_PER_IP + 2):
        response = client.post(
            "/signin/",
            {"email": f"reader{number}@example.com"},
            REMOTE_ADDR="198.51.100.7",
            headers={"X-Forwarded-For": f"203.0.113.{number}"},
        )
        statuses.append(response.status_code)

    assert statuses[: views.SIGN_IN_LIMIT_PER_IP] == [200] * views.SIGN_IN_LIMIT_PER_IP
    assert statuses[-1] == 429


def test_trusted_proxy_settings_are_read_and_checked():
    from testing.commands import PRODUCTION, run_manage

    script = "from django.conf import settings as s; print(s.TRUSTED_PROXY_HOPS, s.TRUSTED_PROXIES)"
    result = run_manage(
        "shell", "-c", script, **PRODUCTION, DJANGO_BEHIND_PROXY="1",
        TRUSTED_PROXY_HOPS="2", TRUSTED_PROXIES="192.0.2.10, 2001:db8::/32",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 [IPv4Network('192.0.2.10/32'), IPv6Network('2001:db8::/32')]" in result.stdout
    bad = run_manage("check", **PRODUCTION, TRUSTED_PROXIES="proxy.internal")
    assert bad.returncode != 0
    assert "TRUSTED_PROXIES" in bad.stderr


# --- Request and upload sizes ----------------------------------------------------------------

RECEIVED: list[str] = []


class SpyUploadHandler(FileUploadHandler):
    """An upload handler that records every file part Django starts receiving."""

    def new_file(self, field_name: str, file_name: str, *args: object, **kwargs: object) -> None:
        RECEIVED.append(file_name)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


@pytest.fixture
def csrf_client(client):
    from django.test import Client

    csrf = Client(enforce_csrf_checks=True)
    csrf.cookies["csrftoken"] = "a" * 32
    return csrf


@pytest.mark.faults
def test_a_huge_body_is_refused_before_it_is_read(csrf_client):
    # What the attack sends: a multipart body announced at 300 MiB (the test
    # sends a few bytes of it; the announcement is what must be refused).
    response = csrf_client.post(
        "/signin/",
        data=b"--b\r\nContent-Disposition: form-data; name=x; filename=big\r\n\r\nxxxx",
        content_type="multipart/form-data; boundary=b",
        CONTENT_LENGTH=str(300 * 1024 * 1024),
    )
    assert response.status_code == 413


@pytest.mark.faults
@pytest.mark.django_db
def test_a_file_posted_anywhere_but_the_article_form_is_never_received(csrf_client, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.FILE_UPLOAD_HANDLERS = ["config.tests.test_security_infra.SpyUploadHandler"]
    RECEIVED.clear()
    upload = SimpleUploadedFile("payload.bin", b"x" * 200_000)

    for path in ["/signin/", "/subscribe/", "/stripe/webhook/", "/admin/login/"]:
        response = csrf_client.post(path, {"email": "a@example.com", "file": upload})
        upload.seek(0)
        assert response.status_code in (400, 403, 413), path

    assert RECEIVED == []


@pytest.mark.django_db
def test_the_article_form_still_takes_a_lead_image(admin_client, settings, tmp_path):
    from newsletter.tests.factories import article_form
    from newsletter.tests.test_article_editing import png

    settings.MEDIA_ROOT = tmp_path
    response = admin_client.post(
        "/admin/newsletter/article/add/",
        article_form(lead_image=png(), lead_image_alt="A red rectangle"),
    )
    assert response.status_code == 302


def image_file(image_format: str, size: tuple[int, int] = (40, 20), mode: str = "RGB"):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size, 1 if mode == "1" else "#8a1c1c").save(buffer, image_format)
    return SimpleUploadedFile(f"lead.{image_format.lower()}", buffer.getvalue())


@pytest.mark.faults
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (lambda: image_file("GIF"), "JPEG, PNG or WebP"),
        (lambda: image_file("BMP"), "JPEG, PNG or WebP"),
        # 42 megapixels of one colour: a few kilobytes of PNG (bilevel, to spare memory).
        (lambda: image_file("PNG", (7000, 6000), mode="1"), "pixels"),
    ],
)
def test_a_lead_image_of_another_type_or_too_many_pixels_is_refused(
    admin_client, settings, tmp_path, upload, message
):
    from newsletter.models import Article
    from newsletter.tests.factories import article_form

    settings.MEDIA_ROOT = tmp_path
    response = admin_client.post(
        "/admin/newsletter/article/add/",
        article_form(lead_image=upload(), lead_image_alt="A red rectangle"),
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Article.objects.exists()


def test_the_body_caps_are_advanced_settings_that_the_middleware_reads(csrf_client, settings):
    # Constants, in production as in the demo: not read from the environment.
    assert (
        settings.REQUEST_MAX_BYTES,
        settings.UPLOAD_REQUEST_MAX_BYTES,
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        settings.FILE_UPLOAD_MAX_MEMORY_SIZE,
    ) == (1024 * 1024, 6 * 1024 * 1024, 1024 * 1024, 1024 * 1024)
    body = "email=" + "a" * 29_994  # 30,000 bytes

    # Read on every request: a body one byte over the cap is refused unread.
    settings.REQUEST_MAX_BYTES = len(body) - 1
    refused = csrf_client.post("/signin/", body, content_type="application/x-www-form-urlencoded")
    assert refused.status_code == 413
    settings.REQUEST_MAX_BYTES = len(body)
    taken = csrf_client.post("/signin/", body, content_type="application/x-www-form-urlencoded")
    assert taken.status_code != 413


def test_the_variables_that_set_the_body_caps_are_refused_unless_they_say_the_same():
    from testing.commands import PRODUCTION, run_manage

    script = "from django.conf import settings; print(settings.REQUEST_MAX_BYTES)"
    changed = run_manage("shell", "-c", script, **PRODUCTION, REQUEST_MAX_BYTES="30000")
    assert changed.returncode != 0
    assert "REQUEST_MAX_BYTES is no longer read from the environment" in changed.stderr
    assert "REQUEST_MAX_BYTES = 1048576" in changed.stderr

    same = run_manage("shell", "-c", script, **PRODUCTION, REQUEST_MAX_BYTES="1048576")
    assert same.returncode == 0, same.stderr[-2000:]
    assert same.stdout.splitlines()[-1] == "1048576"
    assert "REQUEST_MAX_BYTES is no longer read from the environment" in same.stderr


# --- The proxy in front of gunicorn ------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def caddy_validate(text: str, folder: Path) -> subprocess.CompletedProcess:
    try:
        caddy = ensure_caddy()
    except CaddyUnavailable as reason:
        pytest.skip(str(reason))
    config = folder / "Caddyfile"
    config.write_text(caddyfile_for(caddy, text))
    return subprocess.run(
        [caddy, "validate", "--config", str(config), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_proxy_config_is_valid_and_caddy_would_refuse_a_broken_one(tmp_path):
    result = caddy_validate(CADDYFILE.read_text(), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid configuration" in result.stdout + result.stderr

    broken = CADDYFILE.read_text().replace("max_size 6MB", "max_size lots")
    assert caddy_validate(broken, tmp_path).returncode != 0


def test_the_proxy_caps_bodies_serves_files_and_is_the_only_way_in():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    proxy, web = compose["services"]["proxy"], compose["services"]["web"]
    caddyfile = CADDYFILE.read_text()

    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert "static:/srv/static:ro" in proxy["volumes"]
    assert "media:/srv/media:ro" in proxy["volumes"]
    assert "static:/app/staticfiles" in web["volumes"]
    assert "media:/app/var/media" in web["volumes"]
    assert "ports" not in web  # gunicorn only through the proxy
    assert compose["x-app"]["environment"]["DJANGO_BEHIND_PROXY"] == "${DJANGO_BEHIND_PROXY:-1}"
    assert "reverse_proxy web:8000" in caddyfile
    assert "max_size 6MB" in caddyfile  # UPLOAD_REQUEST_MAX_BYTES, the largest body we take
    assert "request_buffers 6MB" in caddyfile  # bodies read whole before gunicorn sees them
    for timeout in ["read_header", "read_body", "write", "idle"]:
        assert timeout in caddyfile
    assert "collectstatic" in " ".join(web["command"].split())
