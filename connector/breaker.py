"""Holds on a Jira site: while a site cannot be used, no work is sent to it; one probe at a
time asks whether it can be used again, and the work waits without spending its attempts.

A *hold* says that a site is not usable, for a *cause*, since when, and when the next probe
may go. It lives in a shared store (the queue's: ``pipeline.holds``), so every thread of every
worker process honours the same hold; each process keeps a copy read again every ``REFRESH``
seconds, so checking it before a call costs nothing.

``SiteBreaker`` is the circuit breaker, the hold's first user (cause ``outage``): when
``FAILURES_TO_OPEN`` calls in a row fail for reasons that are the site's (``site_failure``: no
answer, 502/503/504, a 5xx with ``Retry-After``), it opens a hold; the next probe goes
``probe_seconds`` later, or after the site's ``Retry-After`` when that is longer. A call the site
answered otherwise (any 2xx-4xx, a 500 without ``Retry-After``) resets the count: one issue's
failures while other calls succeed are that issue's, not the site's.

The second cause is ``credential``: the first 401 the service account gets (an expired or
revoked token, a scope the token lacks; the connector has already tried the credential read
again from its file, or a new OAuth token) holds the site at once, since every call carries the
same credential. Its probes back off, from ``probe_seconds`` doubling up to
``CREDENTIAL_PROBE_MAX`` seconds, until a working credential is in place.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Protocol

from connector.errors import (
    JiraAuthError,
    JiraError,
    JiraHeldError,
    JiraServerError,
    JiraUnavailableError,
)

log = logging.getLogger(__name__)

OUTAGE = "outage"  # the site fails as a whole: no answer, 502/503/504, 5xx with Retry-After
CREDENTIAL = "credential"  # Jira refused the service account's credential (401)
CAUSES = (OUTAGE, CREDENTIAL)  # every cause a hold may have (each a series of /metrics)
CREDENTIAL_PROBE_MAX = 60.0  # the longest wait between two probes of a refused credential
FAILURES_TO_OPEN = 3  # calls in a row failing for the site's reasons before a hold opens
REFRESH = 1.0  # seconds a process trusts its copy of the hold before reading the store again
SITE_STATUSES = frozenset({502, 503, 504})
_REASON_KEPT = 300  # characters of the site's last answer kept in the hold


def site_failure(error: BaseException) -> bool:
    """Whether ``error`` is the site's rather than the request's: no answer at all, a gateway
    or an unavailable service (502/503/504), or a 5xx that says when to come back."""
    if not isinstance(error, JiraError) or error.ours or isinstance(error, JiraHeldError):
        return False
    if isinstance(error, JiraUnavailableError):
        return True
    if isinstance(error, JiraServerError):
        return error.status in SITE_STATUSES or error.retry_after is not None
    return False


def credential_refused(error: BaseException) -> bool:
    """Whether ``error`` is Jira (or the OAuth token endpoint) refusing the credential."""
    return isinstance(error, JiraAuthError) and not error.ours


@dataclass(frozen=True)
class Hold:
    """A site held: why (``cause``, and ``reason``: what the site last said), since when, and
    when the next probe may go (epoch seconds); ``probes``: how many have failed."""

    cause: str
    reason: str
    since: float
    probe_at: float
    probes: int = 0

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, record: bytes, probe_at: float) -> Hold:
        fields = json.loads(record)
        return cls(
            cause=str(fields["cause"]),
            reason=str(fields.get("reason", "")),
            since=float(fields["since"]),
            probe_at=probe_at,
            probes=int(fields.get("probes", 0)),
        )

    def error(self) -> JiraHeldError:
        return JiraHeldError(
            f"not sent: Jira is held ({self.cause}) since {_stamp(self.since)}: {self.reason}",
            cause=self.cause,
            since=self.since,
            reason=self.reason,
        )


class HoldStore(Protocol):
    """Where holds are kept, one per site, shared by every process (``pipeline.holds``)."""

    def hold_get(self, site: str) -> tuple[bytes, float] | None:
        """The hold's record and its next probe time; None when the site is not held."""

    def hold_open(self, site: str, record: bytes, probe_at: float) -> bool:
        """Hold the site unless it is held already; whether this opened it."""

    def hold_probe(self, site: str, *, now: float, next_at: float) -> bool:
        """Take the turn to probe: True, with the next turn moved to ``next_at``, when the
        site is held and its probe was due by ``now``; False otherwise (another took it)."""

    def hold_update(self, site: str, record: bytes, probe_at: float) -> None:
        """Rewrite a hold that is still open (a failed probe's reason, the next probe)."""

    def hold_close(self, site: str) -> bool:
        """Let go of the site's hold; whether there was one."""


class SiteBreaker:
    """One site's holds as a process sees them, shared by its threads: ``check`` before each
    call, ``answered``/``failed`` after it."""

    def __init__(
        self,
        site: str,
        store: HoldStore,
        *,
        probe_seconds: float = 5.0,
        failures: int = FAILURES_TO_OPEN,
        refresh: float = REFRESH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.site = site
        self.store = store
        self.probe_seconds = probe_seconds
        self.failures = failures
        self.refresh = refresh
        self.clock = clock
        self._lock = threading.Lock()
        self._hold: Hold | None = None
        self._read_at = float("-inf")
        self._failed = 0  # site failures in a row, in this process

    # ---- the state

    def current(self, *, fresh: bool = False) -> Hold | None:
        """The site's hold, None when it is usable: this process's copy, read again from the
        store when older than ``refresh`` (or ``fresh``). A store that does not answer leaves
        the copy as it was."""
        now = self.clock()
        with self._lock:
            if not fresh and now - self._read_at < self.refresh:
                return self._hold
            self._read_at = now  # one thread reads; the others use the copy meanwhile
        try:
            found = self.store.hold_get(self.site)
        except Exception as exc:
            log.warning("holds: the store did not answer: %s", type(exc).__name__)
            return self._hold
        hold = None if found is None else Hold.decode(*found)
        with self._lock:
            self._hold = hold
        return hold

    def check(self) -> None:
        """Raise ``JiraHeldError`` while the site is held."""
        hold = self.current()
        if hold is not None:
            raise hold.error()

    # ---- what calls report

    def answered(self) -> None:
        """The site answered a call (whatever it said but a site failure)."""
        with self._lock:
            self._failed = 0

    def failed(self, error: BaseException) -> Hold | None:
        """A call failed with ``error``; the hold when this opened one (or found one open)."""
        if not isinstance(error, JiraError) or error.ours or isinstance(error, JiraHeldError):
            return None
        if credential_refused(error):
            return self.open(CREDENTIAL, describe(error))
        if not site_failure(error):
            self.answered()
            return None
        with self._lock:
            if self._hold is not None:
                return self._hold
            self._failed += 1
            if self._failed < self.failures:
                return None
        wait = getattr(error, "retry_after", None)
        return self.open(OUTAGE, describe(error), wait=wait)

    def open(self, cause: str, reason: str, *, wait: float | None = None) -> Hold:
        """Hold the site for ``cause`` (unless it is held already); the hold in force. The
        first probe goes ``probe_seconds`` from now, or after ``wait`` when longer."""
        now = self.clock()
        hold = Hold(cause, _clip(reason), now, now + self.next_wait(wait))
        try:
            opened = self.store.hold_open(self.site, hold.encode(), hold.probe_at)
            found = self.store.hold_get(self.site)
        except Exception as exc:  # the store is down: this process holds on its own
            log.warning("holds: the store did not answer: %s", type(exc).__name__)
            opened, found = True, None
        if found is not None:
            hold = Hold.decode(*found)
        with self._lock:
            self._hold, self._read_at = hold, now
        if opened:
            log.error(
                "Jira held (%s): %s; calls wait, one probe every %g s", cause, reason,
                self.probe_seconds,
            )  # fmt: skip
        return hold

    # ---- the probe

    def next_wait(self, retry_after: float | None) -> float:
        """Seconds until the next probe: ``probe_seconds``, or the site's ``Retry-After``."""
        return max(self.probe_seconds, retry_after or 0.0)

    def take_probe(self) -> Hold | None:
        """The hold to probe now, when the site is held and this process got the turn (one
        probe at a time across every process); None otherwise."""
        hold = self.current(fresh=True)
        now = self.clock()
        if hold is None or hold.probe_at > now:
            return None
        try:
            taken = self.store.hold_probe(self.site, now=now, next_at=now + self.probe_seconds)
        except Exception as exc:
            log.warning("holds: the store did not answer: %s", type(exc).__name__)
            return None
        return hold if taken else None

    def probe_failed(self, hold: Hold, error: BaseException) -> None:
        """The probe of ``hold`` failed: keep holding, the next probe after the wait."""
        wait = getattr(error, "retry_after", None)
        if hold.cause == CREDENTIAL:  # nothing says when a credential will be replaced
            wait = min(CREDENTIAL_PROBE_MAX, self.probe_seconds * 2.0 ** (hold.probes + 1))
        now = self.clock()
        later = replace(
            hold, reason=_clip(describe(error)), probe_at=now + self.next_wait(wait),
            probes=hold.probes + 1,
        )  # fmt: skip
        try:
            self.store.hold_update(self.site, later.encode(), later.probe_at)
        except Exception as exc:
            log.warning("holds: the store did not answer: %s", type(exc).__name__)
        with self._lock:
            self._hold = later

    def close(self) -> bool:
        """The site is usable again (a probe succeeded); whether a hold was open."""
        try:
            closed = self.store.hold_close(self.site)
        except Exception as exc:
            log.warning("holds: the store did not answer: %s", type(exc).__name__)
            closed = False
        with self._lock:
            had, self._hold, self._failed = self._hold, None, 0
            self._read_at = self.clock()
        return closed or had is not None


def describe(error: BaseException) -> str:
    """An error as a hold's reason: ``Jira 503: GET /rest/…: Jira answered 503 …``."""
    if isinstance(error, JiraError):
        status = f"Jira {error.status}: " if error.status else "Jira: "
        return status + str(error)
    return f"{type(error).__name__}: {error}"


def _clip(text: str) -> str:
    return text if len(text) <= _REASON_KEPT else text[: _REASON_KEPT - 1] + "…"


def stamp(epoch: float) -> str:
    """Epoch seconds as ``2025-11-23T06:13:03Z``."""
    return _stamp(epoch)


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
