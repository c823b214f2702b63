"""Every request has an id: on its response, on each line it logs, on its Sentry events.

A proxy or load balancer in front may already have named the request
(X-Request-ID): a sane id (letters, digits and `._:=+/-`, up to 128) is
kept, so its logs and ours say the same; anything else, or none, is
replaced by a new one. The id goes back in the response's X-Request-ID
(gunicorn's access line writes it too), onto every log record of the
request (config.logcontext) until the response is finished, and onto any
Sentry event as the request_id tag.
"""

import re
import uuid
from collections.abc import Callable

import sentry_sdk
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse

from config import logcontext

HEADER = "X-Request-ID"
SANE_ID = re.compile(r"[A-Za-z0-9._:=+/-]{1,128}")


def request_id_of(request: HttpRequest) -> str:
    """The id the request came with, if sane; else a new one."""
    incoming = request.headers.get(HEADER, "")
    return incoming if SANE_ID.fullmatch(incoming) else uuid.uuid4().hex


class RequestIdMiddleware:
    """First in MIDDLEWARE, so every response has the header, a refused one (413) too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_of(request)
        # Cleared when the response is finished, not when this returns: Django
        # logs a 4xx or 5xx ("Not Found: …") after the middleware, and
        # gunicorn's access line comes after that.
        logcontext.set_request_id(request_id)
        sentry_sdk.set_tag("request_id", request_id)
        response = self.get_response(request)
        response.headers[HEADER] = request_id
        return response


def forget_request_id(**kwargs: object) -> None:
    logcontext.set_request_id(None)


request_finished.connect(forget_request_id, dispatch_uid="config.requestid.forget_request_id")
