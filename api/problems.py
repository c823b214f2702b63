"""Errors as RFC 9457 problem details: application/problem+json, one entry per bad field.

Every error the API answers has this shape; a client tells them apart by
`type` (a stable URI under /api/v1/problems/) and finds what to fix in
`errors`: each with the field's JSON pointer, a message and a code.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

PROBLEM_TYPES = {
    400: ("invalid", "Your request is not valid."),
    401: ("unauthenticated", "No valid API key."),
    403: ("forbidden", "This key may not do this."),
    404: ("not-found", "Not found."),
    405: ("method-not-allowed", "Method not allowed."),
    406: ("not-acceptable", "Not acceptable."),
    409: ("conflict", "This conflicts with the current state."),
    413: ("too-large", "The request is too large."),
    415: ("unsupported-media-type", "Unsupported media type."),
    429: ("rate-limited", "Too many requests for this key."),
}
CONTENT_TYPE = "application/problem+json"


def problem_type(status_code: int) -> str:
    slug = PROBLEM_TYPES.get(status_code, ("error", ""))[0]
    return f"/api/v1/problems/{slug}"


def problem(status_code: int, detail: str, errors: list[dict[str, str]] | None = None) -> dict:
    body: dict[str, Any] = {
        "type": problem_type(status_code),
        "title": PROBLEM_TYPES.get(status_code, ("", "Error"))[1],
        "status": status_code,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def field_errors(detail: Any, pointer: str = "") -> list[dict[str, str]]:
    """DRF's nested error detail as a flat list: {"pointer": "/name", "detail", "code"}."""
    if isinstance(detail, dict):
        found = []
        for name, value in detail.items():
            child = pointer if name == "non_field_errors" else f"{pointer}/{name}"
            found += field_errors(value, child)
        return found
    if isinstance(detail, list):
        found = []
        for index, value in enumerate(detail):
            nested = isinstance(value, dict | list)
            found += field_errors(value, f"{pointer}/{index}" if nested else pointer)
        return found
    return [
        {
            "pointer": pointer or "/",
            "detail": str(detail),
            "code": getattr(detail, "code", "invalid") or "invalid",
        }
    ]


def django_validation_error(error: DjangoValidationError) -> exceptions.ValidationError:
    """A model's ValidationError (Article.clean, a unique constraint) as DRF's."""
    if hasattr(error, "error_dict"):
        return exceptions.ValidationError(
            {
                ("non_field_errors" if field == "__all__" else field): [
                    message for item in items for message in item.messages
                ]
                for field, items in error.error_dict.items()
            }
        )
    return exceptions.ValidationError(error.messages)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = django_validation_error(exc)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        body = problem(
            status.HTTP_400_BAD_REQUEST,
            "Some fields are not valid: see errors.",
            field_errors(exc.detail),
        )
    else:
        detail = exc.detail
        body = problem(response.status_code, str(detail))
    response.data = body
    response.content_type = CONTENT_TYPE
    return response


@csrf_exempt  # it changes nothing, and a POST to it deserves the 404 too, not CSRF's 403 page
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any other address under /api/: a problem, not the site's HTML page."""
    return JsonResponse(
        problem(404, "There is no such API endpoint."), status=404, content_type=CONTENT_TYPE
    )
