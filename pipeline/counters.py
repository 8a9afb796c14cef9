"""Counts that every web process must see alike: the admin sessions logged out, the failed
token attempts of each client address. Web processes run side by side (gunicorn's workers, and
dynos on other machines), so these live in the queue's store, which all of them share: the
SQLite file of one machine, or Redis (``RedisInboxStorage`` and ``SqliteLeaseStorage`` give
``count_up`` and ``count``).

``LocalCounts`` keeps them in one process's memory, for an app that triages inline and has no
queue (the web layer's tests): it is not enough for a real deployment, and is not used in one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Counts(Protocol):
    def count_up(self, key: str, *, ttl: float) -> int:
        """Add one to ``key`` and return its count; the first count starts a ``ttl``-second
        window, after which the key counts from zero again."""

    def count(self, key: str) -> int:
        """``key``'s count in its current window; 0 when it has none."""


class LocalCounts:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def count_up(self, key: str, *, ttl: float) -> int:
        with self._lock:
            now = self.clock()
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            value, expires = self._counts.get(key, (0, now + ttl))
            self._counts[key] = (value + 1, expires)
            return value + 1

    def count(self, key: str) -> int:
        with self._lock:
            value, expires = self._counts.get(key, (0, 0.0))
            return value if expires > self.clock() else 0
