"""Jira's weather and a killed worker, end to end: the Procfile's web and worker processes
(``sandbox.stack``) against the sandbox, on the SQLite and on the Redis queue.

- Jira down (connections dropped unanswered) while issues come in, with two worker processes:
  the hold opens, every process stops sending, one probe a second goes out, and once Jira is
  back every issue is triaged, asked once, placed in band order; no delivery dies, though each
  has only 2 attempts.
- Jira answering 503 with ``Retry-After``: the same, the probes spaced by the Retry-After.
- A worker SIGKILLed mid-flight (``DELIVERY_LEASE_SECONDS`` at its default of 300 s, a short
  heartbeat): a new worker runs its jobs again at once, well within the lease.

Waits are bounded polls; no test asserts a duration but the waits Jira asked for.
"""

from __future__ import annotations

import itertools
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from connector.breaker import FAILURES_TO_OPEN
from pipeline.delivery_log import DeliveryLog, Entry
from sandbox.burst import Burst, calls_of, create_burst, figures, wait_done
from sandbox.stack import Process, Stack, procfile_command, wait_until
from tests.servers import redis_server

pytestmark = pytest.mark.e2e

METRICS_TOKEN = "outage-metrics-token"
THREADS = 4
PROBE_SECONDS = 1
OUTAGE_SECONDS = 8
LIMITS = {"latency_ms": 50, "rate": 40, "issue_writes": 10, "issue_window_s": 1}


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {}
        return
    with redis_server() as url:
        yield {"REDIS_URL": url}


def start(tmp_path: Path, backend: dict[str, str], **settings: str) -> tuple[ExitStack, Stack]:
    env = {
        "WORKER_THREADS": str(THREADS),
        "JIRA_MAX_CALLS_PER_SECOND": "40",
        "PLACEMENT_DELAY_SECONDS": "1",
        "JIRA_PROBE_SECONDS": str(PROBE_SECONDS),
        "DELIVERY_ATTEMPTS": "2",  # an outage that spent attempts would kill deliveries
        "RETRY_BASE_SECONDS": "0.5",
        "RETRY_MAX_SECONDS": "2",
        "METRICS_TOKEN": METRICS_TOKEN,
        **backend,
        **settings,
    }
    running = ExitStack()
    stack = running.enter_context(Stack(tmp_path / "stack", seed="empty", env=env))
    stack.register_webhook()
    stack.control("POST", "/faults", json={"limits": LIMITS})
    return running, stack


def second_worker(stack: Stack, running: ExitStack) -> None:
    """Another worker process on the same queue and log, as a platform scales them."""
    process = Process(
        "worker2",
        procfile_command("worker"),
        env=stack.env(),
        cwd=Path(__file__).resolve().parents[1],
        log=stack.workdir / "worker2.log",
    )
    running.callback(process.stop)


def jira_state(stack: Stack) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    answer = stack.http.get(f"{stack.app_url}/readyz", headers=headers, timeout=10)
    state: dict[str, Any] = answer.json()["jira"]
    return state


def metric(stack: Stack, name: str) -> float:
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    text = stack.http.get(f"{stack.app_url}/metrics", headers=headers, timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"/metrics shows no {name}")


def created_entries(stack: Stack) -> list[Entry]:
    log = DeliveryLog.from_url(stack.env()["DATABASE_URL"])
    try:
        return [e for e in log.entries(limit=10_000) if e.event == "jira:issue_created"]
    finally:
        log.engine.dispose()


def edits_done(stack: Stack, burst: Burst) -> int:
    return sum(
        1
        for c in calls_of(stack, burst)
        if c["method"] == "PUT" and "/issue/" in c["path"] and 200 <= c["status"] < 300
    )


def check_everything_done_once(stack: Stack, burst: Burst) -> None:
    """Every issue triaged, asked once, the board in band order; every delivery done."""
    wait_done(stack, burst, timeout=120)
    found = figures(calls_of(stack, burst), burst)
    assert found.asks == Counter(dict.fromkeys(burst.asked, 1))
    entries = created_entries(stack)
    assert sorted(e.issue_key for e in entries) == sorted(burst.bands)
    assert {e.status for e in entries} == {"done"}, [(e.issue_key, e.error) for e in entries]


def test_jira_down_holds_every_worker_and_nothing_dies(tmp_path, backend):
    running, stack = start(tmp_path, backend)
    with running:
        second_worker(stack, running)
        first = create_burst(stack, 10)
        wait_until("a few issues triaged", lambda: edits_done(stack, first) >= 3, timeout=60)
        stack.control("POST", "/outage", json={"mode": "down", "seconds": OUTAGE_SECONDS})
        more = create_burst(stack, 10)  # webhooks still come while Jira's API is down
        held = wait_until(
            "the hold in /readyz", lambda: (s := jira_state(stack))["state"] == "held" and s, 20
        )
        assert held["cause"] == "outage" and held["since"].endswith("Z")
        assert "no answer" in held["reason"]
        assert metric(stack, 'jira_impact_jira_held{cause="outage"}') == 1

        burst = Burst(first.bands | more.bands, first.started, first.first_call)
        check_everything_done_once(stack, burst)
        assert jira_state(stack)["state"] == "usable"
        assert metric(stack, "jira_impact_deliveries_held") == 0

        # While down, each process sent what it had in flight and the failures that opened
        # the hold; then only the probes went out, one a second for every process together.
        dropped = [c for c in stack.calls(first.first_call) if c["status"] == 0]
        bound = 2 * (THREADS + FAILURES_TO_OPEN) + OUTAGE_SECONDS / PROBE_SECONDS + 2
        assert 0 < len(dropped) <= bound, len(dropped)
        probes = [c for c in dropped if c["path"].endswith("/serverInfo")]
        assert probes


def test_503_with_retry_after_kills_nothing_and_the_probes_wait_for_it(tmp_path, backend):
    retry_after = 2
    running, stack = start(tmp_path, backend)
    with running:
        outage = {"mode": "503", "seconds": OUTAGE_SECONDS, "retry_after": retry_after}
        stack.control("POST", "/outage", json=outage)
        burst = create_burst(stack, 10)
        wait_until("the hold", lambda: jira_state(stack)["state"] == "held", 20)
        check_everything_done_once(stack, burst)

        refused = [c for c in stack.calls(burst.first_call) if c["status"] == 503]
        assert len(refused) <= THREADS + FAILURES_TO_OPEN + OUTAGE_SECONDS / retry_after + 2
        probes = [c["at"] for c in refused if c["path"].endswith("/serverInfo")]
        late = probes[-3:]  # the last probes, one process taking each turn after Retry-After
        assert all(b - a >= retry_after - 0.05 for a, b in itertools.pairwise(late)), probes


def test_a_killed_workers_jobs_run_again_at_once_whatever_the_lease(tmp_path, backend):
    running, stack = start(tmp_path, backend, WORKER_HEARTBEAT_SECONDS="0.2")
    with running:
        assert "DELIVERY_LEASE_SECONDS" not in stack.env()  # the default: 300 s
        # Jira answers edits slowly, so jobs are in flight when the worker is killed.
        edit = {"method": "PUT", "path": r"/rest/api/2/issue/SHOP-\d+$", "delay_ms": 400}
        stack.control("POST", "/faults", json=edit | {"times": 1000})
        burst = create_burst(stack, 12)

        def running_now() -> set[str]:
            return {e.identifier for e in created_entries(stack) if e.status == "running"}

        in_flight = wait_until("a job in flight", running_now, timeout=60)
        stack.stop_process("worker", signal.SIGKILL)
        stack.start_processes(["worker"])
        check_everything_done_once(stack, burst)  # its waits end long before 300 s
        by_id = {e.identifier: e for e in created_entries(stack)}
        assert all(by_id[i].attempts >= 2 for i in in_flight), [by_id[i] for i in in_flight]
        assert "stopped beating while running delivery" in stack.log("worker")
