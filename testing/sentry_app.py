"""What fails in the processes of the error-reporting tests (config/tests/test_errors.py).

A view, a task and a beat entry that each fail with a reader's address and
a token in their exception's message and in their local variables, as real
failures do (an address refused, a link that could not be sent), and a
task that succeeds. Run by gunicorn, a Celery worker and beat with
testing.sentry_settings.
"""

import datetime
import logging
from typing import Any

from celery import Task, shared_task
from celery.schedules import schedstate, schedule
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

logger = logging.getLogger("newsletter.sentry_test")


class FirstRunNow(schedule):
    """Every `run_every`, and once at once: beat would otherwise wait a whole interval.

    A minute, since Sentry monitors no shorter interval. An entry that has
    not run yet still has the `last_run_at` it was created with: due.
    """

    created: datetime.datetime | None = None

    def is_due(self, last_run_at: datetime.datetime) -> schedstate:
        if self.created is None:
            self.created = last_run_at
        if last_run_at == self.created:
            return schedstate(is_due=True, next=self.seconds)
        return super().is_due(last_run_at)


EVERY_MINUTE = datetime.timedelta(minutes=1)


@csrf_exempt
def fail_with_secrets(request: HttpRequest, token: str) -> HttpResponse:
    email = request.POST.get("email", "")
    link = request.build_absolute_uri()
    logger.warning("Checking %s for %s", link, email)
    raise RuntimeError(f"Could not sign {email} in with {token}")


@shared_task
def succeed() -> str:
    logger.info("The monitored task ran")
    return "done"


@shared_task
def task_fails_with_secrets(email: str, token: str) -> None:
    link = f"https://briefing.example/signin/{token}/"
    logger.warning("Sending %s to %s", link, email)
    raise RuntimeError(f"Could not send {link} to {email}")


class RefusedByBeat(Task):
    """A task beat cannot queue: the failure happens in beat itself."""

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:  # type: ignore[override]
        email, token = args
        raise RuntimeError(f"The broker refused the link {token} for {email}")


@shared_task(base=RefusedByBeat)
def refused_by_beat(email: str, token: str) -> None:
    return None
