"""Faults the tests switch on: error answers by method and path, slow answers, failed ranks,
and outages of the whole site.

Every fault is used up after ``times`` matches, and every outage ends after its ``seconds``,
so nothing a test sets can last forever.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

STATUSES = {
    403: "You do not have the permission to do this.",  # e.g. revoked between check and write
    408: "Request timed out.",
    409: "A conflicting update is in progress on this issue; try again.",
    425: "Too early.",
    429: "Rate limit exceeded.",
    500: "Internal server error.",
    502: "Bad gateway.",
    503: "Service unavailable.",
    504: "Gateway timeout.",
}
RANK_FAILURE = "JIRA Agile cannot execute the rank operation at this time. Please try again later."
MAX_DELAY_MS = 30_000
MAX_TIMES = 1_000
MAX_OUTAGE_S = 3_600
# How a site is down: "down" drops every API connection unanswered (as a site that is gone or
# a load balancer with nothing behind it), a status answers every API call with it.
OUTAGE_MODES = ("down", "502", "503", "504")


@dataclass(frozen=True)
class Outage:
    """The whole API down until ``until`` (monotonic seconds); ``retry_after`` is sent with a
    status (Atlassian sends it on some 503s)."""

    mode: str
    until: float
    retry_after: int | None = None

    def describe(self, now: float) -> dict[str, Any]:
        left = max(0.0, self.until - now)
        return {"mode": self.mode, "seconds_left": round(left, 1), "retry_after": self.retry_after}

    @property
    def status(self) -> int | None:
        return None if self.mode == "down" else int(self.mode)

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}

    def body(self) -> dict[str, Any]:
        return {"errorMessages": [STATUSES[self.status or 503]], "errors": {}}


def parse_outage(spec: Mapping[str, Any], now: float) -> Outage:
    unknown = set(spec) - {"mode", "seconds", "retry_after"}
    if unknown:
        raise ValueError(f"unknown outage keys: {sorted(unknown)}")
    mode = str(spec.get("mode", "down"))
    if mode not in OUTAGE_MODES:
        raise ValueError(f"mode must be one of {list(OUTAGE_MODES)}")
    seconds = spec.get("seconds")
    wrong = isinstance(seconds, bool) or not isinstance(seconds, int | float)
    if wrong or not 0 < seconds <= MAX_OUTAGE_S:
        raise ValueError(f"seconds must be a number above 0, up to {MAX_OUTAGE_S}")
    retry_after = spec.get("retry_after")
    if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
        raise ValueError("retry_after must be a whole number of seconds")
    if retry_after is not None and mode == "down":
        raise ValueError("retry_after goes with a status, not with mode down")
    return Outage(mode, now + float(seconds), retry_after)


@dataclass
class Fault:
    method: str | None  # None matches any method
    path: re.Pattern[str]  # searched in the request path
    status: int | None  # None: only delay, then answer normally
    times: int
    delay_ms: int = 0
    retry_after: int | None = None  # seconds, sent with 429 (default 1) and 503 (when set)
    messages: tuple[str, ...] = ()  # Jira's errorMessages for the status, in place of ours
    answer: Any = None  # a broken or hostile answer: this JSON, with 200, in place of Jira's

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path.pattern,
            "status": self.status,
            "times": self.times,
            "delay_ms": self.delay_ms,
            "retry_after": self.retry_after,
        }

    def headers(self) -> dict[str, str]:
        """Headers of the answer, shaped as Jira Cloud's rate limiter sends them."""
        if self.status == 429:
            wait = self.retry_after if self.retry_after is not None else 1
            reset = datetime.now(UTC) + timedelta(seconds=wait)
            return {
                "Retry-After": str(wait),
                "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%MZ"),
                "RateLimit-Reason": "jira-burst-based",
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": "0",
            }
        if self.retry_after is not None:
            return {"Retry-After": str(self.retry_after)}
        return {}

    def body(self) -> dict[str, Any]:
        said = list(self.messages) or [STATUSES.get(self.status or 0, "Fault.")]
        return {"errorMessages": said, "errors": {}}


class Faults:
    """The switched-on faults; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._rank_failures: dict[str, int] = {}  # issue key -> failures left
        self._outage: Outage | None = None
        self.clock = clock

    def start_outage(self, spec: Mapping[str, Any]) -> Outage:
        """The whole API down for a while (``parse_outage``); replaces one under way."""
        outage = parse_outage(spec, self.clock())
        with self._lock:
            self._outage = outage
        return outage

    def end_outage(self) -> None:
        with self._lock:
            self._outage = None

    def outage(self) -> Outage | None:
        """The outage under way, if any."""
        with self._lock:
            if self._outage is not None and self._outage.until <= self.clock():
                self._outage = None
            return self._outage

    def add(self, spec: Mapping[str, Any]) -> Fault:
        """Add a fault from its JSON description; ``ValueError`` names what is wrong."""
        fault = parse_fault(spec)
        with self._lock:
            self._faults.append(fault)
        return fault

    def fail_ranks(self, keys: list[str], times: int = 1) -> None:
        with self._lock:
            for key in keys:
                self._rank_failures[key.upper()] = times

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching the request, counted as used once."""
        with self._lock:
            for fault in self._faults:
                if fault.method not in (None, method.upper()) or not fault.path.search(path):
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def take_rank_failure(self, key: str) -> bool:
        with self._lock:
            left = self._rank_failures.get(key, 0)
            if left <= 0:
                return False
            if left == 1:
                del self._rank_failures[key]
            else:
                self._rank_failures[key] = left - 1
            return True

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._rank_failures.clear()
            self._outage = None

    def describe(self) -> dict[str, Any]:
        outage = self.outage()
        with self._lock:
            return {
                "faults": [f.describe() for f in self._faults],
                "rank_fail": dict(self._rank_failures),
                "outage": None if outage is None else outage.describe(self.clock()),
            }


def parse_fault(spec: Mapping[str, Any]) -> Fault:
    keys = {"method", "path", "status", "times", "delay_ms", "retry_after", "messages", "answer"}
    unknown = set(spec) - keys
    if unknown:
        raise ValueError(f"unknown fault keys: {sorted(unknown)}")
    try:
        path = re.compile(str(spec.get("path", "")))
    except re.error as exc:
        raise ValueError(f"path is not a regular expression: {exc}") from exc
    status = spec.get("status")
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {sorted(STATUSES)}")
    times = _bounded_int(spec, "times", 1, 1, MAX_TIMES)
    delay = _bounded_int(spec, "delay_ms", 0, 0, MAX_DELAY_MS)
    answer = spec.get("answer")
    if status is None and not delay and answer is None:
        raise ValueError("a fault needs a status, a delay_ms or an answer")
    if answer is not None and status is not None:
        raise ValueError("an answer is sent with 200: give no status with it")
    messages = spec.get("messages", [])
    if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
        raise ValueError("messages must be a list of strings")
    retry_after = spec.get("retry_after")
    if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
        raise ValueError("retry_after must be a whole number of seconds")
    method = spec.get("method")
    return Fault(
        method=str(method).upper() if method else None,
        path=path,
        status=status,
        times=times,
        delay_ms=delay,
        retry_after=retry_after,
        messages=tuple(messages),
        answer=answer,
    )


def _bounded_int(spec: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = spec.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{key} must be a whole number from {low} to {high}")
    return value
