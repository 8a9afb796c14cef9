"""A bulk import end to end: a few hundred issues created at once, against a Jira that is slow
and rate-limited (the sandbox's limits), handled by the Procfile's web and worker processes with
4 worker threads, on the SQLite and the Redis queue. Every issue ends labelled for its impact,
each one without an impact is asked exactly once, and the board ends in band order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from sandbox.burst import calls_of, create_burst, figures, kind, wait_done
from sandbox.stack import Stack
from tests.servers import redis_server

pytestmark = pytest.mark.e2e

ISSUES = 300
RATE = 40  # calls a second Jira lets through
LIMITS = {"latency_ms": 40, "rate": RATE, "issue_writes": 10, "issue_window_s": 1}


@pytest.fixture(params=["sqlite", "redis"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    env = {
        "WORKER_THREADS": "4",
        "JIRA_MAX_CALLS_PER_SECOND": str(RATE),
        "PLACEMENT_DELAY_SECONDS": "1",
    }
    with ExitStack() as running:
        if request.param == "redis":
            env["REDIS_URL"] = running.enter_context(redis_server())
        yield running.enter_context(Stack(tmp_path / "stack", seed="empty", env=env))


def test_a_burst_is_triaged_asked_once_and_left_in_band_order(stack: Stack) -> None:
    stack.register_webhook()
    stack.control("POST", "/faults", json={"limits": LIMITS})
    burst = create_burst(stack, ISSUES)
    wait_done(stack, burst, timeout=240)  # raises with what is wrong: labels, band order
    calls = calls_of(stack, burst)
    found = figures(calls, burst)

    assert found.asks == Counter(dict.fromkeys(burst.asked, 1))
    # the creation deliveries carry their issues, and nothing could have asked before
    assert found.by_kind["GET /rest/api/2/issue/{id}"] == 0
    assert found.by_kind["GET /rest/api/2/issue/{id}/comment"] == 0
    edits = [c for c in calls if kind(c) == "PUT /rest/api/2/issue/{id}" and c["status"] < 300]
    assert len(edits) == ISSUES  # one edit each (a call refused with 429 is sent again)
    ranks = found.by_kind["PUT /rest/agile/1.0/issue/rank"]
    assert 0 < ranks < ISSUES / 5, ranks  # placed together, not one call per issue
    assert found.rate_limited <= 0.05 * found.calls, (found.rate_limited, found.calls)
