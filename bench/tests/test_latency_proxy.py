"""The bench's latency proxy: a relay a round trip away, on this machine."""

import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SMTPServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def relay_far_away(tmp_path):
    """The tests' SMTP server behind the proxy, 100 ms of round trip away."""
    server = SMTPServer(tmp_path / "smtp")
    proxy = subprocess.Popen(
        [sys.executable, "-m", "bench.latency_proxy", f"127.0.0.1:{server.port}",
         "--rtt-ms", "100"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert proxy.stdout is not None
    port = int(proxy.stdout.readline().split()[1])
    yield server, port
    proxy.kill()
    proxy.wait()
    server.stop()


def test_each_round_trip_costs_the_configured_latency_and_the_mail_arrives(relay_far_away):
    server, port = relay_far_away
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        started = time.monotonic()
        code, _ = client.noop()
        one_round_trip = time.monotonic() - started
        client.sendmail("a@example.com", ["reader@example.com"], b"Subject: hi\r\n\r\nHello\r\n")

    assert code == 250
    assert one_round_trip >= 0.1  # never faster than the wire it stands for
    assert server.recipients() == ["reader@example.com"]


def test_pipelined_commands_share_one_round_trip(relay_far_away):
    _server, port = relay_far_away
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        assert client.sock is not None
        started = time.monotonic()
        client.sock.sendall(b"NOOP\r\n" * 20)
        replies = b""
        while replies.count(b"\r\n") < 20:
            replies += client.sock.recv(4096)
        elapsed = time.monotonic() - started

    assert replies.count(b"250") == 20
    # Twenty commands in one write: one round trip, not twenty (2 s): bytes
    # are delayed, not serialised.
    assert 0.1 <= elapsed < 1.5
