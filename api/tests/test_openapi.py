"""The OpenAPI 3.1 document validates, and the reference page serves it under the site's CSP."""

import pytest
from django.test import Client
from openapi_spec_validator import OpenAPIV31SpecValidator

pytestmark = pytest.mark.django_db


def document() -> dict:
    answer = Client().get("/api/v1/openapi.json")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("application/vnd.oai.openapi+json") or answer[
        "Content-Type"
    ].startswith("application/json")
    return answer.json()


def test_the_document_is_valid_openapi_3_1():
    doc = document()
    assert doc["openapi"] == "3.1.0"
    errors = [error.message for error in OpenAPIV31SpecValidator(doc).iter_errors()]
    assert errors == []


def test_every_endpoint_is_in_the_document_with_its_problems():
    doc = document()
    assert set(doc["paths"]) == {
        "/api/v1/readers/", "/api/v1/readers/lookup/", "/api/v1/readers/{id}/",
        "/api/v1/readers/{id}/complimentary/", "/api/v1/readers/{id}/unsubscribe/",
        "/api/v1/readers/{id}/resubscribe/", "/api/v1/articles/", "/api/v1/articles/{id}/",
        "/api/v1/articles/{id}/schedule/", "/api/v1/articles/{id}/publish/",
        "/api/v1/articles/{id}/unpublish/", "/api/v1/editions/", "/api/v1/editions/next/",
        "/api/v1/editions/{date}/", "/api/v1/figures/",
    }  # fmt: skip
    for operations in doc["paths"].values():
        for operation in operations.values():
            assert operation["security"] == [{"apiKey": []}]
            assert "application/problem+json" in operation["responses"]["400"]["content"]
    reader = doc["components"]["schemas"]["Reader"]
    assert "membership" in reader["properties"] and "state" in reader["properties"]


def test_the_reference_page_runs_under_the_sites_content_security_policy():
    client = Client()
    page = client.get("/api/v1/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<script>" not in html  # no inline script: the CSP would block it
    policy = page["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "cdn" not in html
    script = client.get("/api/v1/?script=")
    assert script.status_code == 200
    assert b"/api/v1/openapi.json" in script.content
