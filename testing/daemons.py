"""Real servers the tests start as processes of their own (Dovecot, Postfix): the shared steps."""

import socket
import subprocess
import time
from collections.abc import Callable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_listening(
    process: subprocess.Popen, ports: list[int], name: str, log: Callable[[], str]
) -> None:
    """Return once every port of 127.0.0.1 accepts a connection; raise, with the log, if not.

    Each server starts in well under a second here; 15 s leaves room for a
    busy machine. A server that does not come up is stopped.
    """
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log()}")
        try:
            for port in ports:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    stop(process)
    raise RuntimeError(f"{name} did not start listening: {log()}")


def stop(process: subprocess.Popen) -> None:
    """Ask the server to stop (it stops its own children), then make sure."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
