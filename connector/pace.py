"""How fast a process calls Jira: at most ``max_in_flight`` calls at once, started at most
``rate`` a second, and slower for a while after Jira says it is too much.

One ``Pace`` is shared by every Jira client of a process (one client per worker thread), so the
threads together keep to it. The rate adapts between a floor and the cap:

- a 429 for the burst budget, or for any reason but one issue's writes, pauses every call of
  the process for Jira's ``Retry-After`` and cuts the rate (``CUT``, once per pause: calls in
  flight together are refused together); a 429 for one issue's writes
  (``RateLimit-Reason: jira-per-issue-on-write``) concerns that issue only: the caller waits;
- ``X-RateLimit-NearLimit: true`` on an answer holds the rate where it is;
- any other answer lets it grow again, by ``GROWTH`` of the cap over a second of answers.

Calls are spread evenly (one every ``1 / rate`` seconds), not let out in bursts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

PER_ISSUE_REASON = "jira-per-issue-on-write"
CUT = 0.8  # the rate after a 429, as a share of what it was
GROWTH = 0.1  # the share of the cap the rate regains per second of answers
FLOOR = 0.05  # the slowest the rate goes, as a share of the cap
DEFAULT_WAIT = 1.0  # seconds, for a 429 that says nothing


class NoTurnError(TimeoutError):
    """No turn to call Jira came within the time the caller had. ``wait``: the seconds until
    the next turn when the pace knows them (a pause after a 429, the rate's spacing); None when
    it waits for a call in flight to end."""

    def __init__(self, message: str, *, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


class Pace:
    def __init__(
        self,
        *,
        max_in_flight: int,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_in_flight < 1 or rate <= 0:
            raise ValueError("a pace needs at least one call in flight and a positive rate")
        self.max_in_flight = max_in_flight
        self.cap = rate
        self.rate = rate
        self.clock = clock
        self.in_flight = 0
        self._cond = threading.Condition(threading.RLock())
        self._next_start = 0.0
        self._paused_until = 0.0

    @contextmanager
    def slot(self, timeout: float | None = None) -> Iterator[None]:
        """Wait for a turn to call Jira, then hold it while the call runs. With ``timeout``,
        ``NoTurnError`` as soon as it is clear no turn comes within that many seconds."""
        give_up = None if timeout is None else self.clock() + timeout
        with self._cond:
            while (wait := self.turn(now := self.clock())) > 0:
                if give_up is not None:
                    if now + wait > give_up and (wait != float("inf") or now >= give_up):
                        raise NoTurnError(
                            f"no turn to call Jira within {max(0.0, timeout or 0.0):.1f}s",
                            wait=None if wait == float("inf") else wait,
                        )
                    wait = min(wait, give_up - now)
                self._cond.wait(timeout=wait if wait != float("inf") else None)
        try:
            yield
        finally:
            self.done()

    def turn(self, now: float) -> float:
        """Take a turn to start a call at ``now`` and return 0, or return the seconds to wait
        (``inf``: until a call in flight ends). Every turn taken ends with ``done``."""
        with self._cond:
            wait = max(self._paused_until, self._next_start) - now
            if wait > 0:
                return wait
            if self.in_flight >= self.max_in_flight:
                return float("inf")
            self.in_flight += 1
            self._next_start = max(now, self._next_start) + 1.0 / self.rate
            return 0.0

    def done(self) -> None:
        """A call started with ``turn`` has ended."""
        with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    def answered(self, status: int, headers: Mapping[str, str]) -> None:
        """Adapt to an answer that was not a 429 (those go to ``refused``)."""
        if status == 429:
            return
        near = str(headers.get("X-RateLimit-NearLimit", "")).lower() == "true"
        with self._cond:
            if not near:
                self.rate = min(self.cap, self.rate + GROWTH * self.cap / max(self.rate, 1.0))

    def refused(self, retry_after: float | None, reason: str | None) -> float:
        """Jira answered 429: the seconds the caller waits before sending the call again. For
        the burst budget (or a reason not given) every call of the process waits as long."""
        wait = DEFAULT_WAIT if retry_after is None else max(0.0, retry_after)
        if reason == PER_ISSUE_REASON:
            return wait
        with self._cond:
            now = self.clock()
            if now >= self._paused_until:
                self.rate = max(FLOOR * self.cap, self.rate * CUT)
            self._paused_until = max(self._paused_until, now + wait)
            self._cond.notify_all()
        return wait
