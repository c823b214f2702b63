"""A worker's most recently used things, a few of each kind kept.

Renders and the fast path's parts are shared by a process's batches and by
an SMTP pool's lanes (threads): each kind is kept in one of these, the least
recently used let go first, taken and let go under a lock.
"""

import threading
from collections.abc import Callable, Hashable, Iterator


class KeptRecently[K: Hashable, V]:
    """At most `size` values by key, the least recently used let go first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The value kept for `key`, or `make()`'s, kept from now on."""
        with self._lock:
            value = self._values.pop(key, None)
            if value is None:
                if len(self._values) >= self.size:
                    del self._values[next(iter(self._values))]
                value = make()
            self._values[key] = value  # the most recently used, last
            return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[V]:
        with self._lock:
            return iter(list(self._values.values()))
