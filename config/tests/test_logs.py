"""Logs: one line per event, in LOG_FORMAT's shape, naming the request, task, edition and zone.

And never a reader's address or a token, through any logger of any process:
Django's, Celery's worker and beat (which would replace the handlers with
their own), gunicorn's, ours.
"""

import io
import json
import logging
import os
import subprocess
import sys
from urllib.parse import quote

import pytest
from django.test import Client

from config import logcontext
from config.logfilters import RedactSecrets, redact
from config.logformat import JSON_FIELDS, JsonFormatter
from config.tests.test_deployment_files import ROOT
from delivery import scheduler, tasks
from newsletter.models import Edition
from newsletter.tests.factories import built_edition, make_article
from subscriptions import signin
from subscriptions.models import Subscriber
from subscriptions.tests.factories import make_subscriber
from subscriptions.tokens import ReaderTokens
from testing import log_every_logger
from testing.clock import MONDAY, MONDAY_BEFORE_SEND
from testing.commands import run_manage

EMAIL = "ada.lovelace@example.com"


def reader_tokens() -> list[str]:
    """A token of each kind the links carry: signed values and page-scoped reader tokens."""
    reader = Subscriber(pk=7, email=EMAIL)
    claim = signin.EmailChangeClaim(subscriber_id=7, old_email=EMAIL, new_email="ada@example.org")
    return [
        signin.make_token(reader),
        ReaderTokens("unsubscribe").make(reader),
        signin.email_change_url(claim).rstrip("/").rsplit("/", 1)[-1],
    ]


# --- What is masked ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Digest to ada.lovelace@example.com refused: 550 no such user",
        "['ada.lovelace@example.com', 'grace@example.org']",
        "GET /subscribe/?email=ada.lovelace%40example.com&next=/",
        "Return-Path: bounces+12-Zm9v@bounces.example.com",
        "Ünïcode.Ada@bücher.example",
        "o'brien+news@example.co.uk wrote",
    ],
)
def test_an_email_address_is_masked_wherever_it_stands(text):
    line = redact(text)

    assert "@" not in line and "%40" not in line, line
    assert "[address]" in line


def test_a_token_is_redacted_bare_as_in_a_link():
    for token in reader_tokens():
        for text in (f"could not use {token}", f"GET /preferences/{token}/", f"?token={token}"):
            line = redact(text)
            assert token not in line and token[-12:] not in line, line
            assert "[redacted]" in line


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-30 06:00:00 America/New_York: 1200 digests queued",
        "Task newsletter.tasks.send_edition[8c1d2e3f-1234-4567-89ab-0123456789ab] succeeded",
        "Edition 2026-11-30: 3 batches queued",
        "celery@worker-1 ready.",
        "Stripe event evt_1NqXyZ2eZvKYlo2C (customer.subscription.updated) failed",
    ],
)
def test_lines_without_secrets_are_left_as_they_were(text):
    assert redact(text) == text


def test_every_handler_of_the_logging_settings_redacts_and_names_the_context(settings):
    handlers = settings.LOGGING["handlers"]
    for name, handler in handlers.items():
        assert handler["filters"] == ["log_context", "redact_secrets"], name
    loggers = {"root": settings.LOGGING["root"], **settings.LOGGING["loggers"]}
    for name, logger in loggers.items():
        assert set(logger["handlers"]) <= set(handlers), name


# --- Every logger, as each process configures it ----------------------------------------


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_no_logger_of_any_process_writes_an_address_or_a_token(log_format):
    token = reader_tokens()[0]
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "LOG_", "SENTRY_"))
    }
    environment.update(DJANGO_ENV_FILE="none", DJANGO_DEBUG="1", LOG_FORMAT=log_format)
    process = subprocess.run(
        [sys.executable, "-m", "testing.log_every_logger", EMAIL, token],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 0, process.stderr
    # The application's lines go to standard error, gunicorn's access line and
    # the report to standard output.
    *stdout, report = process.stdout.splitlines()
    output = "\n".join([*stdout, *process.stderr.splitlines()])

    for secret in (EMAIL, quote(EMAIL), token, token.rsplit(":", 1)[-1]):
        assert secret not in output, secret
    assert report.startswith("REPORT ")
    assert json.loads(report.removeprefix("REPORT ")) == {"unredacted_handlers": []}
    written = [*log_every_logger.LOGGERS, "exception", "celery mapping", "object", "gunicorn.error"]
    for name in written:
        assert f"through {name}: " in output, name
    access_line = '"GET /signin/[redacted]/?email=[address] HTTP/1.1" 200'
    assert output.count("[address]") >= len(written)
    if log_format == "json":
        records = [json.loads(line) for line in output.splitlines()]
        assert len(records) == len(written) + 1  # and gunicorn's access line
        for record in records:
            assert set(record) <= set(JSON_FIELDS)
            assert {"time", "level", "logger", "message"} <= set(record)
        access = next(record for record in records if record["logger"] == "gunicorn.access")
        assert access_line in access["message"]
        assert access["request_id"] == log_every_logger.ACCESS_REQUEST_ID
        failure = next(record for record in records if "through exception" in record["message"])
        assert "RuntimeError: [address] could not use [redacted]" in failure["exc_info"]
        assert all(line.startswith("{") for line in output.splitlines())
    else:
        assert access_line in output
        assert "RuntimeError: [address] could not use [redacted]" in output


def test_an_unknown_log_format_stops_the_start_with_its_name():
    result = run_manage("check", DJANGO_DEBUG="1", LOG_FORMAT="xml")

    assert result.returncode != 0
    assert "LOG_FORMAT must be one of json, plain, got 'xml'" in result.stderr


# --- The fields: request id, task, edition and zone ------------------------------------


@pytest.fixture
def log_lines():
    """What the configured console handler writes, as JSON records, whatever LOG_FORMAT says."""
    [handler] = [h for h in logging.getLogger().handlers if any(
        isinstance(f, RedactSecrets) for f in h.filters
    )]  # fmt: skip
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    stream, formatter = handler.setStream(buffer), handler.formatter
    handler.setFormatter(JsonFormatter())

    def read() -> list[dict]:
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    yield read
    handler.setStream(stream)
    handler.setFormatter(formatter)


@pytest.mark.django_db
def test_a_request_keeps_a_sane_incoming_id_and_its_lines_carry_it(log_lines):
    response = Client().get("/no-such-page/", headers={"X-Request-ID": "edge-7f3a:1"})

    assert response.status_code == 404
    assert response["X-Request-ID"] == "edge-7f3a:1"
    [not_found] = [line for line in log_lines() if line["logger"] == "django.request"]
    assert not_found["message"] == "Not Found: /no-such-page/"
    assert not_found["request_id"] == "edge-7f3a:1"
    assert not_found["status_code"] == 404

    logging.getLogger("delivery.batches").warning("after the request")
    assert "request_id" not in log_lines()[-1]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "incoming", [None, "", "x" * 129, "two words", "id<script>", "ada@example.com"]
)
def test_a_request_without_a_sane_id_gets_a_new_one(incoming, log_lines):
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    first = Client().get("/no-such-page/", headers=headers)
    second = Client().get("/no-such-page/", headers=headers)

    assert first["X-Request-ID"] != incoming
    assert len(first["X-Request-ID"]) == 32 and int(first["X-Request-ID"], 16) >= 0
    assert first["X-Request-ID"] != second["X-Request-ID"]
    assert [line["request_id"] for line in log_lines()] == [
        first["X-Request-ID"],
        second["X-Request-ID"],
    ]


@pytest.mark.django_db
def test_a_refused_request_has_an_id_too():
    response = Client().post(
        "/subscribe/", data="x", content_type="text/plain", CONTENT_LENGTH=str(10**9)
    )

    assert response.status_code == 413
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
@pytest.mark.clock(MONDAY_BEFORE_SEND)
def test_a_tasks_lines_carry_its_id_and_a_sends_its_edition_and_zone(
    smtp_server, eager_celery, log_lines
):
    make_article()
    make_subscriber("reader@example.com", time_zone="Asia/Tokyo")
    refused = make_subscriber("refused@example.com", time_zone="Asia/Tokyo")
    smtp_server.inject_faults(refuse_recipients={refused.email: [550, "5.1.1 No such user"]})
    edition = built_edition(MONDAY)

    result = tasks.send_edition.delay(edition.pk)
    logging.getLogger("delivery.batches").info("after the task")

    lines = log_lines()
    [refusal] = [line for line in lines if line["message"].startswith("Digest to")]
    # The server's answer names the address too (smtplib's SMTPRecipientsRefused).
    assert refusal["message"] == (
        "Digest to [address] refused: {'[address]': (550, b'5.1.1 No such user')}"
    )
    assert refusal["task"] == "newsletter.tasks.send_delivery_batch"
    assert refusal["task_id"] != result.id  # the batch's own, run inside send_edition
    assert (refusal["edition"], refusal["zone"]) == ("2026-11-30", "Asia/Tokyo")
    [queued] = [line for line in lines if line["message"].endswith("batches queued")]
    # The batch ran inside it: its end gave the outer task back its id.
    assert (queued["task_id"], queued["task"]) == (result.id, "newsletter.tasks.send_edition")
    assert queued["edition"] == "2026-11-30"
    assert not {"task_id", "task", "edition", "zone"} & set(lines[-1])
    assert Edition.objects.get().status == Edition.Status.SENT


@pytest.mark.django_db
@pytest.mark.clock(MONDAY_BEFORE_SEND)
def test_a_mornings_send_names_its_edition_and_zone(clock, log_lines):
    make_article()
    make_subscriber("reader@example.com", time_zone="Asia/Tokyo")
    clock.move_to("2026-11-30T21:05:00Z")  # 06:05 on Tuesday in Tokyo

    batches = list(scheduler.schedule_due_sends())
    logging.getLogger("delivery.scheduler").info("after the morning")

    assert len(batches) == 1
    lines = log_lines()
    [queued] = [line for line in lines if line["message"].endswith("digests queued")]
    assert queued["message"] == "2026-12-01 06:00:00 Asia/Tokyo: 1 digests queued"
    assert (queued["edition"], queued["zone"]) == ("2026-12-01", "Asia/Tokyo")
    assert "edition" not in lines[-1] and logcontext.current() == {}
