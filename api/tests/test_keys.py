"""API keys: made in the admin, shown once, stored hashed, scoped, revocable, rate limited."""

import hashlib

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from api.models import ApiKey, ApiWrite
from api.tests.conftest import (
    ARTICLE_PERMS,
    READERS_PERMS,
    ApiClient,
    api_with,
    make_key,
    make_user,
)
from newsletter.tests.factories import make_staff
from subscriptions.tests.factories import make_subscriber

pytestmark = pytest.mark.django_db

READERS = "/api/v1/readers/"


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_key_made_in_the_admin_is_shown_once_and_stored_only_hashed(publisher):
    client = admin_client(publisher)
    publisher.user_permissions.add(*Permission.objects.filter(codename__endswith="_apikey"))

    response = client.post(
        "/admin/api/apikey/add/",
        {"name": "CRM sync", "scopes": ["read", "write:readers"], "requests_per_minute": 60},
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = ApiKey.objects.get()
    token = response.context["secret"]
    assert token.startswith("mbk_") and token.encode() in response.content
    assert key.hashed == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(list(ApiKey.objects.values()))
    assert (key.name, key.owner, key.scopes) == ("CRM sync", publisher, ["read", "write:readers"])
    # Never again: not in the list, not on the key's page.
    assert token.encode() not in client.get("/admin/api/apikey/").content
    assert token.encode() not in client.get(f"/admin/api/apikey/{key.pk}/change/").content
    # And it works.
    assert ApiClient(token).get(READERS).status_code == 200


def test_editors_may_hold_article_keys_only():
    editor = make_staff("editor")
    client = admin_client(editor)

    refused = client.post(
        "/admin/api/apikey/add/", {"name": "Sneaky", "scopes": ["read"], "requests_per_minute": 60}
    )
    assert refused.status_code == 200 and "lacks its permission" in refused.content.decode()
    assert not ApiKey.objects.exists()

    made = client.post(
        "/admin/api/apikey/add/",
        {"name": "CMS", "scopes": ["write:articles"], "requests_per_minute": 60},
    )
    assert made.status_code == 200
    assert ApiKey.objects.get().scopes == ["write:articles"]


def test_a_key_never_reaches_further_than_its_owner_now_may(publisher):
    make_subscriber()
    client = api_with(publisher, ["read"])
    assert client.get(READERS).status_code == 200

    publisher.user_permissions.remove(
        Permission.objects.get(codename="view_subscriber", content_type__app_label="subscriptions")
    )

    answer = client.get(READERS)
    assert answer.status_code == 403
    assert answer["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "Authentication credentials were not provided."),
        ("Bearer mbk_not-a-key", "This key is unknown or revoked."),
        ("Token abc", "Send the key as “Authorization: Bearer <key>”."),
    ],
)
def test_no_or_a_wrong_key_is_refused(publisher, header, detail):
    headers = {"authorization": header} if header else {}
    answer = ApiClient(None).get(READERS, **headers)
    assert answer.status_code == 401
    assert answer.json()["detail"] == detail
    assert answer["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_revoked_key_is_refused_at_once(publisher):
    client = admin_client(make_user("boss", READERS_PERMS, is_superuser=True))
    token = make_key(publisher, ["read"])
    key = ApiKey.objects.get()

    client.post("/admin/api/apikey/", {"action": "revoke", "_selected_action": [key.pk]})

    key.refresh_from_db()
    assert key.revoked_at is not None
    assert ApiClient(token).get(READERS).status_code == 401


def test_last_use_is_recorded(publisher, clock):
    token = make_key(publisher, ["read"])
    ApiClient(token).get(READERS)
    assert ApiKey.objects.get().last_used_at is not None


def test_each_key_has_its_own_rate(publisher):
    slow = api_with(publisher, ["read"], requests_per_minute=2)
    other = api_with(publisher, ["read"], requests_per_minute=2)

    answers = [slow.get(READERS).status_code for _ in range(3)]

    assert answers == [200, 200, 429]
    limited = slow.get(READERS)
    assert limited["Content-Type"] == "application/problem+json"
    assert int(limited["Retry-After"]) >= 1
    assert other.get(READERS).status_code == 200


def test_every_write_is_recorded_with_its_key(publisher):
    token = make_key(publisher, ["write:readers", "read"], name="CRM")
    client = ApiClient(token)

    client.post(READERS, {"email": "new@example.com", "kind": "complimentary"})
    client.post(READERS, {"email": "bad", "kind": "complimentary"})
    client.get(READERS)

    writes = list(
        ApiWrite.objects.order_by("pk").values_list("key__name", "method", "path", "status_code")
    )
    assert writes == [("CRM", "POST", READERS, 201), ("CRM", "POST", READERS, 400)]


@pytest.mark.parametrize(
    ("scopes", "method", "path", "expected"),
    [
        (["read"], "post", READERS, 403),
        (["write:articles"], "get", READERS, 403),
        (["write:articles"], "get", "/api/v1/figures/", 403),
        (["read"], "post", "/api/v1/articles/", 403),
        (["write:articles"], "get", "/api/v1/articles/", 200),
        (["write:readers"], "get", READERS, 200),
    ],
)
def test_scopes(publisher, scopes, method, path, expected):
    client = api_with(publisher, scopes)
    answer = client.get(path) if method == "get" else client.post(path, {})
    assert answer.status_code == expected


def test_an_article_key_of_an_editor_writes_articles_but_reads_no_reader():
    editor = make_user("ed", ARTICLE_PERMS)
    client = api_with(editor, ["write:articles"])
    make_subscriber()

    assert client.get(READERS).status_code == 403
    made = client.post("/api/v1/articles/", {"title": "Hello", "body": "<p>World</p>"})
    assert made.status_code == 201
