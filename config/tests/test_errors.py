"""Errors reach Sentry from the web, the worker and beat, and nothing in them names a reader.

Real processes (gunicorn with config/gunicorn_conf.py, `celery worker`,
`celery beat`) with the application's settings and a failing view, task and
beat entry (testing.sentry_settings), reporting through the real Sentry SDK
to a real HTTP server standing in for Sentry (testing.sentry_server). Each
failure carries a reader's address and a sign-in token in its exception's
message and in its local variables; what arrives must hold neither.
"""

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from sentry_sdk.types import Event

from config import sentry
from config.celery import app
from config.tests.test_deployment_files import ROOT
from subscriptions import signin
from subscriptions.models import Subscriber
from testing.commands import run_manage
from testing.concurrency import wait_for
from testing.sentry_server import SentryServer

EMAIL = "ada.lovelace@example.com"
COOKIE = "sessionid=7shq2l0ccookievalue9s8d7f6g5h4j3k2"


@pytest.fixture(scope="module")
def token() -> str:
    return signin.make_token(Subscriber(pk=7, email=EMAIL))


def secrets_in(data: bytes, token: str) -> list[str]:
    """Which of the reader's secrets the bytes hold, in any spelling they travel in."""
    text = data.decode("utf-8", errors="replace")
    candidates = [EMAIL, quote(EMAIL), token, token.rsplit(":", 1)[-1], COOKIE.split("=")[1]]
    return [secret for secret in candidates if secret in text]


# --- The scrubbers, on events shaped as the SDK makes them ------------------------------


def test_an_events_strings_lose_addresses_and_tokens_and_its_request_its_body_and_cookies(
    token,
):
    event: Event = {
        "exception": {"values": [{"type": "RuntimeError", "value": f"{EMAIL} with {token}"}]},
        "request": {
            "url": f"https://briefing.example/signin/{token}/",
            "query_string": f"email={quote(EMAIL)}",
            "data": {"email": EMAIL},
            "cookies": {"sessionid": "abc"},
            "headers": {"Cookie": COOKIE, "X-CSRFToken": "t", "User-Agent": "Mail/1"},
        },
        "extra": {"celery-job": {"args": [EMAIL, token], "kwargs": {EMAIL: token}}},
        "breadcrumbs": {"values": [{"message": f"Digest to {EMAIL} refused"}]},
    }

    scrubbed = sentry.scrub_event(event, {})

    assert not secrets_in(repr(scrubbed).encode(), token)
    assert scrubbed["exception"]["values"][0]["value"] == "[address] with [redacted]"
    assert scrubbed["request"] == {
        "url": "https://briefing.example/signin/[redacted]/",
        "query_string": "email=[address]",
        "headers": {"User-Agent": "Mail/1"},
    }
    assert scrubbed["extra"]["celery-job"] == {
        "args": ["[address]", "[redacted]"],
        "kwargs": {"[address]": "[redacted]"},
    }


def test_a_breadcrumb_loses_addresses_and_tokens(token):
    crumb = {"category": "query", "message": "SELECT 1", "data": {"params": [EMAIL, token]}}

    assert sentry.scrub_breadcrumb(crumb, {}) == {
        "category": "query",
        "message": "SELECT 1",
        "data": {"params": ["[address]", "[redacted]"]},
    }


def test_nothing_is_set_up_without_a_dsn(settings):
    settings.SENTRY_DSN = None

    assert sentry.init_from_settings() is False


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SENTRY_DSN", "not-a-dsn", "SENTRY_DSN is not a Sentry DSN"),
    ],
)
def test_a_wrong_sentry_setting_stops_the_start_with_its_name(variable, value, message):
    result = run_manage("check", DJANGO_DEBUG="1", **{variable: value})

    assert result.returncode != 0
    assert message in result.stderr


# --- Real processes -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(server: SentryServer, tmp: Path, token: str, **more: str) -> dict[str, str]:
    """The processes' environment: production-like settings, Sentry at the test's server."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "SENTRY_", "LOG_", "GUNICORN_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="testing.sentry_settings",
        DJANGO_ENV_FILE="none",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="errors-test-secret-key-with-plenty-of-entropy-0a9b8c7d6e5f",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="0",
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        SENTRY_DSN=server.dsn,
        SENTRY_ENVIRONMENT="errors-test",
        LOG_FORMAT="json",
        SENTRY_TEST_EMAIL=EMAIL,
        SENTRY_TEST_TOKEN=token,
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        **more,
    )
    return env


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    """A warm shutdown (the main process only, as a supervisor does), then the group if it hangs."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_until(condition, timeout: float, process: subprocess.Popen, log: Path) -> None:
    if not wait_for(lambda: condition() or process.poll() is not None, timeout, interval=0.2):
        pytest.fail(f"not ready after {timeout} s:\n{log.read_text()[-3000:]}")
    if not condition():
        pytest.fail(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")


def events(server: SentryServer) -> list[dict]:
    return server.received("event")


def frame_vars(event: dict, function: str) -> dict:
    [exception] = [e for e in event["exception"]["values"] if e["type"] == "RuntimeError"]
    # Frames run from the outermost call to the one that raised: the last is ours.
    *_, frame = [f for f in exception["stacktrace"]["frames"] if f["function"] == function]
    return dict(frame["vars"])


@pytest.mark.real_clock
def test_an_exception_in_a_view_reaches_sentry_without_the_readers_address_or_token(
    token, tmp_path
):
    server = SentryServer()
    port = free_port()
    env = environment(
        server,
        tmp_path,
        token,
        # Every request traced too: transactions carry the URL and spans.
        SENTRY_TEST_TRACES_SAMPLE_RATE="1",
        GUNICORN_CMD_ARGS=f"--bind 127.0.0.1:{port} --workers 1 "
        f"--control-socket {tmp_path / 'gunicorn.ctl'}",
    )
    log = tmp_path / "web.log"
    web = start(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application",
         "-c", "python:config.gunicorn_conf"],
        env,
        log,
    )  # fmt: skip

    def serving() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3):
                return True
        except OSError:
            return False

    try:
        wait_until(serving, 60, web, log)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/test-failure/{token}/?email={quote(EMAIL)}",
            data=f"email={quote(EMAIL)}".encode(),
            headers={"Cookie": COOKIE, "X-Request-ID": "edge-request-1"},
        )
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=30)  # noqa: S310 - http://127.0.0.1 above
        event = server.wait_for("event", lambda e: "exception" in e, timeout=30)
        transaction = server.wait_for(
            "transaction", lambda t: "test-failure" in t["transaction"], timeout=30
        )
    finally:
        stop(web)
        server.stop()

    assert answer.value.code == 500
    assert answer.value.headers["X-Request-ID"] == "edge-request-1"
    assert event is not None, log.read_text()[-3000:]
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["value"] == "Could not sign [address] in with [redacted]"
    assert exception["mechanism"]["type"] == "django"
    # The view's locals were sent, and scrubbed: by name, or wherever they are quoted.
    variables = frame_vars(event, "fail_with_secrets")
    assert variables["email"] == variables["token"] == "[Filtered]"
    assert (
        variables["link"] == f"'http://127.0.0.1:{port}/test-failure/[redacted]/?email=[address]'"
    )
    assert event["request"]["url"] == f"http://127.0.0.1:{port}/test-failure/[redacted]/"
    assert "data" not in event["request"] and "cookies" not in event["request"]
    assert "Cookie" not in event["request"]["headers"]
    assert "user" not in event  # send_default_pii is off: no IP address
    assert event["tags"]["request_id"] == "edge-request-1"
    assert event["environment"] == "errors-test"
    assert transaction is not None
    assert transaction["request"]["url"] == f"http://127.0.0.1:{port}/test-failure/[redacted]/"
    assert not secrets_in(server.all_bytes(), token)
    # And the web's log lines, JSON, follow the request by its id without naming the reader.
    output = log.read_text()
    assert not secrets_in(output.encode(), token)
    assert '"request_id": "edge-request-1"' in output
    assert '"Internal Server Error: /test-failure/[redacted]/"' in output


@pytest.fixture(scope="module")
def worker_and_beat(token, tmp_path_factory):
    """Compose's Celery worker and beat on a queue of their own, reporting to Sentry."""
    tmp = tmp_path_factory.mktemp("errors")
    server = SentryServer()
    queue = f"errors-test-{uuid.uuid4().hex[:8]}"
    env = environment(server, tmp, token, SENTRY_TEST_QUEUE=queue)
    worker_log, beat_log = tmp / "worker.log", tmp / "beat.log"
    worker = start(
        ["celery", "-A", "config", "worker", "--loglevel", "INFO", "--concurrency", "1"],
        env,
        worker_log,
    )
    beat = None
    try:
        wait_until(lambda: "ready." in worker_log.read_text(), 90, worker, worker_log)
        # Beat once the worker listens: its first run of each entry is at once.
        beat = start(
            ["celery", "-A", "config", "beat", "--loglevel", "INFO",
             "--schedule", str(tmp / "celerybeat-schedule")],
            env,
            beat_log,
        )  # fmt: skip
        yield server, queue, worker_log, beat_log
    finally:
        # The tests have their answers: no warm shutdown to wait for.
        for process in (beat, worker):
            if process is not None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        server.stop()


def exception_event(server: SentryServer, value_part: str, timeout: float) -> dict | None:
    return server.wait_for(
        "event",
        lambda e: any(value_part in x["value"] for x in e.get("exception", {}).get("values", [])),
        timeout=timeout,
    )


@pytest.mark.real_clock
def test_an_exception_in_a_task_reaches_sentry_without_the_readers_address_or_token(
    worker_and_beat, token
):
    server, queue, worker_log, _beat_log = worker_and_beat
    app.send_task("testing.sentry_app.task_fails_with_secrets", args=[EMAIL, token], queue=queue)

    event = exception_event(server, "Could not send", timeout=60)

    assert event is not None, worker_log.read_text()[-3000:]
    [exception] = event["exception"]["values"]
    assert (
        exception["value"]
        == "Could not send https://briefing.example/signin/[redacted]/ to [address]"
    )
    assert exception["mechanism"]["type"] == "celery"
    variables = frame_vars(event, "task_fails_with_secrets")
    assert variables["email"] == variables["token"] == "[Filtered]"
    assert variables["link"] == "'https://briefing.example/signin/[redacted]/'"
    assert event["extra"]["celery-job"]["task_name"] == "testing.sentry_app.task_fails_with_secrets"
    assert event["tags"]["celery_task_id"]
    assert not secrets_in(server.all_bytes(), token)
    # The worker's log lines: JSON, each of the task's naming it, none naming the reader.
    assert wait_for(
        lambda: '"level": "ERROR", "logger": "celery.app.trace"' in worker_log.read_text()
    )
    output = worker_log.read_text()
    assert not secrets_in(output.encode(), token)
    task_id = event["tags"]["celery_task_id"]
    assert f'"task_id": "{task_id}", "task": "testing.sentry_app.task_fails_with_secrets"' in output


@pytest.mark.real_clock
def test_an_exception_in_beat_reaches_sentry_without_the_readers_address_or_token(
    worker_and_beat, token
):
    server, _queue, _worker_log, beat_log = worker_and_beat

    event = exception_event(server, "The broker refused", timeout=60)

    assert event is not None, beat_log.read_text()[-3000:]
    assert event["logger"] == "celery.beat"
    refused = [x for x in event["exception"]["values"] if x["type"] == "RuntimeError"]
    assert refused[0]["value"] == "The broker refused the link [redacted] for [address]"
    variables = frame_vars(event, "apply_async")  # RefusedByBeat's, in beat
    assert variables["email"] == variables["token"] == "[Filtered]"
    assert variables["args"] == ["'[address]'", "'[redacted]'"]
    assert not secrets_in(server.all_bytes(), token)
    output = beat_log.read_text()
    assert "Message Error: Couldn't apply scheduled task briefing-test-refused" in output
    assert not secrets_in(output.encode(), token)


@pytest.mark.real_clock
def test_beats_runs_are_sentry_cron_check_ins(worker_and_beat):
    server, _queue, worker_log, _beat_log = worker_and_beat

    def check_in(slug: str, status: str) -> dict:
        found = server.wait_for(
            "check_in",
            lambda c: c["monitor_slug"] == slug and c["status"] == status,
            timeout=60,
        )
        assert found is not None, f"no {status} of {slug}: {worker_log.read_text()[-3000:]}"
        return found

    # Beat says it started each run; the worker says how it ended, under the same id.
    started = check_in("briefing-test-succeeds", "in_progress")
    ended = check_in("briefing-test-succeeds", "ok")
    failed_start = check_in("briefing-test-fails", "in_progress")
    failed = check_in("briefing-test-fails", "error")

    assert started["check_in_id"] == ended["check_in_id"]
    assert failed_start["check_in_id"] == failed["check_in_id"]
    assert started["monitor_config"]["schedule"] == {
        "type": "interval",
        "value": 1,
        "unit": "minute",
    }
    assert ended["duration"] is not None and ended["duration"] >= 0
