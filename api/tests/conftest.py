"""Fixtures for the API's tests: staff with permissions, keys, a client that sends them,
and a real HTTP server on loopback that records what webhooks deliver."""

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission, User
from django.test import Client

from api.models import ApiKey, WebhookEndpoint
from config.celery import app as celery_app

READERS_PERMS = ["subscriptions.view_subscriber", "subscriptions.change_subscriber"]
BILLING_PERMS = ["subscriptions.view_membership"]
ARTICLE_PERMS = ["newsletter.add_article", "newsletter.change_article", "newsletter.view_article"]


@pytest.fixture(autouse=True)
def api_test_settings(settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    # Each test's rate-limit counters are its own.
    default_cache = {**django_settings.CACHES["default"], "KEY_PREFIX": uuid.uuid4().hex}
    settings.CACHES = {**django_settings.CACHES, "default": default_cache}
    settings.API_ALLOW_PRIVATE_ADDRESSES = False
    return settings


@pytest.fixture
def eager(django_capture_on_commit_callbacks):
    """Tasks run where they are queued (after commit), so a test sees their effects."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_eager_propagates = False


def make_user(username: str, perms: list[str], **fields) -> User:
    user = User.objects.create_user(
        username=username, is_staff=True, email=f"{username}@example.com", **fields
    )
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.get(pk=user.pk)  # a fresh permission cache


def make_key(user: User, scopes: list[str], **fields) -> str:
    token = ApiKey.new_token()
    key = ApiKey(name=fields.pop("name", "Test"), owner=user, scopes=scopes, **fields)
    key.set_token(token)
    key.save()
    return token


class ApiClient:
    """Django's test client with the key in the Authorization header, JSON by default."""

    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.token = token

    def _headers(self, extra: dict) -> dict:
        headers = dict(extra)
        if self.token:
            headers.setdefault("authorization", f"Bearer {self.token}")
        return headers

    def get(self, path: str, params: dict | None = None, **headers):
        return self.client.get(path, params or {}, headers=self._headers(headers))

    def post(self, path: str, data=None, *, multipart: bool = False, **headers):
        if multipart:
            return self.client.post(path, data or {}, headers=self._headers(headers))
        body = "" if data is None else json.dumps(data)
        return self.client.post(
            path, body, content_type="application/json", headers=self._headers(headers)
        )

    def patch(self, path: str, data, **headers):
        return self.client.patch(
            path, json.dumps(data), content_type="application/json", headers=self._headers(headers)
        )

    def put(self, path: str, data, **headers):
        return self.client.put(
            path, json.dumps(data), content_type="application/json", headers=self._headers(headers)
        )


@pytest.fixture
def publisher(db):
    """Staff who may see and change readers, see billing and write articles."""
    return make_user("publisher", READERS_PERMS + BILLING_PERMS + ARTICLE_PERMS)


@pytest.fixture
def api(publisher):
    """A client holding a key with every scope."""
    return ApiClient(make_key(publisher, [scope for scope in ApiKey.Scope.values]))


def api_with(user: User, scopes: list[str], **fields) -> ApiClient:
    return ApiClient(make_key(user, scopes, **fields))


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook endpoint on loopback: records each POST, answers `status` (a list: in turn)."""

    url: str
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)

    def events(self) -> list[str]:
        return [item.event["type"] for item in self.received]


@pytest.fixture
def receiver(settings):
    settings.API_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on loopback
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if state.delay:
                time.sleep(state.delay)
            state.received.append(Received(dict(self.headers.items()), body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    yield state
    server.shutdown()
    server.server_close()


def make_endpoint(url: str, events: list[str], **fields) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        url=url, events=events, secret=WebhookEndpoint.new_secret(), **fields
    )
