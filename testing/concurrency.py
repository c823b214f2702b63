"""Concurrency in tests: racing threads, and waiting for other processes."""

import threading
import time
from collections.abc import Callable

from django.db import connection


def run_at_once[T](function: Callable[[], T], times: int) -> list[T]:
    """Call `function` in `times` threads released together; return their results.

    Each thread has its own database connection (closed at the end), so the
    calls race in the database as separate requests or workers would. The
    first exception raised in any thread is raised again here.
    """
    barrier = threading.Barrier(times)
    results: list[T] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            barrier.wait()
            results.append(function())
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False
