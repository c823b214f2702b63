"""Bad input: RFC 9457 problem details, an entry per field, unknown fields refused, never a 500."""

import pytest

from subscriptions.models import Subscriber
from subscriptions.tests.factories import make_subscriber

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def test_an_unknown_field_is_refused_by_name_and_nothing_is_written(api):
    answer = api.post(
        "/api/v1/readers/", {"email": "a@example.com", "kind": "complimentary", "colour": "red"}
    )

    assert answer.status_code == 400
    assert answer["Content-Type"] == PROBLEM
    body = answer.json()
    assert body["type"] == "/api/v1/problems/invalid"
    assert body["status"] == 400
    assert body["errors"] == [{"pointer": "/colour", "detail": "Unknown field.", "code": "invalid"}]
    assert not Subscriber.objects.exists()


def test_billing_is_read_only(api):
    reader = make_subscriber()
    answer = api.patch(f"/api/v1/readers/{reader.pk}/", {"membership": {"status": "active"}})
    assert answer.status_code == 400
    assert answer.json()["errors"][0] == {
        "pointer": "/membership",
        "detail": "This field is read-only.",
        "code": "invalid",
    }


@pytest.mark.parametrize("zone", ["America", "Mars/Olympus", "../etc/passwd", ""])
def test_a_zone_that_is_none_is_a_400_never_a_500(api, zone):
    answer = api.get("/api/v1/readers/", {"time_zone": zone})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["pointer"] == "/time_zone"


def test_each_bad_field_has_its_own_entry(api):
    answer = api.post(
        "/api/v1/readers/",
        {"email": "not an address", "kind": "complimentary", "time_zone": "Mars/Olympus"},
    )
    pointers = {error["pointer"]: error["code"] for error in answer.json()["errors"]}
    assert pointers == {"/email": "invalid", "/time_zone": "invalid"}


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ("email=a@example.com", "text/plain", 415),
    ],
)
def test_malformed_bodies_are_problems(api, body, content_type, status):
    answer = api.client.post(
        "/api/v1/readers/",
        body,
        content_type=content_type,
        headers={"authorization": f"Bearer {api.token}"},
    )
    assert answer.status_code == status
    assert answer["Content-Type"] == PROBLEM
    assert answer.json()["status"] == status


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nothing-here/",
        "/api/v2/readers/",
        "/api/v1/readers/99999/",
        "/api/v1/editions/2026-02-30/",
    ],
)
def test_what_is_not_there_is_a_404_problem(api, path):
    answer = api.get(path)
    assert answer.status_code == 404
    assert answer["Content-Type"] == PROBLEM


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "garbage"},
        {"state": "sleeping"},
        {"page_size": "1000"},
        {"order": "name"},
        {"created_since": "yesterday"},
    ],
)
def test_bad_query_parameters_are_400s(api, params):
    answer = api.get("/api/v1/readers/", params)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["pointer"] == f"/{next(iter(params))}"


def test_a_post_to_an_address_that_is_not_there_is_a_404_problem_too(api):
    answer = api.post("/api/v1/articles/-3/schedule/", {"publish_at": "2030-01-01T00:00:00Z"})
    assert answer.status_code == 404
    assert answer["Content-Type"] == PROBLEM


@pytest.mark.parametrize("action", ["unsubscribe", "resubscribe"])
def test_an_action_without_fields_refuses_any_it_is_sent(api, action):
    reader = make_subscriber()
    answer = api.post(f"/api/v1/readers/{reader.pk}/{action}/", {"reason": "spam"})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["pointer"] == "/reason"
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.ACTIVE


def test_publish_refuses_fields_too(api):
    from newsletter.tests.factories import make_article

    article = make_article(status="draft")
    answer = api.post(f"/api/v1/articles/{article.pk}/publish/", {"at": "now"})
    assert answer.status_code == 400
    article.refresh_from_db()
    assert article.status == "draft"
