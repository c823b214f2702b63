"""The API against its own OpenAPI document, property-based (schemathesis, on Hypothesis).

For every operation, valid and invalid requests are generated from the
document and sent through the real WSGI application with a key holding
every scope: no answer may be a server error, and every answer must match
the document (its status code, content type and schema). Bounded: a fixed
number of examples per operation, derandomized, so the run takes well
under a minute and is the same on every run.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import outbound
from api.models import ApiKey
from api.tests.conftest import make_key
from newsletter.tests.factories import make_article, make_section
from subscriptions.tests.factories import make_subscriber

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def refuse_network(url: str) -> None:
    # Generated lead_image_urls name hosts all over the internet; the tests
    # have no network. Refused as a private address would be: a 400.
    raise outbound.RefusedAddress("No network in the tests.")


@pytest.fixture
def keep_the_test_connection():
    """The WSGI handler closes the database connection after each request (as in production);
    Django's test client keeps it, so that the test's transaction survives: so do we."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def operations():
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # an operation the document describes so badly it cannot be run
        found.append(result.ok())
    return found


def test_no_server_error_and_no_answer_outside_the_document(
    publisher, monkeypatch, keep_the_test_connection
):
    monkeypatch.setattr(outbound, "check_url", refuse_network)
    token = make_key(publisher, list(ApiKey.Scope.values), requests_per_minute=100_000)
    make_section(slug="world")
    make_article()
    for _ in range(3):
        make_subscriber()
    failures = []

    for operation in operations():

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            response = case.call(headers=headers)
            case.validate_response(response, checks=CHECKS, headers=headers)

        try:
            run()
        except (AssertionError, FailureGroup) as failure:
            failures.append(f"{operation.label}: {str(failure)[:2000]}")

    assert failures == [], "\n\n".join(failures)
