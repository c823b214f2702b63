"""Log a reader's address and a token through every logger, as the processes configure them.

`python -m testing.log_every_logger EMAIL TOKEN`, for config/tests/test_logs.py,
in a process of its own with the LOG_FORMAT the test gives: Django's logging
(settings.LOGGING), then Celery's, as `celery worker` and `celery beat` set
it up (config/celery.py answers setup_logging), then gunicorn's loggers as
config/gunicorn_conf.py sets them up. Each line's message says which logger
wrote it ("through NAME:"), so the test can tell that every one was written.
The last line on standard output, after REPORT, lists every handler of
every logger that lacks RedactSecrets (none, when all is well).
"""

import datetime
import json
import logging
import os
import sys
from types import SimpleNamespace
from urllib.parse import quote

LOGGERS = [
    "root",
    "django",
    "django.request",
    "django.server",
    "django.security.csrf",
    "celery",
    "celery.app.trace",
    "celery.worker.strategy",
    "celery.beat",
    "celery.redirected",
    "kombu",
    "newsletter.tasks",
    "delivery.scheduler",
    "delivery.by_hand",
    "delivery.batches",
    "delivery.recovery",
    "delivery.tasks",
    "delivery.deliverability.suppression",
    "delivery.deliverability.mailbox",
    "delivery.deliverability.health",
    "delivery.deliverability.tracking",
    "subscriptions.views",
    "subscriptions.tasks",
    "subscriptions.side_effects",
    "subscriptions.webhooks",
    "subscriptions.actions.account",
    "dashboard.summary",
    "config.views",
    "stripe",
    "flufl.bounce",
    "py.warnings",
]
ACCESS_REQUEST_ID = "access-line-request-1"


def main(email: str, token: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from config.celery import app

    # What `celery worker` and `celery beat` do before they run anything.
    app.log.setup(loglevel=logging.INFO)

    import gunicorn.config

    from config import gunicorn_conf

    cfg = gunicorn.config.Config()
    for name, value in vars(gunicorn_conf).items():
        if name in cfg.settings:
            cfg.set(name, value)
    web = cfg.logger_class(cfg)

    link = f"https://briefing.example/signin/{token}/"
    for name in LOGGERS:
        logger = logging.getLogger(None if name == "root" else name)
        logger.warning("through %s: %s for %s", name, link, email)
    try:
        raise RuntimeError(f"{email} could not use {token}")
    except RuntimeError as error:
        logging.getLogger("delivery.batches").exception("through exception: %s", error)
    # Celery's own shape: a mapping of arguments.
    logging.getLogger("celery.app.trace").info(
        "through celery mapping: Task %(name)s[%(id)s] succeeded: %(return_value)r",
        {"name": "newsletter.tasks.send_edition", "id": "1", "return_value": [email, token]},
    )
    # An argument that is no string, whose text holds the address.
    logging.getLogger("delivery.tasks").warning(
        "through object: %s", SimpleNamespace(email=email, token=token)
    )
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/signin/{token}/?email={quote(email)}",
        "PATH_INFO": f"/signin/{token}/",
        "QUERY_STRING": f"email={quote(email)}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_REFERER": f"https://mail.example/?to={quote(email)}",
    }
    headers = [("X-Request-ID", ACCESS_REQUEST_ID)]
    response = SimpleNamespace(status="200 OK", sent=512, headers=headers)
    web.access(response, SimpleNamespace(headers=[]), environ, datetime.timedelta(milliseconds=3))
    web.error("through gunicorn.error: %s for %s", link, email)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()

    unredacted = []
    from config.logfilters import RedactSecrets

    names = ["root", *logging.root.manager.loggerDict]
    for name in names:
        logger = logging.getLogger(None if name == "root" else name)
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.NullHandler):
                continue
            if not any(isinstance(f, RedactSecrets) for f in handler.filters):
                unredacted.append(f"{name}: {handler!r}")
    print("REPORT " + json.dumps({"unredacted_handlers": unredacted}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
