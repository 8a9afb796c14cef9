"""The durable path in one process: receiver → delivery log + Huey queue → worker → FakeJira.

Jobs are run by draining the queue here (``run_jobs``), not by a consumer thread, so every test
is deterministic; ``tests/test_reliability.py`` runs the real processes.
"""

from __future__ import annotations

import copy
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from huey.exceptions import RetryTask

from commands.cli import main
from connector.errors import (
    JiraBadRequestError,
    JiraConflictError,
    JiraForbiddenError,
    JiraNotFoundError,
    JiraRateLimitError,
    JiraServerError,
    JiraUnavailableError,
)
from impact.model import Person
from pipeline.delivery import Delivery
from pipeline.delivery_log import DeliveryLog, SchemaError, make_engine, migrate
from pipeline.placements import LocalPlacements
from pipeline.queue import (
    SEEN_SECONDS,
    DeliveryQueue,
    Inbox,
    Job,
    QueueDispatcher,
    SqliteLeaseStorage,
    make_huey,
    warn_if_volatile,
)
from pipeline.worker import DeliveryWorker, RetryPolicy, Sweeper, retry_verdict
from sandbox.stack import wait_until
from service.settings import Settings, SettingsError
from tests.conftest import FakeJira, issue_payload, post_signed
from tests.servers import redis_instance, redis_server
from webhooks import create_app

LEASE = 60.0
MAX_AGE = 7200.0


class Clock:
    """The worker's clock: real time, unless a test moves it on by ``ahead`` seconds."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


@pytest.fixture
def qsettings(store_settings) -> Settings:
    return replace(
        store_settings,
        delivery_attempts=3,
        retry_base_seconds=2.0,
        lease_seconds=LEASE,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_worker(huey, dlog, config, jira, clock, **policy) -> DeliveryWorker:
    return DeliveryWorker(
        huey=huey,
        log=dlog,
        config=config,
        jira=lambda: jira,
        policy=RetryPolicy(**({"attempts": 3, "base": 2.0, "cap": 60.0} | policy)),
        lease=LEASE,
        max_age=MAX_AGE,
        placements=LocalPlacements(),
        clock=clock,
        jitter=lambda: 0.5,
    )


@pytest.fixture
def worker(huey, dlog, impact_config, jira, clock) -> DeliveryWorker:
    return make_worker(huey, dlog, impact_config, jira, clock)


@pytest.fixture
def queue(huey, worker) -> DeliveryQueue:
    return DeliveryQueue(huey, handle=worker.handle)


def queue_client(settings, config, dlog, queue):
    dispatcher = QueueDispatcher(log=dlog, queue=queue)
    app = create_app(
        {"SETTINGS": settings, "IMPACT": config, "DISPATCHER": dispatcher, "TESTING": True}
    )
    return app.test_client()


@pytest.fixture
def qclient(qsettings, impact_config, dlog, queue):
    return queue_client(qsettings, impact_config, dlog, queue)


def run_jobs(huey, clock: Clock | None = None, *, limit: int = 50) -> int:
    """Run what the queue holds, as the consumer would. With ``clock``, time moves on an hour
    before each job, for the worker and the queue alike, so scheduled retries come due too.
    Returns the number of jobs run."""
    for ran in range(limit):
        now = None
        if clock is not None:
            clock.ahead += 3600
            now = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=clock.ahead)
            for task in huey.read_schedule(now):
                huey.enqueue(task)
        task = huey.dequeue()
        if task is None:
            return ran
        huey.execute(task, now)
    raise AssertionError(f"still jobs after {limit}")


def webhook_id(n: int) -> dict[str, str]:
    return {"X-Atlassian-Webhook-Identifier": f"wh-{n}"}


def send(client, jira: FakeJira, n: int, key: str = "SHOP-311", **headers: str):
    """Post delivery ``wh-n`` about ``key``, an issue Jira also serves (for a worker that
    re-reads it)."""
    payload = issue_payload(key=key)
    jira.issues[key] = payload["issue"]
    return post_signed(client, payload, headers=webhook_id(n) | headers)


# --------------------------------------------------------------------------------------------
# Receiver → log + queue


def test_accepted_delivery_waits_in_the_inbox_with_its_job_and_jira_not_called(
    qclient, dlog, huey, jira
):
    payload = issue_payload()
    r = post_signed(qclient, payload, headers=webhook_id(1))
    assert r.status_code == 202
    assert r.json == {"status": "queued", "delivery": "wh-1", "issue": "SHOP-311"}
    waiting = Inbox(huey).take("wh-1")
    assert (waiting.event, waiting.issue_key) == ("jira:issue_created", "SHOP-311")
    assert json.loads(waiting.body) == payload
    assert waiting.event_ms == payload["timestamp"]
    assert huey.pending_count() == 1
    assert dlog.counts() == {}  # the web process writes the log only for a duplicate
    assert jira.requests == []


def test_the_worker_moves_the_delivery_from_the_inbox_to_the_log(qclient, dlog, huey, jira):
    post_signed(qclient, issue_payload(), headers=webhook_id(1))
    run_jobs(huey)
    assert Inbox(huey).size() == 0
    assert not huey.lock_task("issue.SHOP-311").is_locked()
    entry = dlog.get("wh-1")
    assert (entry.status, entry.issue_key, entry.event) == (
        "done",
        "SHOP-311",
        "jira:issue_created",
    )


def test_same_delivery_five_times_is_queued_once(qclient, dlog, huey, jira):
    answers = [
        post_signed(qclient, issue_payload(), headers=webhook_id(1)).json["status"]
        for _ in range(5)
    ]
    assert answers == ["queued"] + ["duplicate"] * 4
    assert huey.pending_count() == 1
    assert dlog.counts() == {"duplicate": 4}
    run_jobs(huey)
    assert dlog.counts() == {"done": 1, "duplicate": 4}
    assert jira.requests == ["POST comment/SHOP-311", "PUT issue/SHOP-311"]
    again = post_signed(qclient, issue_payload(), headers=webhook_id(1))  # after it ran
    assert again.json["status"] == "duplicate"


def test_without_identifier_the_body_hash_dedupes(qclient, huey):
    one, other = issue_payload(key="SHOP-1"), issue_payload(key="SHOP-2")
    assert post_signed(qclient, one).json["status"] == "queued"
    assert post_signed(qclient, one).json["status"] == "duplicate"
    assert post_signed(qclient, other).json["status"] == "queued"
    assert huey.pending_count() == 2


def test_identifiers_are_remembered_for_two_days(qclient, huey):
    payload = issue_payload()
    assert post_signed(qclient, payload, headers=webhook_id(1)).json["status"] == "queued"
    inbox = Inbox(huey)
    assert inbox.forget_seen(now=time.time() + SEEN_SECONDS - 60) == 0
    assert post_signed(qclient, payload, headers=webhook_id(1)).json["status"] == "duplicate"
    # its identifier and its body's digest
    assert inbox.forget_seen(now=time.time() + SEEN_SECONDS + 60) == 2


def test_queue_store_failure_is_503_with_nothing_kept_and_jiras_retry_is_then_accepted(
    qclient, dlog, huey, monkeypatch
):
    with huey.storage.db(commit=True) as cursor:  # the job's insert fails, inside accept's
        cursor.execute("alter table task rename to task_away")  # one transaction
    r = post_signed(qclient, issue_payload(), headers=webhook_id(1))
    with huey.storage.db(commit=True) as cursor:
        cursor.execute("alter table task_away rename to task")
    assert r.status_code == 503
    assert r.json["error"] == "unavailable"
    assert "task" not in r.get_data(as_text=True)  # no internals in the answer
    assert (Inbox(huey).size(), huey.pending_count(), dlog.counts()) == (0, 0, {})
    retried = webhook_id(1) | {"X-Atlassian-Webhook-Retry": "1"}
    again = post_signed(qclient, issue_payload(), headers=retried)
    assert again.status_code == 202
    assert again.json["status"] == "queued"


def test_log_store_down_the_delivery_is_still_taken_and_logged_once_it_is_back(
    qsettings, impact_config, huey, jira, clock
):
    unmigrated = DeliveryLog.from_url(qsettings.database_url)  # no tables
    worker = make_worker(huey, unmigrated, impact_config, jira, clock)
    client = queue_client(qsettings, impact_config, unmigrated, DeliveryQueue(huey, worker.handle))
    assert send(client, jira, 1).json["status"] == "queued"
    assert send(client, jira, 1).json["status"] == "duplicate"  # answered, though not noted
    run_jobs(huey)  # the worker cannot log it: the job waits
    assert Inbox(huey).size() == 1
    assert jira.requests == []
    migrate(unmigrated.engine)
    run_jobs(huey, clock)
    assert unmigrated.get("wh-1").status == "done"
    assert Inbox(huey).size() == 0
    # an hour late by then, but nothing newer came in for the issue, and this is its first
    # attempt in the log: nothing is read first
    assert jira.requests == ["POST comment/SHOP-311", "PUT issue/SHOP-311"]


def test_default_app_uses_the_queue_and_refuses_an_unmigrated_log(qsettings, impact_config):
    with pytest.raises(SchemaError, match="jira-impact db upgrade"):
        create_app({"SETTINGS": qsettings, "IMPACT": impact_config})
    migrate(make_engine(qsettings.database_url))
    app = create_app({"SETTINGS": qsettings, "IMPACT": impact_config})
    assert isinstance(app.extensions["impact.receiver"].dispatcher, QueueDispatcher)


# --------------------------------------------------------------------------------------------
# Worker


def test_worker_triages_and_records_plan_and_calls(qclient, dlog, huey, jira):
    post_signed(qclient, issue_payload(), headers=webhook_id(1))
    assert run_jobs(huey) == 1
    entry = dlog.get("wh-1")
    assert (entry.status, entry.attempts, entry.error) == ("done", 1, None)
    assert entry.plan.startswith("SHOP-311: missing")
    assert "+needs-customer-impact" in entry.plan
    head, *calls = entry.calls.splitlines()
    assert head.startswith("attempt 1 at 20")
    assert calls == [
        "  POST /rest/api/2/issue/SHOP-311/comment -> 201",
        "  PUT /rest/api/2/issue/SHOP-311 -> 204",
    ]
    assert jira.requests == ["POST comment/SHOP-311", "PUT issue/SHOP-311"]


def test_a_jobs_jira_calls_end_before_its_issue_lock_expires(qclient, huey, jira):
    post_signed(qclient, issue_payload(), headers=webhook_id(1))
    run_jobs(huey)
    assert jira.time_limits == [LEASE * 0.8]  # the README: within 0.8 of the lock's life
    assert jira.requests and jira.unlimited == []  # every call inside the limit


def test_a_job_handed_out_twice_runs_once(qclient, huey, queue, dlog, jira):
    post_signed(qclient, issue_payload(), headers=webhook_id(1))
    queue.enqueue(Job("wh-1", "SHOP-311"))  # as the sweeper would, thinking it lost
    assert run_jobs(huey) == 2
    assert len(jira.applied) == 1


@pytest.mark.parametrize(
    ("headers", "age", "reads_issue_first"),
    [
        ({}, 0.0, False),  # the body is the issue as it is
        ({"X-Atlassian-Webhook-Retry": "2"}, 0.0, False),  # Jira's retry: the same body
        ({}, 600.0, False),  # waited in the queue, and nothing newer came in
        ({}, MAX_AGE + 1, True),  # waited longer than WEBHOOK_MAX_AGE_SECONDS
    ],
)
def test_only_stale_deliveries_reread_the_issue(
    qclient, huey, jira, clock, headers, age, reads_issue_first
):
    payload = issue_payload(key="SHOP-9")
    jira.issues["SHOP-9"] = payload["issue"]
    post_signed(qclient, payload, headers=webhook_id(1) | headers)
    clock.ahead = age
    run_jobs(huey)
    assert jira.requests.count("GET issue/SHOP-9") == (1 if reads_issue_first else 0)
    assert (jira.requests[0] == "GET issue/SHOP-9") is reads_issue_first


def test_jira_5xx_is_retried_later_and_the_retry_looks_for_an_earlier_ask(
    qclient, dlog, huey, jira, clock
):
    payload = issue_payload(key="SHOP-9")
    jira.issues["SHOP-9"] = payload["issue"]
    jira.fail_with = JiraServerError("Service Unavailable", status=503)
    post_signed(qclient, payload, headers=webhook_id(1))
    run_jobs(huey)
    entry = dlog.get("wh-1")
    assert (entry.status, entry.attempts) == ("queued", 1)
    assert "Jira 503" in entry.error
    assert huey.scheduled_count() == 1
    assert jira.applied == []

    jira.requests.clear()
    run_jobs(huey, clock)
    entry = dlog.get("wh-1")
    assert (entry.status, entry.attempts, entry.error) == ("done", 2, None)
    assert [line.split(" at ")[0] for line in entry.calls.splitlines() if " at " in line] == [
        "attempt 1",
        "attempt 2",
    ]
    # The first attempt may have posted the ask before it failed: the second looks first.
    assert jira.requests == ["GET comments/SHOP-9", "POST comment/SHOP-9", "PUT issue/SHOP-9"]
    assert len(jira.applied) == 1


@pytest.mark.parametrize(
    "error",
    [
        JiraBadRequestError(
            "Field 'labels' cannot be set", status=400, messages=("not on screen",)
        ),
        JiraForbiddenError("no permission", status=403),
        JiraNotFoundError("Issue does not exist", status=404),
    ],
)
def test_jira_4xx_fails_at_once_keeping_jiras_message(qclient, dlog, huey, jira, clock, error):
    jira.fail_with = error
    send(qclient, jira, 1)
    run_jobs(huey, clock)
    entry = dlog.get("wh-1")
    assert (entry.status, entry.attempts) == ("failed", 1)
    assert str(error) in entry.error
    assert f"Jira {error.status}" in entry.error
    assert huey.scheduled_count() == 0


class AlwaysFailing(FakeJira):
    def apply_plan(self, plan, *, may_have_asked=True):
        self.requests.append(f"PUT issue/{plan.issue_key}")
        raise JiraServerError("Internal Server Error", status=500)


def test_out_of_attempts_is_dead_then_replayable_from_the_cli(
    qsettings, impact_config, huey, dlog, clock, monkeypatch
):
    failing = AlwaysFailing()
    worker = make_worker(huey, dlog, impact_config, failing, clock, base=1.0, cap=5.0)
    client = queue_client(qsettings, impact_config, dlog, DeliveryQueue(huey, worker.handle))
    send(client, failing, 1)
    run_jobs(huey, clock)
    entry = dlog.get("wh-1")
    assert (entry.status, entry.attempts) == ("dead", 3)
    assert entry.error.startswith("gave up after 3 attempt(s): Jira 500")
    assert failing.requests.count("PUT issue/SHOP-311") == 3

    use_env(monkeypatch, qsettings)
    result = CliRunner().invoke(main, ["deliveries", "replay", "--all-dead"])
    assert result.exit_code == 0, result.output
    assert "queued wh-1 (SHOP-311)" in result.output
    assert dlog.get("wh-1").status == "queued"
    healthy = FakeJira(issues=failing.issues)
    worker.jira = lambda: healthy
    run_jobs(huey)
    assert dlog.get("wh-1").status == "done"
    assert len(healthy.applied) == 1


def test_busy_issue_makes_the_job_wait_not_fail(qclient, huey, dlog, jira, clock):
    send(qclient, jira, 1)
    lock = huey.lock_task("issue.SHOP-311", ttl=60)
    lock.acquire()
    run_jobs(huey)
    assert dlog.get("wh-1") is None  # not taken from the inbox while the issue is busy
    assert Inbox(huey).size() == 1
    assert huey.scheduled_count() == 1
    lock.release()
    run_jobs(huey, clock)
    assert dlog.get("wh-1").status == "done"


def test_busy_issue_raises_retry_task(huey, worker):
    huey.lock_task("issue.SHOP-5", ttl=60).acquire()
    with pytest.raises(RetryTask):
        worker.handle(Job("x", "SHOP-5"))


def test_a_delivery_costs_the_queue_store_no_revocation_steps(qclient, huey, dlog, jira):
    steps: list[str] = []
    storage = huey.storage
    for name in ("peek_many", "peek_data", "pop_data", "delete_data"):
        real = getattr(storage, name)
        setattr(storage, name, lambda *a, _n=name, _f=real: steps.append(_n) or _f(*a))
    send(qclient, jira, 1)
    assert run_jobs(huey) == 1
    assert dlog.get("wh-1").status == "done"
    assert steps == []  # Huey would look up and clear the job's revocation key around it


def test_deliveries_cannot_be_revoked(huey):
    with pytest.raises(NotImplementedError, match="not revoked"):
        huey.revoke_by_id("any")
    assert huey.is_revoked("any") is False


ACCEPT = {"due": 0.0, "digest": "sha256:d1", "issue": None, "event_ms": None}


def writing_elsewhere(path) -> sqlite3.Connection:
    """Another process's connection, in the middle of a write to ``path``."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("begin exclusive")
    return other


def test_a_sqlite_writer_waits_for_another_process_s_write_then_goes_ahead(tmp_path):
    storage = SqliteLeaseStorage("t", filename=str(tmp_path / "queue.db"), timeout=30)
    other = writing_elsewhere(tmp_path / "queue.db")
    took = threading.Event()
    writer = threading.Thread(
        target=lambda: took.set() if storage.accept("d1", b"r", b"m", **ACCEPT) else None
    )
    writer.start()
    assert not took.wait(0.2)  # it waits for the lock, it does not fail
    other.execute("commit")
    writer.join(10)
    assert took.is_set() and storage.inbox_get("d1") == b"r"


def test_a_sqlite_writer_gives_up_after_its_timeout_with_sqlites_error(tmp_path):
    storage = SqliteLeaseStorage("t", filename=str(tmp_path / "queue.db"), timeout=0.1)
    other = writing_elsewhere(tmp_path / "queue.db")
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        storage.accept("d1", b"r", b"m", **ACCEPT)
    other.execute("rollback")
    assert storage.accept("d1", b"r", b"m", **ACCEPT) is True  # nothing half-done was left
    assert storage.conn.execute("pragma busy_timeout").fetchone() == (100,)


def test_sqlite_lock_expires_after_its_ttl(tmp_path):
    storage = SqliteLeaseStorage("t", filename=str(tmp_path / "queue.db"))
    assert storage.put_if_empty("lock", b"1", ttl=60) is True
    assert storage.put_if_empty("lock", b"1", ttl=60) is False
    storage.sql("update kv_expiry set expires = 0", commit=True)  # as if 60 s had passed
    assert storage.put_if_empty("lock", b"1", ttl=60) is True
    assert storage.put_if_empty("plain", b"1") is True
    assert storage.put_if_empty("plain", b"1") is False


def test_sweeper_requeues_what_a_killed_worker_left_and_purges_old_rows(
    qclient, huey, dlog, queue, jira, clock
):
    send(qclient, jira, 1, key="SHOP-1")
    send(qclient, jira, 2, key="SHOP-2")
    now = time.time()
    huey.storage.flush_queue()  # the queue lost both jobs, e.g. a worker killed after taking them
    inbox = Inbox(huey)
    dlog.admit(inbox.take("wh-1"))  # and it had moved one to the log and started it
    inbox.unlock("issue.SHOP-1", drop="wh-1")
    dlog.claim("wh-1", now=now, lease=LEASE)
    sweeper = Sweeper(log=dlog, queue=queue, lease=LEASE, retention=24 * 3600, clock=lambda: now)
    assert sweeper.sweep() == 0  # within the lease and grace: nothing yet
    sweeper.clock = lambda: now + LEASE + 1
    assert sweeper.sweep() == 2  # the run past its lease (log), the delivery left in the inbox
    assert sweeper.sweep() == 0  # each comes back once per lease
    clock.ahead = LEASE + 1
    run_jobs(huey)
    assert {dlog.get("wh-1").status, dlog.get("wh-2").status} == {"done"}
    assert len(jira.applied) == 2
    sweeper.clock = lambda: now + 25 * 3600
    sweeper.sweep()
    assert dlog.counts() == {}


def backlog_is_not_mistaken_for_lost_jobs(huey, dlog) -> None:
    """A queue hours long: nothing is queued twice. A job a killed worker took: queued again once
    the head of the queue has moved a lease past it, or the queue is empty."""
    queue = DeliveryQueue(huey)
    t0 = 1_700_000_000.0  # in the past
    for n, at in [(1, t0), (2, t0 + 30), (3, t0 + LEASE + 20)]:
        body = json.dumps(issue_payload(key=f"SHOP-{n}"))
        queue.accept(Delivery(f"wh-{n}", "jira:issue_updated", f"SHOP-{n}", body, received_at=at))
    sweeper = Sweeper(log=dlog, queue=queue, lease=LEASE, retention=24 * 3600, clock=lambda: 0.0)

    sweeper.clock = lambda: t0 + 3 * 3600  # the worker was down for three hours
    assert sweeper.sweep() == 0
    assert huey.pending_count() == 3

    huey.dequeue()  # a worker takes wh-1's job and is killed before moving it to the log
    huey.dequeue()  # and wh-2's, likewise
    assert queue.inbox.queued_at_head() == t0 + LEASE + 20
    assert sweeper.sweep() == 1  # wh-1 is a lease older than the head; wh-2 is not yet
    assert huey.pending_count() == 2
    huey.dequeue()  # wh-3
    assert queue.inbox.queued_at_head() == pytest.approx(time.time(), abs=60)  # wh-1's new job
    huey.dequeue()  # wh-1 again: every job is lost now, and the queue is empty
    assert queue.inbox.queued_at_head() is None
    later = time.time() + LEASE + 1
    assert sorted(d.id for d in queue.inbox.overdue(lease=LEASE, now=later)) == [
        "wh-1",
        "wh-2",
        "wh-3",
    ]


def test_a_backlog_is_not_mistaken_for_lost_jobs(huey, dlog):
    backlog_is_not_mistaken_for_lost_jobs(huey, dlog)


# --------------------------------------------------------------------------------------------
# Retry policy (pure)

POLICY = RetryPolicy(attempts=5, base=2.0, cap=30.0)


@pytest.mark.parametrize(
    ("error", "attempt", "status", "low", "high"),
    [
        (JiraRateLimitError("slow down", status=429, retry_after=7), 1, "retry", 7.0, 8.85),
        (JiraRateLimitError("slow down", status=429, retry_after=40), 2, "retry", 40.0, 50.1),
        (JiraRateLimitError("slow down", status=429), 1, "retry", 1.5, 2.5),
        # a 5xx's Retry-After is the least wait: the backoff when that is longer
        (JiraServerError("busy", status=503, retry_after=3), 3, "retry", 6.0, 10.0),
        (JiraServerError("busy", status=503, retry_after=20), 1, "retry", 20.0, 25.1),
        (JiraServerError("boom", status=500), 1, "retry", 1.5, 2.5),
        (JiraServerError("boom", status=502), 3, "retry", 6.0, 10.0),
        (JiraServerError("boom", status=500), 4, "retry", 12.0, 20.0),
        (JiraUnavailableError("timed out"), 2, "retry", 3.0, 5.0),
        (JiraConflictError("conflict", status=409), 1, "retry", 1.5, 2.5),
        (RuntimeError("bug"), 1, "retry", 1.5, 2.5),
        (JiraServerError("boom", status=500), 5, "dead", 0.0, 0.0),
        (JiraRateLimitError("slow down", status=429, retry_after=1), 5, "dead", 0.0, 0.0),
        (JiraBadRequestError("bad", status=400), 1, "failed", 0.0, 0.0),
        (JiraForbiddenError("no", status=403), 2, "failed", 0.0, 0.0),
        (JiraNotFoundError("gone", status=404), 1, "failed", 0.0, 0.0),
        (ValueError("body is not JSON"), 1, "failed", 0.0, 0.0),
    ],
)
@pytest.mark.parametrize("jitter", [0.0, 0.999])
def test_retry_verdict(error, attempt, status, low, high, jitter):
    verdict = retry_verdict(error, attempt, POLICY, jitter)
    assert verdict.status == status
    assert low <= verdict.delay <= high
    assert verdict.reason


def test_backoff_is_capped_and_default_budget_is_about_an_hour():
    assert POLICY.backoff(50, 0.5) == 30.0
    assert 50 * 60 <= RetryPolicy().total() <= 75 * 60


# --------------------------------------------------------------------------------------------
# Settings and the command line

BASE_ENV = {
    "JIRA_URL": "https://jira.invalid",
    "JIRA_PAT": "pat",
    "JIRA_WEBHOOK_SECRET": "a-test-secret",
}


def test_queue_settings_defaults():
    s = Settings.from_env(BASE_ENV)
    assert (s.queue_path, s.worker_threads, s.delivery_attempts) == ("var/queue.db", 4, 12)
    assert s.worker_nice == 19
    assert (s.retry_base_seconds, s.retry_max_seconds) == (5.0, 900.0)
    assert (s.lease_seconds, s.retention_hours, s.delivery_log_max_rows) == (300.0, 336.0, 10**6)
    assert (s.jira_max_in_flight, s.jira_max_calls_per_second) == (4, 10.0)
    assert (s.placement_delay_seconds, s.webhook_max_age_seconds) == (2.0, 7200.0)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"WORKER_THREADS": "0"}, "WORKER_THREADS=0 is out of range"),
        ({"WORKER_NICE": "20"}, "WORKER_NICE=20 is out of range"),
        ({"DELIVERY_ATTEMPTS": "many"}, "DELIVERY_ATTEMPTS='many' is not a whole number"),
        ({"RETRY_BASE_SECONDS": "soon"}, "RETRY_BASE_SECONDS='soon' is not a number"),
        ({"RETRY_BASE_SECONDS": "nan"}, "RETRY_BASE_SECONDS=nan is out of range"),
        ({"RETRY_BASE_SECONDS": "60", "RETRY_MAX_SECONDS": "10"}, "RETRY_MAX_SECONDS=10 is below"),
        ({"WEBHOOK_MAX_AGE_SECONDS": "1800"}, "WEBHOOK_MAX_AGE_SECONDS=1800 is out of range"),
        ({"WEBHOOK_MAX_AGE_SECONDS": "200000"}, "WEBHOOK_MAX_AGE_SECONDS=200000 is out of"),
        ({"JIRA_MAX_IN_FLIGHT": "0"}, "JIRA_MAX_IN_FLIGHT=0 is out of range"),
        ({"JIRA_MAX_CALLS_PER_SECOND": "0"}, "JIRA_MAX_CALLS_PER_SECOND=0 is out of range"),
        ({"PLACEMENT_DELAY_SECONDS": "-1"}, "PLACEMENT_DELAY_SECONDS=-1 is out of range"),
        ({"DELIVERY_LOG_MAX_ROWS": "10"}, "DELIVERY_LOG_MAX_ROWS=10 is out of range"),
        ({"DELIVERY_LEASE_SECONDS": "0.5"}, "DELIVERY_LEASE_SECONDS=0.5 is out of range"),
        ({"DELIVERY_RETENTION_HOURS": "2"}, "DELIVERY_RETENTION_HOURS=2 is out of range (24"),
    ],
)
def test_bad_queue_settings_name_the_variable(change, problem):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(BASE_ENV | change)
    assert any(problem in p for p in info.value.problems), info.value.problems


def test_worker_lowers_its_own_priority():
    code = "import os, pipeline.worker as w; w.lower_priority(7); print(os.nice(0))"
    before = os.nice(0)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(done.stdout) == min(19, before + 7)
    assert os.nice(0) == before  # the caller is untouched


def use_env(monkeypatch, s: Settings) -> None:
    env = BASE_ENV | {"DATABASE_URL": s.database_url, "QUEUE_PATH": s.queue_path}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)


def test_cli_db_upgrade_works_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/elsewhere/impact.db")
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "at schema 0001" in result.output
    assert (tmp_path / "elsewhere" / "impact.db").exists()


def test_cli_lists_and_shows_deliveries(qclient, qsettings, huey, jira, monkeypatch):
    jira.fail_with = JiraNotFoundError("Issue does not exist", status=404)
    post_signed(qclient, issue_payload(key="SHOP-1"), headers=webhook_id(1))
    post_signed(qclient, issue_payload(key="SHOP-2"), headers=webhook_id(2))
    post_signed(qclient, issue_payload(key="SHOP-2"), headers=webhook_id(2))
    run_jobs(huey)
    use_env(monkeypatch, qsettings)
    runner = CliRunner()
    listed = runner.invoke(main, ["deliveries", "list"])
    assert listed.exit_code == 0, listed.output
    assert "1 done, 1 duplicate, 1 failed" in listed.output
    failed = runner.invoke(main, ["deliveries", "list", "--status", "failed"]).output
    assert "wh-1" in failed
    assert "Issue does not exist" in failed
    assert "wh-2" not in failed
    shown = runner.invoke(main, ["deliveries", "show", "wh-2"])
    assert "POST /rest/api/2/issue/SHOP-2/comment -> 201" in shown.output
    assert runner.invoke(main, ["deliveries", "show", "nope"]).exit_code == 1


def test_cli_replay_by_id_and_usage_errors(qclient, qsettings, huey, monkeypatch):
    post_signed(qclient, issue_payload(), headers=webhook_id(1))
    run_jobs(huey)
    use_env(monkeypatch, qsettings)
    runner = CliRunner()
    result = runner.invoke(main, ["deliveries", "replay", "wh-1", "wh-404"])
    assert result.exit_code == 1
    assert "queued wh-1" in result.output
    assert "not replayed: wh-404" in result.output
    assert huey.pending_count() == 1
    assert runner.invoke(main, ["deliveries", "replay"]).exit_code == 2
    assert runner.invoke(main, ["deliveries", "replay", "wh-1", "--all-dead"]).exit_code == 2


# --------------------------------------------------------------------------------------------
# Redis (a real server)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def test_redis_backend_queues_dedupes_and_locks(
    redis_url, qsettings, impact_config, dlog, jira, clock
):
    s = replace(qsettings, redis_url=redis_url)
    huey = make_huey(s)
    huey.flush()
    worker = DeliveryWorker.from_settings(
        s,
        huey=huey,
        log=dlog,
        config=impact_config,
        jira=lambda: jira,
        placements=LocalPlacements(),
    )
    client = queue_client(s, impact_config, dlog, DeliveryQueue(huey, handle=worker.handle))
    for _ in range(3):
        post_signed(client, issue_payload(), headers=webhook_id(1))
    assert huey.pending_count() == 1
    assert Inbox(huey).size() == 1
    assert dlog.counts() == {"duplicate": 2}
    assert type(huey).__name__ == "RedisInboxHuey"

    lock = huey.lock_task("issue.SHOP-311", ttl=60)
    lock.acquire()
    key = huey.storage.result_key(f"{huey.name}.lock.issue.SHOP-311")
    assert 0 < huey.storage.conn.ttl(key) <= 60  # a killed worker's lock runs out
    run_jobs(huey)
    assert dlog.get("wh-1") is None  # waited for the lock, still in the inbox
    lock.release()
    run_jobs(huey, clock)
    assert dlog.get("wh-1").status == "done"
    assert jira.requests == ["POST comment/SHOP-311", "PUT issue/SHOP-311"]
    assert Inbox(huey).size() == 0  # dropped as the worker let go of the issue
    assert not huey.lock_task("issue.SHOP-311").is_locked()


def test_on_redis_a_delivery_costs_the_worker_three_round_trips(
    redis_url, qsettings, impact_config, dlog, jira
):
    s = replace(qsettings, redis_url=redis_url)
    web, huey = make_huey(s, web=True), make_huey(s)
    huey.flush()
    worker = DeliveryWorker.from_settings(
        s,
        huey=huey,
        log=dlog,
        config=impact_config,
        jira=lambda: jira,
        placements=LocalPlacements(),
    )
    client = queue_client(s, impact_config, dlog, DeliveryQueue(web))
    DeliveryQueue(huey, handle=worker.handle)
    send(client, jira, 1, key="SHOP-1")
    run_jobs(huey)  # the first job loads the worker's script into Redis
    send(client, jira, 2, key="SHOP-2")
    huey.storage.conn.config_resetstat()
    assert run_jobs(huey) == 1
    assert dlog.get("wh-2").status == "done"
    stats = huey.storage.conn.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items()}
    del calls["config|resetstat"]
    assert calls.pop("brpop") == 2  # the job, then the empty queue that ends the drain
    # lock the issue and read the delivery and the issue's newest event time (one script: SET
    # NX EX, GET, HGET); unlock and drop it (one MULTI); no revocation look-up (MGET) or
    # clean-up (a second DEL)
    assert calls == {"evalsha": 1, "set": 1, "get": 1, "hget": 1, "multi": 1, "del": 1,
                     "hdel": 1, "zrem": 1, "exec": 1}  # fmt: skip


def test_redis_backlog_is_not_mistaken_for_lost_jobs(redis_url, qsettings, dlog):
    huey = make_huey(replace(qsettings, redis_url=redis_url))
    huey.flush()
    backlog_is_not_mistaken_for_lost_jobs(huey, dlog)


def test_a_redis_killed_right_after_the_202s_keeps_every_delivery(
    qsettings, impact_config, dlog, jira
):
    with redis_instance() as server:
        s = replace(qsettings, redis_url=server.url)
        huey = make_huey(s)
        worker = DeliveryWorker.from_settings(
            s,
            huey=huey,
            log=dlog,
            config=impact_config,
            jira=lambda: jira,
            placements=LocalPlacements(),
        )
        DeliveryQueue(huey, handle=worker.handle)
        # the web side as a web process has it: one connection, kept across Redis's restart
        client = queue_client(s, impact_config, dlog, DeliveryQueue(make_huey(s, web=True)))
        keys = [f"SHOP-{n}" for n in range(5)]
        assert {send(client, jira, n, key=key).json["status"] for n, key in enumerate(keys)} == {
            "queued"
        }
        server.kill()  # SIGKILL, with nothing logged yet: the inbox is all there is
        server.start()
        assert (Inbox(huey).size(), huey.pending_count()) == (5, 5)
        assert send(client, jira, 0, key=keys[0]).json["status"] == "duplicate"  # still known
        assert run_jobs(huey) == 5
        assert {dlog.get(f"wh-{n}").status for n in range(5)} == {"done"}
        assert sorted(plan.issue_key for plan in jira.applied) == keys  # each edited once


def test_a_redis_without_append_only_file_is_named_at_start_up(redis_url, caplog):
    huey = make_huey(Settings.from_env(BASE_ENV | {"REDIS_URL": redis_url}))
    warn_if_volatile(huey)  # the test server runs with appendonly yes
    assert "appendonly" not in caplog.text
    real_info = huey.storage.conn.info("persistence")
    assert real_info["aof_enabled"] == 1
    huey.storage.conn.info = lambda section: real_info | {"aof_enabled": 0}  # as without it
    warn_if_volatile(huey)
    assert "REDIS_URL: this Redis keeps no append-only file" in caplog.text


def test_redis_url_in_environment_moves_the_queue(redis_url):
    s = Settings.from_env(BASE_ENV | {"REDIS_URL": redis_url})
    assert type(make_huey(s)).__name__ == "RedisInboxHuey"


# --------------------------------------------------------------------------------------------
# Replayed, late and out-of-order deliveries, on both stores


@pytest.fixture(params=["sqlite", "redis"])
def store(request, qsettings, impact_config, dlog, jira, clock):
    """(client, huey) for a web process and a worker sharing one queue, on either store."""
    s = qsettings
    if request.param == "redis":
        with redis_server() as url:
            s = replace(qsettings, redis_url=url)
            yield _stores(s, impact_config, dlog, jira, clock)
        return
    yield _stores(s, impact_config, dlog, jira, clock)


def _stores(s, impact_config, dlog, jira, clock):
    huey = make_huey(s)
    huey.flush()
    worker = make_worker(huey, dlog, impact_config, jira, clock)
    DeliveryQueue(huey, handle=worker.handle)
    return queue_client(s, impact_config, dlog, DeliveryQueue(make_huey(s, web=True))), huey


def test_a_replay_of_an_accepted_body_under_a_new_identifier_does_nothing(store, dlog, jira):
    client, huey = store
    payload = issue_payload(key="SHOP-9")
    assert post_signed(client, payload, headers=webhook_id(1)).json["status"] == "queued"
    for n in range(2, 52):  # fifty captured copies, each with an identifier of its own
        assert post_signed(client, payload, headers=webhook_id(n)).json["status"] == "duplicate"
    run_jobs(huey)
    assert len(jira.applied) == 1
    assert dlog.counts() == {"done": 1, "duplicate": 50}


def test_a_delivery_older_than_one_accepted_for_its_issue_reads_the_issue_again(store, dlog, jira):
    """A person set the impact after the issue was created; Jira delivers the creation late.
    The late body shows no impact: acting on it would ask for one and label the issue as
    missing. It is read again instead, and the issue carries the label of what it is."""
    client, huey = store
    created = issue_payload(key="SHOP-9", labels=())
    updated = issue_payload(
        event="jira:issue_updated",
        key="SHOP-9",
        labels=(),
        impact="Blocks paying customers",
        actor=Person(account_id="557058:ana", display_name="Ana"),
    )
    updated["timestamp"] = created["timestamp"] + 5_000
    # what Jira holds by the time the late delivery is run: the person's value, our edit
    jira.issues["SHOP-9"] = copy.deepcopy(updated["issue"])
    jira.issues["SHOP-9"]["fields"]["labels"] = ["customer-impact-blocking"]
    jira.issues["SHOP-9"]["fields"]["priority"] = {"name": "Highest"}
    post_signed(client, updated, headers=webhook_id(2))
    post_signed(client, created, headers=webhook_id(1))  # late, out of order
    run_jobs(huey)
    # the update labels the issue; the late creation reads it again and finds nothing to do:
    # no ask, no missing label
    assert jira.requests == ["PUT issue/SHOP-9", "GET issue/SHOP-9"]
    (plan,) = jira.applied
    assert plan.add_labels == ("customer-impact-blocking",) and plan.comment is None
    assert dlog.get("wh-1").plan == "SHOP-9: blocking (field) no change"


def test_the_log_keeps_at_most_its_bound_of_finished_rows_and_every_unfinished_one(dlog):
    for n in range(10):
        dlog.admit(Delivery(f"wh-{n}", "jira:issue_created", "SHOP-1", "{}", received_at=n))
    for n in range(8):
        dlog.claim(f"wh-{n}", now=100.0, lease=60)
        dlog.finish(f"wh-{n}", "done", now=100.0)
    assert dlog.purge(before=0.0, keep=5) == 5  # 10 rows, 8 finished: the 5 oldest go
    left = {e.identifier: e.status for e in dlog.entries(limit=100)}
    assert left == {"wh-5": "done", "wh-6": "done", "wh-7": "done", "wh-8": "queued",
                    "wh-9": "queued"}  # fmt: skip
    assert dlog.purge(before=0.0, keep=1) == 3  # never a delivery still to run
    assert dlog.counts() == {"queued": 2}


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_shared_counts_are_seen_by_every_process_and_run_out(backend, request, qsettings):
    """What the admin pages keep for every web process (logouts, failed attempts): counted in
    the queue's store by one process, seen by another, and gone once its window is over."""
    s = qsettings
    if backend == "redis":
        s = replace(qsettings, redis_url=request.getfixturevalue("redis_url"))
    one, two = make_huey(s, web=True).storage, make_huey(s, web=True).storage
    key = f"test.{uuid.uuid4().hex}"
    assert [one.count_up(key, ttl=0.5), two.count_up(key, ttl=0.5)] == [1, 2]
    assert one.count(key) == two.count(key) == 2
    assert two.count("test.never") == 0
    wait_until("the count's window to end", lambda: one.count(key) == 0, timeout=10)
    assert two.count_up(key, ttl=30) == 1


def test_equal_bodies_without_a_timestamp_are_two_deliveries(store, dlog, jira):
    """Without a signed timestamp two events may send the same body: only the identifier
    tells a repeat, so each is taken."""
    client, _huey = store
    payload = issue_payload(key="SHOP-9")
    del payload["timestamp"]
    assert post_signed(client, payload, headers=webhook_id(1)).json["status"] == "queued"
    assert post_signed(client, payload, headers=webhook_id(2)).json["status"] == "queued"
    assert post_signed(client, payload, headers=webhook_id(2)).json["status"] == "duplicate"


def test_a_replayed_creation_looks_for_the_ask_its_first_run_may_have_posted(
    qclient, dlog, huey, jira, queue
):
    post_signed(qclient, issue_payload(key="SHOP-9"), headers=webhook_id(1))
    jira.fail_with = JiraBadRequestError("Field 'labels' cannot be set", status=400)
    run_jobs(huey)
    assert dlog.get("wh-1").status == "failed"
    for job in dlog.replay(["wh-1"], now=time.time()):  # the admin fixed the screen
        queue.enqueue(job)
    run_jobs(huey)
    assert dlog.get("wh-1").status == "done"
    assert jira.requests == ["GET comments/SHOP-9", "POST comment/SHOP-9", "PUT issue/SHOP-9"]
