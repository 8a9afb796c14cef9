"""The worker: takes deliveries off the queue, one job at a time per issue, and triages them.

For each job: take the issue's lock (in the queue's store, with a time to live) → move the
delivery from the queue's inbox into the log, if it is still there → claim it in the log
(queued → running; a job handed out twice runs once) → triage, re-reading the issue
first when a newer delivery for it came in or the event is older than WEBHOOK_MAX_AGE_SECONDS →
record the outcome. Issues put in a band wait for their board's placement run
(``pipeline.placements``). When Jira fails, ``retry_verdict`` (pure) says whether to wait and try
again, give up at once (failed) or give up for good (dead) — unless the failure is the site's
and its hold is open (``pipeline.holds``): then the delivery waits for the site, parked, its
attempt not counted.

Beside Huey's consumer, three threads: the sweeper queues again what a crash left behind (see
``DeliveryLog.recover`` and ``Inbox.overdue``) and drops rows older than
DELIVERY_RETENTION_HOURS (and the oldest beyond DELIVERY_LOG_MAX_ROWS); the heartbeat
(``pipeline.heartbeats``) takes back a dead worker's jobs in seconds; the hold watch probes a
held Jira site and releases what waited for it.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from huey import Huey
from huey.exceptions import RetryTask

from connector.breaker import CREDENTIAL, OUTAGE, Hold, SiteBreaker
from connector.errors import JiraError, JiraHeldError, JiraRateLimitError, JiraServerError
from connector.pace import Pace
from connector.protocol import Call, Jira
from impact.model import ImpactConfig
from pipeline.calls import calls_made_by, record_calls, within_lease
from pipeline.delivery import Delivery, Job
from pipeline.delivery_log import DEAD, FAILED, Claim, DeliveryLog
from pipeline.dispatch import process
from pipeline.heartbeats import Heartbeat, worker_name
from pipeline.holds import PROBE_TIMEOUT, Holds, HoldWatch
from pipeline.placements import PlacementQueue, Placements, placer
from pipeline.queue import DeliveryQueue, Inbox
from pipeline.ranking import ranked_boards
from service import metrics
from service.logs import delivery_context
from service.settings import Settings

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 0.5  # a job whose issue is locked tries again this soon (the queue ticks 1 s)
CHECKPOINT_SECONDS = 1.0  # at most this much of the SQLite log's commits is not yet on disk


# --------------------------------------------------------------------------------------------
# Retry policy


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = Settings.delivery_attempts
    base: float = Settings.retry_base_seconds  # before the 2nd attempt; doubled each time after
    cap: float = Settings.retry_max_seconds  # no wait is longer (unless Retry-After says so)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            attempts=settings.delivery_attempts,
            base=settings.retry_base_seconds,
            cap=settings.retry_max_seconds,
        )

    def backoff(self, attempt: int, jitter: float) -> float:
        """The wait after failed attempt ``attempt`` (1-based); ``jitter`` in [0, 1) spreads it
        over ±25 % so that deliveries failing together do not come back together."""
        exponent = min(attempt - 1, 60)
        return min(self.cap, self.base * 2.0**exponent) * (0.75 + 0.5 * jitter)

    def total(self) -> float:
        """The nominal time from the first attempt to the last (no jitter, no Retry-After)."""
        return sum(self.backoff(n, 0.5) for n in range(1, self.attempts))


@dataclass(frozen=True)
class Verdict:
    status: str  # "retry" | "failed" (not worth another try) | "dead" (out of attempts)
    delay: float = 0.0
    reason: str = ""


def retry_verdict(
    error: BaseException, attempt: int, policy: RetryPolicy, jitter: float
) -> Verdict:
    """What to do after ``attempt`` (1-based) failed with ``error``.

    Jira's 400/401/403/404 fail at once, since trying again cannot help; 429, 5xx, no answer and
    our own unexpected errors are tried again, backing off exponentially (after a 429, Jira's
    ``Retry-After`` instead; after a 5xx, at least it); after the last attempt the delivery is
    dead."""
    reason = _describe(error)
    if (isinstance(error, JiraError) and not error.retryable) or isinstance(error, ValueError):
        # Jira refused the request as such, or the stored delivery cannot be read: another try
        # would end the same way. It stays in the log, replayable once the cause is fixed.
        return Verdict("failed", reason=reason)
    if attempt >= policy.attempts:
        return Verdict("dead", reason=f"gave up after {attempt} attempt(s): {reason}")
    retry_after = getattr(error, "retry_after", None)
    delay = policy.backoff(attempt, jitter)
    if isinstance(error, JiraRateLimitError | JiraServerError) and retry_after is not None:
        asked = max(0.0, retry_after) * (1.0 + 0.25 * jitter) + 0.1 * jitter
        # a 429 is the pace's to wait out; a 5xx's Retry-After is the least wait, not the wait
        delay = asked if isinstance(error, JiraRateLimitError) else max(asked, delay)
    return Verdict("retry", delay=delay, reason=reason)


def _describe(error: BaseException) -> str:
    if isinstance(error, JiraError):
        status = f"Jira {error.status}: " if error.status else "Jira: "
        return status + str(error)
    return f"{type(error).__name__}: {error}"


# --------------------------------------------------------------------------------------------
# One job


class DeliveryWorker:
    """Runs one delivery end to end. ``jira`` gives the calling thread its Jira client."""

    def __init__(
        self,
        *,
        huey: Huey,
        log: DeliveryLog,
        config: ImpactConfig,
        jira: Callable[[], Jira],
        policy: RetryPolicy,
        lease: float,
        max_age: float,
        placements: Placements,
        holds: Holds | None = None,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.huey = huey
        self.holds = holds
        self.inbox = Inbox(huey)
        self.log = log
        self.config = config
        self.jira = jira
        self.policy = policy
        self.lease = lease
        self.max_age = max_age
        self.placements = placements
        self.clock = clock
        self.jitter = jitter

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        huey: Huey,
        log: DeliveryLog,
        config: ImpactConfig,
        jira: Callable[[], Jira],
        placements: Placements,
        holds: Holds | None = None,
    ) -> DeliveryWorker:
        return cls(
            huey=huey,
            log=log,
            config=config,
            jira=jira,
            policy=RetryPolicy.from_settings(settings),
            lease=settings.lease_seconds,
            max_age=settings.webhook_max_age_seconds,
            placements=placements,
            holds=holds,
        )

    def handle(self, job: Job) -> None:
        """Huey's task body. Raises ``RetryTask`` to be run again later.

        The issue's lock is taken with the inbox's copy of the delivery read, and released with
        that copy dropped once the log has it: two steps in the queue's store per delivery. A
        worker killed in between leaves the delivery in both; the next run finds it logged."""
        lock = f"issue.{job.issue_key or job.id}"
        try:
            locked, waiting, latest_ms = self.inbox.lock(lock, job, ttl=math.ceil(self.lease))
        except Exception as exc:
            log.error("queue's store unavailable for %s: %s", job.id, exc)
            raise RetryTask(delay=self.policy.base) from exc
        if not locked:
            log.debug("issue %s is busy; %s waits", job.issue_key, job.id)
            raise RetryTask(delay=LOCK_WAIT_SECONDS)
        logged = False  # whether the log has the inbox's copy, which may then go
        try:
            with delivery_context(job.id, job.issue_key):
                started = self.clock()
                try:
                    claim = self._take(job.id, waiting, started)
                except Exception as exc:
                    log.error("delivery log unavailable for %s: %s", job.id, exc)
                    raise RetryTask(delay=self.policy.base) from exc
                logged = waiting is not None
                if claim is None:
                    log.info("delivery %s is not due or was handled already; skipped", job.id)
                    return
                self._run(claim, started, latest_ms)
        finally:
            self.inbox.unlock(lock, drop=job.id if logged else None)

    def _take(self, identifier: str, waiting: Delivery | None, now: float) -> Claim | None:
        """The delivery from the inbox into the log, claimed; else the log's claim."""
        if waiting is None:
            return self.log.claim(identifier, now=now, lease=self.lease)
        return self.log.start(waiting, now=now, lease=self.lease)

    def _run(self, claim: Claim, started: float, latest_ms: int | None) -> None:
        delivery = claim.delivery
        jira: Jira | None = None
        try:
            jira = self.jira()
            calls_made_by(jira)  # calls left over from another job are not this one's
            with within_lease(jira, self.lease):
                outcome = process(
                    delivery,
                    jira=jira,
                    config=self.config,
                    placements=self.placements,
                    latest_ms=latest_ms,
                    max_age=self.max_age,
                    first_attempt=claim.first,
                    now=started,
                )
        except Exception as exc:  # every failure is recorded, then judged
            calls = calls_made_by(jira) if jira is not None else ()
            record_calls(calls)
            attempt = attempt_log(claim.attempts, started, self.clock(), calls)
            hold = self.holds.holding(exc) if self.holds is not None else None
            if hold is not None or isinstance(exc, JiraHeldError):
                self._held(delivery, exc, hold, attempt if calls else None, started)
                return
            self._failed(delivery, exc, claim.attempts, attempt, started)
            return
        ended = self.clock()
        calls = calls_made_by(jira) or outcome.calls
        record_calls(calls)
        metrics.delivery_processed(delivery.event, outcome.status, ended - started)
        summary = outcome.plan.summary() if outcome.plan else outcome.reason
        self.log.finish(
            delivery.id,
            outcome.status,
            now=ended,
            plan=summary,
            attempt_log=attempt_log(claim.attempts, started, ended, calls),
        )
        # one line per delivery: what became of it, and why
        log.info("delivery %s for %s: %s (%s)", delivery.id, delivery.issue_key, outcome.status,
                 summary)  # fmt: skip

    def _held(
        self,
        delivery: Delivery,
        exc: Exception,
        hold: Hold | None,
        record: str | None,
        started: float,
    ) -> None:
        """The delivery met its site's hold: back to queued, its attempt not counted, and its
        job parked until the site is usable (``pipeline.holds``). ``record``: the attempt's
        calls, when it made any."""
        assert self.holds is not None
        now = self.clock()
        why = hold.reason if hold is not None else str(exc)
        cause = hold.cause if hold is not None else getattr(exc, "cause", "?")
        error = f"held: Jira not usable ({cause}): {why}"
        self.log.hold(delivery.id, now=now, error=error, attempt_log=record)
        metrics.delivery_processed(delivery.event, "held", now - started)
        if hold is None:  # the hold closed since the call met it: run again soon
            raise RetryTask(delay=LOCK_WAIT_SECONDS)
        self.holds.park(Job(delivery.id, delivery.issue_key))
        log.info("delivery %s for %s held: Jira not usable (%s); no attempt spent",
                 delivery.id, delivery.issue_key, cause)  # fmt: skip

    def _failed(
        self, delivery: Delivery, exc: Exception, attempt: int, record: str, started: float
    ) -> None:
        verdict = retry_verdict(exc, attempt, self.policy, self.jitter())
        metrics.delivery_processed(delivery.event, verdict.status, self.clock() - started)
        if not isinstance(exc, JiraError):
            log.exception("delivery %s: unexpected error", delivery.id)
        if verdict.status == "retry":
            log.warning(
                "delivery %s for %s, attempt %d: %s; next try in %.1f s",
                delivery.id,
                delivery.issue_key,
                attempt,
                verdict.reason,
                verdict.delay,
            )
            self.log.retry_later(
                delivery.id,
                due_at=self.clock() + verdict.delay,
                error=verdict.reason,
                attempt_log=record,
            )
            raise RetryTask(delay=verdict.delay) from exc
        status = FAILED if verdict.status == "failed" else DEAD
        log.error(
            "delivery %s for %s %s: %s", delivery.id, delivery.issue_key, status, verdict.reason
        )
        self.log.finish(
            delivery.id, status, now=self.clock(), attempt_log=record, error=verdict.reason
        )


def attempt_log(attempt: int, started: float, ended: float, calls: Sequence[Call]) -> str:
    """One attempt for the delivery log: when it ran, then its Jira calls, one a line.

    ``attempt 2 at 2025-11-23T06:13:03.412Z, 41 ms:`` then ``  PUT /rest/api/2/issue/X -> 204``
    """
    stamp = datetime.fromtimestamp(started, tz=UTC).isoformat(timespec="milliseconds")
    head = (
        f"attempt {attempt} at {stamp.replace('+00:00', 'Z')}, {(ended - started) * 1000:.0f} ms:"
    )
    return "\n".join([head, *(f"  {call}" for call in calls)])


# --------------------------------------------------------------------------------------------
# The process


class Sweeper:
    """The worker's housekeeping thread. Every second: make the recent commits of the SQLite
    log and queue durable (a checkpoint syncs their write-ahead logs). Every ``interval``
    seconds: queue again what crashes left behind (deliveries, and placement runs of boards
    with issues waiting), and drop log rows past retention or beyond the log's size bound."""

    def __init__(
        self,
        *,
        log: DeliveryLog,
        queue: DeliveryQueue,
        lease: float,
        retention: float,
        max_rows: int | None = None,
        placements: PlacementQueue | None = None,
        boards: Sequence[int] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.log = log
        self.queue = queue
        self.lease = lease
        self.retention = retention
        self.max_rows = max_rows
        self.placements = placements
        self.boards = tuple(boards)
        self.clock = clock
        self.interval = max(1.0, min(30.0, lease / 4))
        self._stop = threading.Event()

    def sweep(self) -> int:
        now = self.clock()
        recovered = self.log.recover(now=now, grace=self.lease)
        recovered += self.queue.inbox.overdue(lease=self.lease, now=now)
        for delivery in recovered:
            log.warning(
                "delivery %s for %s was left behind; queued again", delivery.id, delivery.issue_key
            )
            self.queue.enqueue(delivery)
        if self.placements is not None:
            for board in self.placements.rescue(self.boards):
                log.warning("board %d has issues waiting and no placement run; queued one", board)
        purged = self.log.purge(before=now - self.retention, keep=self.max_rows)
        if purged:
            log.info("dropped %d delivery log row(s) past retention or the size bound", purged)
        self.queue.inbox.forget_seen(now=now)
        return len(recovered)

    def run(self) -> None:
        next_sweep = 0.0
        while not self._stop.is_set():
            try:
                self.log.checkpoint()
                self.queue.inbox.checkpoint()
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.interval
                    self.sweep()
            except Exception:
                log.exception("housekeeping failed; trying again")
            self._stop.wait(CHECKPOINT_SECONDS)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="Sweeper", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()


def per_thread(make: Callable[[], Jira]) -> Callable[[], Jira]:
    """One Jira client per worker thread: clients keep what they looked up (the field id, the
    service account) and the calls they made, which must not mix between jobs."""
    local = threading.local()

    def get() -> Jira:
        client: Jira | None = getattr(local, "client", None)
        if client is None:
            client = local.client = make()
        return client

    return get


def lower_priority(nice: int) -> None:
    """Let web processes on the same machine go first: Jira waits for their answer, while the
    worker may lag and catch up. Linux puts each session in its own CPU group (autogroup), where
    a process's own nice value does not count against other sessions, so the worker's session
    is lowered too when the worker leads it (as under honcho, or a platform's process manager).
    """
    if nice <= 0:
        return
    os.nice(nice)
    if os.getsid(0) == os.getpid():
        with contextlib.suppress(OSError):
            Path("/proc/self/autogroup").write_text(str(nice))


def run_worker(
    settings: Settings, config: ImpactConfig, *, jira: Callable[[], Jira] | None = None
) -> None:
    """``jira-impact worker``: Huey's consumer in this process, plus the sweeper. Returns when
    the consumer stops (SIGINT: after running jobs finish; SIGTERM: at once). ``jira`` makes a
    Jira client (one per thread); by default the real one, all keeping to one ``Pace``."""
    from pipeline.delivery_log import check_schema
    from pipeline.queue import make_huey, warn_if_volatile
    from pipeline.scheduled import schedule_reranks
    from pipeline.sites import report_other_sites

    delivery_log = DeliveryLog.from_url(settings.database_url)
    check_schema(delivery_log.engine)
    huey = make_huey(settings)
    warn_if_volatile(huey)
    report_other_sites(huey, settings.jira_url)  # and leaves that work alone
    huey.storage.owner = name = worker_name()  # the locks it takes name it (heartbeats)
    breaker = SiteBreaker(settings.jira_url, huey.storage, probe_seconds=settings.probe_seconds)
    holds = Holds(breaker, huey.storage)
    if jira is None:
        pace = Pace(
            max_in_flight=settings.jira_max_in_flight, rate=settings.jira_max_calls_per_second
        )
        jira = functools.partial(jira_client, settings, config, pace=pace, breaker=breaker)
    prober = jira()  # a client of its own: the watch's thread probes with it
    client = per_thread(jira)
    placements = PlacementQueue(
        huey,
        delay=settings.placement_delay_seconds,
        lease=settings.lease_seconds,
        place=placer(config, client, lease=settings.lease_seconds),
    )
    worker = DeliveryWorker.from_settings(
        settings,
        huey=huey,
        log=delivery_log,
        config=config,
        jira=client,
        placements=placements,
        holds=holds,
    )
    queue = DeliveryQueue(huey, handle=worker.handle)
    boards = ranked_boards(config)

    def release(jobs: list[Job]) -> None:
        for job in jobs:
            queue.enqueue(job)
        placements.rescue(boards)  # issues waiting on a board are placed as the burst's are

    watch = HoldWatch(
        holds,
        probes={
            OUTAGE: lambda: probe_site(prober),
            CREDENTIAL: lambda: probe_credential(prober),
        },
        release=release,
        refused=metrics.credential_refused,
    )
    heartbeat = Heartbeat(
        huey.storage,
        name,
        every=settings.heartbeat_seconds,
        log=delivery_log,
        requeue=queue.enqueue,
        rescue_boards=lambda: placements.rescue(boards),
    )
    sweeper = Sweeper(
        log=delivery_log,
        queue=queue,
        lease=settings.lease_seconds,
        retention=settings.retention_hours * 3600,
        max_rows=settings.delivery_log_max_rows,
        placements=placements,
        boards=boards,
    )
    periodic = schedule_reranks(
        huey,
        config,
        client,
        minutes=settings.rerank_minutes,
        lease=settings.lease_seconds,
    )
    consumer = huey.create_consumer(
        workers=settings.worker_threads,
        worker_type="thread",
        initial_delay=0.02,  # an idle worker looks at the SQLite queue at least every 0.1 s
        backoff=1.5,
        max_delay=0.1,
        scheduler_interval=1,
        periodic=periodic,  # the board reranks of projects with rank = "full"
    )
    lower_priority(settings.worker_nice)
    logging.getLogger("huey").setLevel(logging.WARNING)  # a line per job is ours (below)
    logging.getLogger("huey.consumer").setLevel(logging.INFO)
    gc.freeze()  # what start-up made lives as long as the process: keep it out of collections
    heartbeat.start()
    sweeper.start()
    watch.start()
    try:
        consumer.run()
    finally:
        for thread in (watch, sweeper, heartbeat):
            thread.stop()


def probe_site(jira: Jira) -> None:
    """The outage's probe: one cheap call that goes while the site is held."""
    probe = getattr(jira, "probe", None)
    if probe is not None:  # a client that cannot probe (a test's fake) is taken as usable
        probe(PROBE_TIMEOUT)


def probe_credential(jira: Jira) -> None:
    """The refused credential's probe: the credential read again, then a call that needs it."""
    probe = getattr(jira, "probe_credential", None)
    if probe is not None:  # a client that cannot probe (a test's fake) is taken as usable
        probe(PROBE_TIMEOUT)


def jira_client(
    settings: Settings,
    config: ImpactConfig,
    *,
    pace: Pace | None = None,
    breaker: SiteBreaker | None = None,
) -> Jira:
    """The real Jira client for these settings (built in the worker only)."""
    from connector.client import JiraConnector

    return JiraConnector.from_settings(settings, field=config.field, pace=pace, breaker=breaker)
