"""Deliveries held while their Jira site cannot be used, and the worker's watch over the site.

A hold (``connector.breaker``) lives in the queue's store, one per site (``JIRA_URL``), so every
worker process and thread honours it. A delivery whose calls meet a hold goes back to the log as
queued without spending an attempt, and its job is *parked* in the queue's store beside the
hold, not scheduled: nothing runs for it while the site is held. ``HoldWatch``, a thread of each
worker, probes the site when the turn is its own (one probe at a time across every worker, every
``JIRA_PROBE_SECONDS`` or the site's ``Retry-After`` when longer) and, once the site is usable,
queues every parked job at once: they then run at the pace, as a burst does, and their issues
are placed on their boards together.

A hold has a cause, and each cause its probe (``probes``): ``outage`` (the site fails: a cheap
call) and ``credential`` (Jira refused the service account's credential: the credential read
again from its file, or a new OAuth token, then a call that needs it). While a credential is
refused the watch says so in the log once a minute (``REMIND_SECONDS``), not once a delivery.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from connector.breaker import CREDENTIAL, Hold, SiteBreaker, credential_refused, site_failure
from connector.errors import JiraError, JiraHeldError
from pipeline.delivery import Job
from pipeline.queue import InboxStorage

log = logging.getLogger(__name__)

WATCH_SECONDS = 1.0  # how often the watch looks at the hold
REMIND_SECONDS = 60.0  # how often the log says again that Jira refuses the credential
PROBE_TIMEOUT = 5.0  # the most a probe waits for the site


@dataclass(frozen=True)
class SiteState:
    """What the pages and ``/metrics`` show of a site: its hold (None when usable) and the
    deliveries parked behind it."""

    site: str
    hold: Hold | None
    held: int


class Holds:
    """One site's hold as the worker's jobs meet it, and the jobs it parks."""

    def __init__(self, breaker: SiteBreaker, storage: InboxStorage) -> None:
        self.breaker = breaker
        self.storage = storage

    @property
    def site(self) -> str:
        return self.breaker.site

    def holding(self, error: BaseException) -> Hold | None:
        """The hold that ``error`` met, read fresh from the store: the site's hold when the
        error is one (``JiraHeldError``) or a failure of the site while a hold is open; None
        when the error is the delivery's own, or the hold has closed since."""
        if not isinstance(error, JiraHeldError) and not (
            site_failure(error) or credential_refused(error)
        ):
            return None
        return self.breaker.current(fresh=True)

    def park(self, job: Job) -> None:
        record = json.dumps({"id": job.id, "issue_key": job.issue_key}).encode()
        self.storage.held_add(self.site, job.id, record)

    def take(self) -> list[Job]:
        """Every parked job, no longer parked."""
        jobs = []
        for record in self.storage.held_take(self.site):
            fields = json.loads(record)
            jobs.append(Job(str(fields["id"]), fields.get("issue_key")))
        return jobs


def site_state(storage: InboxStorage, site: str) -> SiteState:
    """The site's hold and parked deliveries, as the store holds them now."""
    found = storage.hold_get(site)
    hold = None if found is None else Hold.decode(*found)
    return SiteState(site, hold, storage.held_count(site))


class HoldWatch:
    """The worker's thread over its site's hold: probe when due, release what waited."""

    def __init__(
        self,
        holds: Holds,
        *,
        probes: Mapping[str, Callable[[], None]],
        release: Callable[[list[Job]], None],
        interval: float = WATCH_SECONDS,
        remind: float = REMIND_SECONDS,
        refused: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.holds = holds
        self.remind = remind
        self.refused = refused  # a probe was refused the credential (a metric counts them)
        self._reminded = float("-inf")
        self.breaker = holds.breaker
        self.probes = dict(probes)
        self.release = release
        self.interval = interval
        self.clock = clock
        self._stop = threading.Event()

    def tick(self) -> None:
        self._remind()
        hold = self.breaker.take_probe()
        if hold is not None:
            probe = self.probes.get(hold.cause)
            if probe is None:
                log.error("holds: no probe for a hold of cause %r; it stays", hold.cause)
                return
            try:
                probe()
            except JiraError as exc:
                if credential_refused(exc):
                    self.refused()
                self.breaker.probe_failed(hold, exc)
                log.info("Jira still held (%s): %s", hold.cause, exc)
                return
            self.breaker.close()
            log.warning(
                "Jira usable again after %.0f s held (%s, %d probe(s) failed)",
                self.clock() - hold.since, hold.cause, hold.probes,
            )  # fmt: skip
        if self.breaker.current() is None and self.holds.storage.held_count(self.holds.site):
            self.release_all()

    def _remind(self) -> None:
        """Once a minute while Jira refuses the credential, what to do (the hold's opening
        said it once already)."""
        hold = self.breaker.current()
        now = self.clock()
        if hold is None or hold.cause != CREDENTIAL:
            self._reminded = float("-inf")
            return
        if now - self._reminded < self.remind:
            return
        if self._reminded != float("-inf"):
            log.error(
                "Jira still refuses the service account's credential, since %.0f s: %d "
                "delivery(ies) wait, none lost. Put a working credential in place (its "
                "setting or file); the work then drains in order. Jira said: %s",
                now - hold.since, self.holds.storage.held_count(self.holds.site), hold.reason,
            )  # fmt: skip
        self._reminded = now

    def release_all(self) -> int:
        """Queue every parked job (the site is usable); how many."""
        jobs = self.holds.take()
        if jobs:
            log.warning("releasing %d delivery(ies) held while Jira could not be used", len(jobs))
            self.release(jobs)
        return len(jobs)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("holds: the watch failed; trying again")
            self._stop.wait(self.interval)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="HoldWatch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
