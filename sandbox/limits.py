"""How busy Jira behaves, for bursts: every call slowed by a latency, a burst rate limit, and a
per-issue write limit, each answered as Jira Cloud does (429 with ``Retry-After`` and
``RateLimit-Reason``). Off until a test or the benchmark sets them (``POST /_sandbox/faults``
with ``{"limits": {...}}``).

- ``latency_ms``: every API call waits this long before it is answered (outside the state's
  lock, so calls overlap as they do against a real Jira).
- ``rate`` and ``burst``: a token bucket. ``burst`` calls may come at once, then ``rate`` a
  second; a call finding the bucket empty is answered 429 (reason ``jira-burst-based``) with the
  whole seconds until a token is back, and does not count. Every answer carries
  ``X-RateLimit-Limit`` / ``-Remaining``, and ``X-RateLimit-NearLimit: true`` below 20 % left.
- ``issue_writes`` per ``issue_window_s``: writes (PUT, POST, DELETE) to one issue's path; one
  more is answered 429 (reason ``jira-per-issue-on-write``).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_LATENCY_MS = 5_000
MAX_RATE = 10_000.0
_ISSUE_PATH = re.compile(r"^/rest/api/[23]/issue/([^/]+)")
_WRITES = frozenset({"PUT", "POST", "DELETE"})
_KEYS = {"latency_ms", "rate", "burst", "issue_writes", "issue_window_s"}


@dataclass(frozen=True)
class Refusal:
    """A 429: the seconds to wait and Jira's reason."""

    retry_after: int
    reason: str


@dataclass(frozen=True)
class LimitSettings:
    latency_ms: int = 0
    rate: float | None = None  # calls a second; None: no burst limit
    burst: float | None = None  # the bucket's size; None: one second's worth
    issue_writes: int | None = None  # writes to one issue per window; None: no limit
    issue_window_s: float = 1.0

    def describe(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in sorted(_KEYS)}


def parse_limits(spec: Mapping[str, Any]) -> LimitSettings:
    """The settings a ``limits`` object gives; ``ValueError`` names what is wrong."""
    unknown = set(spec) - _KEYS
    if unknown:
        raise ValueError(f"unknown limit keys: {sorted(unknown)}")

    def number(name: str, low: float, high: float) -> float | None:
        value = spec.get(name)
        if value is None:
            return None
        wrong = isinstance(value, bool) or not isinstance(value, int | float)
        if wrong or not low <= value <= high:
            raise ValueError(f"{name} must be a number from {low:g} to {high:g}")
        return float(value)

    latency = number("latency_ms", 0, MAX_LATENCY_MS)
    writes = number("issue_writes", 1, 10_000)
    return LimitSettings(
        latency_ms=int(latency or 0),
        rate=number("rate", 0.1, MAX_RATE),
        burst=number("burst", 1, MAX_RATE),
        issue_writes=int(writes) if writes is not None else None,
        issue_window_s=number("issue_window_s", 0.1, 3600) or 1.0,
    )


class Limits:
    """The limits in force and their counters; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.settings = LimitSettings()
        self._tokens = 0.0
        self._filled_at = 0.0
        self._writes: dict[str, deque[float]] = {}

    def set(self, settings: LimitSettings) -> None:
        with self._lock:
            self.settings = settings
            self._tokens = self._capacity()
            self._filled_at = self.clock()
            self._writes.clear()

    def clear(self) -> None:
        self.set(LimitSettings())

    def admit(self, method: str, path: str) -> Refusal | None:
        """Count a call arriving now; the refusal when a limit is reached (it then counts not)."""
        with self._lock:
            s = self.settings
            now = self.clock()
            key = self._issue_written(method, path)
            if key is not None and s.issue_writes is not None:
                recent = self._writes.setdefault(key, deque())
                while recent and recent[0] <= now - s.issue_window_s:
                    recent.popleft()
                if len(recent) >= s.issue_writes:
                    wait = recent[0] + s.issue_window_s - now
                    return Refusal(max(1, math.ceil(wait)), "jira-per-issue-on-write")
            if s.rate is not None:
                self._refill(now)
                if self._tokens < 1.0:
                    wait = (1.0 - self._tokens) / s.rate
                    return Refusal(max(1, math.ceil(wait)), "jira-burst-based")
                self._tokens -= 1.0
            if key is not None and s.issue_writes is not None:
                self._writes[key].append(now)
            return None

    def headers(self) -> dict[str, str]:
        """What every answer says of the burst budget (nothing when there is no limit)."""
        with self._lock:
            if self.settings.rate is None:
                return {}
            self._refill(self.clock())
            capacity = self._capacity()
            left = max(0, math.floor(self._tokens))
            headers = {
                "X-RateLimit-Limit": str(math.ceil(capacity)),
                "X-RateLimit-Remaining": str(left),
            }
            if left < 0.2 * capacity:
                headers["X-RateLimit-NearLimit"] = "true"
            return headers

    @property
    def latency(self) -> float:
        return self.settings.latency_ms / 1000

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return self.settings.describe()

    def _capacity(self) -> float:
        """The bucket's size: ``burst``, else a second's worth of calls, and one call at least."""
        s = self.settings
        return max(1.0, s.burst if s.burst is not None else (s.rate or 0.0))

    def _refill(self, now: float) -> None:
        rate = self.settings.rate or 0.0
        self._tokens = min(self._capacity(), self._tokens + (now - self._filled_at) * rate)
        self._filled_at = now

    @staticmethod
    def _issue_written(method: str, path: str) -> str | None:
        if method.upper() not in _WRITES:
            return None
        match = _ISSUE_PATH.match(path)
        return match.group(1).upper() if match else None
