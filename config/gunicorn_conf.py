"""Gunicorn's settings for the web service (docker-compose.yml, the Dockerfile).

`gunicorn config.wsgi:application -c python:config.gunicorn_conf`. The
access log goes to standard output through config.logfilters.RedactSecrets,
which blanks the tokens of sign-in, signup and unsubscribe links and
Checkout session ids: a log line must not be a way to sign in as a reader.

Sync workers, each serving one request at a time, and only behind the proxy
(deploy/Caddyfile), which reads every request's headers and whole body
before passing it on: a worker is busy only while Django works, however
slowly a client sends (config/tests/test_slow_clients.py). They are kept
over threaded workers because a sync worker stuck past `timeout` is killed
and replaced, and a thread is not. Gunicorn must never be reachable but
through that proxy: straight to it, each slow client holds a worker, and a
client whose address is in TRUSTED_PROXIES may write its own
X-Forwarded-For and so slip past every rate limit.

Its logs take LOG_FORMAT's shape like the application's (config/logformat.py):
with `json`, each access and error line is a JSON object; the access line
carries the request's id (X-Request-ID, config/requestid.py) at its end,
and as `request_id` in JSON.
"""

import os
from typing import Any

from gunicorn.glogging import Logger

from config import logcontext
from config.logcontext import LogContext
from config.logfilters import RedactSecrets
from config.logformat import JsonFormatter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

bind = "0.0.0.0:8000"
workers = 3
# A request stuck this long is ended (the proxy in compose times out too).
timeout = 60
accesslog = "-"
# Gunicorn's default (Apache's combined format) and the request's id.
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %({x-request-id}o)s'
)


class RedactingLogger(Logger):
    """Gunicorn's logger, with RedactSecrets on its access and error logs.

    On the loggers themselves, so every output gunicorn is configured with
    (stdout, a file, syslog) gets the redacted line, and on each of their
    handlers as on settings.LOGGING's, with LogContext (and LOG_FORMAT's
    JSON formatter when it says json).
    """

    def setup(self, cfg: Any) -> None:
        from django.conf import settings

        super().setup(cfg)
        for log in (self.access_log, self.error_log):
            if not any(isinstance(existing, RedactSecrets) for existing in log.filters):
                log.addFilter(RedactSecrets())
            # Gunicorn's own (stdout, a file, syslog): the others are not its to change.
            for handler in (h for h in log.handlers if getattr(h, "_gunicorn", False)):
                for kind in (LogContext, RedactSecrets):
                    if not any(isinstance(existing, kind) for existing in handler.filters):
                        handler.addFilter(kind())
                if settings.LOG_FORMAT == "json":
                    handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """The access line, with the id the response went out with (RequestIdMiddleware's)."""
        sent = {name.lower(): value for name, value in resp.headers}.get("x-request-id")
        previous = logcontext.request_id()
        logcontext.set_request_id(sent or previous)
        try:
            super().access(resp, req, environ, request_time)
        finally:
            logcontext.set_request_id(previous)


logger_class = RedactingLogger
