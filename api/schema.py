"""The OpenAPI document's parts that drf-spectacular cannot see in the views.

The key's security scheme, and the problem details (RFC 9457) every
operation may answer: 400 with per-field errors, 401, 403, 404, 429.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from api.problems import CONTENT_TYPE

PROBLEM_STATUSES = {
    "400": "Not valid: `errors` names each field (a JSON pointer) with its message and code.",
    "401": "No key, or an unknown or revoked one.",
    "403": "The key's scopes, or its owner's permissions, do not allow this.",
    "404": "Not found.",
    "409": "Conflicts with the current state.",
    "413": "The request body is too large.",
    "415": "Unsupported media type.",
    "429": "Over the key's requests per minute: retry after the Retry-After seconds.",
}

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "pointer": {"type": "string"},
                    "detail": {"type": "string"},
                    "code": {"type": "string"},
                },
                "required": ["pointer", "detail", "code"],
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "An API key made in the admin."}


def add_problems(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular's postprocessing hook: the Problem schema, on every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    reference = {"$ref": "#/components/schemas/Problem"}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, description in PROBLEM_STATUSES.items():
                responses[code] = {
                    "description": description,
                    "content": {CONTENT_TYPE: {"schema": reference}},
                }
    return result
