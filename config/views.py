import logging

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csp import csp_override
from kombu.exceptions import OperationalError

from config import outbox as outbox_store
from config.celery import app as celery_app

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 2


def _database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        logger.warning("healthz: database unavailable: %s", error)
        return "unavailable"
    return "ok"


def _broker_state() -> str:
    broker = celery_app.connection_for_write()
    errors: tuple[type[BaseException], ...] = (OperationalError, OSError, *broker.connection_errors)
    try:
        broker.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
    except errors as error:
        logger.warning("healthz: broker unavailable: %s", error)
        return "unavailable"
    finally:
        broker.release()
    return "ok"


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database_state(), "broker": _broker_state()}
    healthy = all(state == "ok" for state in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )


def _require_debug() -> None:
    # The outbox shows every email with its personal links: development only.
    if not settings.DEBUG:
        raise Http404("The outbox is only available with DJANGO_DEBUG on.")


def outbox(request: HttpRequest) -> HttpResponse:
    _require_debug()
    messages = [
        outbox_store.read_message(settings.OUTBOX_DIR, name)
        for name in outbox_store.list_messages(settings.OUTBOX_DIR)[:200]
    ]
    return render(request, "dev/outbox.html", {"messages": messages})


@csp_override(settings.EMAIL_PREVIEW_CSP)
def outbox_message(request: HttpRequest, name: str) -> HttpResponse:
    _require_debug()
    message = outbox_store.read_message(settings.OUTBOX_DIR, name)
    if message is None:
        raise Http404("No such message in the outbox.")
    return render(request, "dev/outbox_message.html", {"message": message})
