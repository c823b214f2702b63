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
"""

from gunicorn.glogging import Logger

from config.logfilters import RedactSecrets

bind = "0.0.0.0:8000"
workers = 3
# A request stuck this long is ended (the proxy in compose times out too).
timeout = 60
accesslog = "-"


class RedactingLogger(Logger):
    """Gunicorn's logger, with RedactSecrets on its access and error logs.

    On the loggers themselves, not on one handler, so every output gunicorn
    is configured with (stdout, a file, syslog) gets the redacted line.
    """

    def setup(self, cfg: object) -> None:
        super().setup(cfg)
        for log in (self.access_log, self.error_log):
            if not any(isinstance(existing, RedactSecrets) for existing in log.filters):
                log.addFilter(RedactSecrets())


logger_class = RedactingLogger
