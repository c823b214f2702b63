"""Fixtures the delivery tests share."""

import shutil

import pytest

from delivery import batches
from testing.redis_server import PrivateRedis


@pytest.fixture(autouse=True)
def relays_measured_afresh():
    """Each test's SMTP server is a new relay, even on a port an earlier test's had."""
    batches._relay_distances.clear()


@pytest.fixture
def pooled(smtp_server, settings, monkeypatch):
    """The production backend over 4 connections per batch (SMTP_URL's ?connections=4).

    To a relay taken to be far: the test's server is on loopback, where a
    batch would otherwise use one connection (test_smtp_pool's
    test_a_relay_on_loopback_...).
    """
    monkeypatch.setattr(batches, "NEAR_RELAY_SECONDS", 0)
    settings.MAILERS = {
        "default": {
            "BACKEND": "delivery.wire.backend.SigningSMTPBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": smtp_server.port, "timeout": 10,
                        "connections": 4},
        }
    }  # fmt: skip
    return smtp_server


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of the test's own, to share between processes or to restart."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server (Debian's redis-server package)")
    server = PrivateRedis(tmp_path)
    yield server
    server.kill()
