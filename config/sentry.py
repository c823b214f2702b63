"""Errors to Sentry, or to any service that speaks its protocol, when SENTRY_DSN is set.

The web (config/wsgi.py, and manage.py for runserver and the commands), the
Celery worker and beat (config/celery.py) each call `init_from_settings`.
Django's and Celery's integrations report unhandled exceptions in views and
tasks, the logging integration every record at ERROR or above, and beat's
schedule is monitored as cron check-ins: beat reports each run it starts,
the worker how it ended.

Nothing names a reader: `send_default_pii` is off (no user, no IP address,
no cookies), request bodies are never read, and before any event,
transaction or breadcrumb leaves, every string in it (an exception's
message, local variables, a task's arguments, the URL, log messages) goes
through config.logfilters.redact, which writes email addresses as
[address] and the tokens of the reader's links as [redacted]; values of
keys that name secrets or addresses (DENYLIST) are replaced whole by
Sentry's own scrubber.
"""

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber
from sentry_sdk.types import Breadcrumb, BreadcrumbHint, Event, Hint

from config.logfilters import redact_data

# Names of request headers, local variables and extra fields whose values
# are never sent (Sentry writes "[Filtered]"), besides Sentry's own list
# (passwords, tokens, sessions, cookies, authorization).
DENYLIST = [
    *DEFAULT_DENYLIST,
    "email",
    "emails",
    "old_email",
    "new_email",
    "address",
    "addresses",
    "recipient",
    "recipients",
    "rcpt_tos",
    "mail_from",
    "reply_to",
    "signature",
    "stripe_signature",
    "session_id",
    "x_request_signature",
]
# Request headers dropped from events (lower case, "-" as "_").
SECRET_HEADERS = {
    "cookie",
    "authorization",
    "proxy_authorization",
    "x_csrftoken",
    "stripe_signature",
}


def scrub_event(event: Event, hint: Hint) -> Event:
    """before_send and before_send_transaction: the event without addresses, tokens or bodies."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)  # a form's fields: a reader's address, a token
        request.pop("cookies", None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                name: value
                for name, value in headers.items()
                if name.lower().replace("-", "_") not in SECRET_HEADERS
            }
    scrubbed: Event = redact_data(event)
    return scrubbed


def scrub_breadcrumb(crumb: Breadcrumb, hint: BreadcrumbHint) -> Breadcrumb:
    """before_breadcrumb: a log message, a query or an HTTP call, without addresses or tokens."""
    scrubbed: Breadcrumb = redact_data(crumb)
    return scrubbed


def init(dsn: str, *, traces_sample_rate: float) -> None:
    # The environment the events are filed under is sentry-sdk's own
    # SENTRY_ENVIRONMENT variable ("production" when unset).
    sentry_sdk.init(
        dsn=dsn,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        max_request_body_size="never",
        integrations=[DjangoIntegration(), CeleryIntegration(monitor_beat_tasks=True)],
        event_scrubber=EventScrubber(denylist=DENYLIST, recursive=True),
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
    )


def init_from_settings() -> bool:
    """Start reporting if SENTRY_DSN is set and this process does not report yet."""
    from django.conf import settings

    if not settings.SENTRY_DSN or sentry_sdk.get_client().is_active():
        return False
    init(
        settings.SENTRY_DSN,
        traces_sample_rate=settings.SENTRY_TRACES_SAMPLE_RATE,
    )
    return True
