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
def private_redis(tmp_path):
    """A redis-server of the test's own, to share between processes or to restart."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server (Debian's redis-server package)")
    server = PrivateRedis(tmp_path)
    yield server
    server.kill()
