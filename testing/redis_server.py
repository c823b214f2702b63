"""A redis-server of a test's own (Debian's redis-server package), on a free port."""

import os
import shutil
import socket
import subprocess
from pathlib import Path

import redis

from testing.concurrency import wait_for


class PrivateRedis:
    """A redis-server of the test's own, without persistence, to be restarted at will."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        # Without libfaketime (CI's shifted-clock runs preload it): redis-server's
        # allocator cannot start under it, and the broker's clock is not under test.
        env = {key: value for key, value in os.environ.items() if key != "LD_PRELOAD"}
        self.process = subprocess.Popen(  # noqa: S603 - the redis-server binary, our arguments
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            env=env,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        assert wait_for(lambda: _pings(client)), "redis-server did not start"

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def restart(self) -> None:
        """As a crash and a restart without an append-only file: every queued message lost."""
        self.kill()
        self.start()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
