"""Slow clients against the real stack: Caddy (deploy/Caddyfile) in front of gunicorn.

A client that announces a body and trickles it ties up whatever reads that
body. Gunicorn's sync workers (config/gunicorn_conf.py) must never be that
reader: the proxy reads each body whole before it passes the request on, so
more slow clients than gunicorn has workers leave /healthz answering.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import gunicorn_conf
from testing.commands import ISOLATED_PREFIXES, PRODUCTION
from testing.proxy import CADDYFILE, ROOT, CaddyUnavailable, caddyfile_for, ensure_caddy

# Real processes, on the machine's clock.
pytestmark = [pytest.mark.real_clock, pytest.mark.faults]

# The review's attack: 500 kB announced, then a byte at a time (every 2 s
# there; faster here, so the test need not wait as long for them to be in flight).
ANNOUNCED_BYTES = 500_000
TRICKLE_SECONDS = 0.25
# Every slow client has sent this many bytes of its body before /healthz is
# asked: by then, without buffering, each body is being read by a worker.
IN_FLIGHT_BYTES = 3
# Gunicorn's start (Django's import in every worker) on a busy 2-core machine.
START_SECONDS = 60
PROBES = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], log: Path, **environment: str) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=environment,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def healthz(port: int, timeout: float) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout) as answer:
        return int(answer.status)


class Stack:
    def __init__(self, proxy_port: int, logs: list[Path]) -> None:
        self.proxy_port = proxy_port
        self.logs = logs

    def log_tail(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in self.logs)


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    """Gunicorn as compose runs it (its config file, production settings), behind the Caddyfile."""
    try:
        caddy = ensure_caddy()
    except CaddyUnavailable as reason:
        pytest.skip(str(reason))
    web_port, proxy_port = free_port(), free_port()

    # The compose file's Caddyfile, listening on the test's port and passing to its gunicorn.
    text = CADDYFILE.read_text()
    assert ":80 {" in text and "reverse_proxy web:8000" in text
    text = text.replace(":80 {", f":{proxy_port} {{\n\tbind 127.0.0.1", 1)
    text = text.replace("reverse_proxy web:8000", f"reverse_proxy 127.0.0.1:{web_port}")
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text(caddyfile_for(caddy, text))

    environment = {k: v for k, v in os.environ.items() if not k.startswith(ISOLATED_PREFIXES)}
    web_environment = {
        **environment,
        **PRODUCTION,
        "DJANGO_ENV_FILE": "none",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_BEHIND_PROXY": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    web_log, proxy_log = tmp_path / "gunicorn.log", tmp_path / "caddy.log"
    # Options on the command line win over the config file's: the test's port,
    # and a control socket of its own (gunicorn's default is one per user).
    web = start(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application",
         "-c", "python:config.gunicorn_conf", "--bind", f"127.0.0.1:{web_port}",
         "--control-socket", str(tmp_path / "gunicorn.ctl")],
        web_log,
        **web_environment,
    )  # fmt: skip
    proxy = start(
        [caddy, "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
        proxy_log,
        **environment,
        XDG_CONFIG_HOME=str(tmp_path / "caddy-config"),
        XDG_DATA_HOME=str(tmp_path / "caddy-data"),
    )
    stack = Stack(proxy_port, [web_log, proxy_log])
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            for process in (web, proxy):
                if process.poll() is not None:
                    pytest.fail(f"exited with {process.returncode}:\n{stack.log_tail()}")
            try:
                if healthz(proxy_port, timeout=5) == 200:
                    break
            except OSError:
                pass  # not listening yet, or the proxy's 502 while gunicorn starts
            if time.monotonic() > deadline:
                pytest.fail(f"/healthz not answering after {START_SECONDS} s:\n{stack.log_tail()}")
            time.sleep(0.2)
        yield stack
    finally:
        stop(proxy)
        stop(web)


class SlowClient(threading.Thread):
    """A POST to /signin/ announcing ANNOUNCED_BYTES and sending a byte every TRICKLE_SECONDS."""

    def __init__(self, port: int, stopping: threading.Event, progress: threading.Condition):
        super().__init__(daemon=True)
        self.connection = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.stopping = stopping
        self.progress = progress
        self.sent = 0

    def run(self) -> None:
        self.connection.sendall(
            b"POST /signin/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            # A CSRF cookie, so Django reads the body for the form's token.
            b"Cookie: csrftoken=%s\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % (b"a" * 32, ANNOUNCED_BYTES)
        )
        while True:
            try:
                self.connection.sendall(b"x")
            except OSError:
                return  # the proxy hung up: the test sees it below
            with self.progress:
                self.sent += 1
                self.progress.notify_all()
            if self.stopping.wait(TRICKLE_SECONDS):
                return

    def answered(self) -> bytes | None:
        """What the server has sent back so far (b"" once it closed), None if nothing yet."""
        self.connection.setblocking(False)
        try:
            return self.connection.recv(4096)
        except BlockingIOError:
            return None


def test_slow_request_bodies_do_not_stall_the_site(stack):
    # Warm: how long /healthz takes through the stack when nothing else is going on.
    started = time.monotonic()
    for _ in range(PROBES):
        assert healthz(stack.proxy_port, timeout=START_SECONDS) == 200
    usual = (time.monotonic() - started) / PROBES
    probe_seconds = max(3.0, 20 * usual)

    # More slow clients than gunicorn has workers (and threads) to read them.
    capacity = gunicorn_conf.workers * getattr(gunicorn_conf, "threads", 1)
    stopping, progress = threading.Event(), threading.Condition()
    clients = [SlowClient(stack.proxy_port, stopping, progress) for _ in range(capacity + 1)]
    try:
        for client in clients:
            client.start()
        with progress:
            in_flight = progress.wait_for(
                lambda: all(client.sent >= IN_FLIGHT_BYTES for client in clients),
                timeout=IN_FLIGHT_BYTES * TRICKLE_SECONDS + 10,
            )
        assert in_flight, [client.sent for client in clients]

        for probe in range(PROBES):
            asked = time.monotonic()
            try:
                status = healthz(stack.proxy_port, timeout=probe_seconds)
            except TimeoutError:
                pytest.fail(
                    f"/healthz (probe {probe + 1}) did not answer within {probe_seconds:.1f} s "
                    f"while {len(clients)} clients trickled their bodies:\n{stack.log_tail()}"
                )
            assert status == 200
            assert time.monotonic() - asked < probe_seconds

        stopping.set()
        for client in clients:
            client.join(timeout=10)
        # The slow clients were still sending, unanswered, all along.
        assert [client.answered() for client in clients] == [None] * len(clients)
    finally:
        stopping.set()
        for client in clients:
            client.join(timeout=10)
            client.connection.close()
