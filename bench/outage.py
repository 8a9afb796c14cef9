"""Jira's weather and a killed worker, against the Procfile's processes: how soon after Jira is
back (or after a worker is killed) the work is done, and what it cost.

The sandbox plays a busy Jira Cloud, as ``bench/burst.py`` does: every call takes 150 ms, 20
calls a second get through (429 with ``Retry-After`` past that), 10 writes a second per issue;
the product runs with ``JIRA_MAX_CALLS_PER_SECOND=20`` and every other setting at its default.
Each scenario starts a fresh stack (SQLite queue and log) and creates a burst of new issues of a
known mix of impacts at once:

- **baseline**: the burst alone. Its time (first issue created → last write answered, every
  issue labelled and the board in band order), the lower bound (the writes no product can avoid,
  divided by the rate: "the rate limit's bound") and its rank calls;
- **down N s**: Jira's API drops every connection unanswered for N seconds, from when a third of
  the burst's edits are done. Printed: the last write after Jira was back (goal: within 60 s +
  1.5 × the bound), deliveries dead (goal: 0), the calls sent while down once the hold was open
  (goal: at most one every few seconds per worker process), the rank calls after the outage
  (goal: at most twice the baseline's);
- **503 with Retry-After**: Jira answers 503 with ``Retry-After: 5`` for two minutes to a small
  burst created when it starts; deliveries dead (goal: 0) and the time to done after Jira is back;
- **worker killed**: SIGKILL of the worker when a third of the burst's edits are done, a new
  worker started at once; the time from the kill to the last write (goal: 30 s), beside the
  baseline's time for the same remaining work.

Run: ``.venv/bin/python bench/outage.py`` (about 25 minutes: outages of 5 and 10 minutes);
``--outages 30 --retry-after-for 30 --issues 100`` for a quick look. All on 127.0.0.1; every
process started is stopped at the end.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.delivery_log import DeliveryLog  # noqa: E402
from sandbox.burst import Burst, calls_of, create_burst, figures, kind, wait_done  # noqa: E402
from sandbox.stack import Stack, wait_until  # noqa: E402

RATE = 20.0
LATENCY_MS = 150
RANK = "PUT /rest/agile/1.0/issue/rank"
OPEN_GRACE_S = 10.0  # calls while down are counted from this long after the outage began


def limits() -> dict[str, Any]:
    return {"latency_ms": LATENCY_MS, "rate": RATE, "issue_writes": 10, "issue_window_s": 1}


def stack_in(folder: str) -> Stack:
    env = {"JIRA_MAX_CALLS_PER_SECOND": str(RATE)}
    return Stack(Path(folder), seed="empty", env=env)


def edits(calls: list[dict[str, Any]]) -> list[float]:
    """When each accepted edit of an issue was answered, in order."""
    return sorted(
        c["at"]
        for c in calls
        if kind(c) == "PUT /rest/api/2/issue/{id}" and 200 <= (c["status"] or 0) < 300
    )


def dead_count(stack: Stack) -> Counter[str]:
    log = DeliveryLog.from_url(stack.env()["DATABASE_URL"])
    try:
        return Counter(log.counts())
    finally:
        log.engine.dispose()


def wait_edits(stack: Stack, burst: Burst, count: int) -> None:
    def enough() -> bool:
        return len(edits(calls_of(stack, burst))) >= count

    wait_until(f"{count} edits", enough, timeout=600, every=0.5)


def start(stack: Stack, issues: int) -> Burst:
    stack.register_webhook()
    stack.control("POST", "/faults", json={"limits": limits()})
    return create_burst(stack, issues)


def baseline(issues: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="outage-") as folder, stack_in(folder) as stack:
        burst = start(stack, issues)
        ended = wait_done(stack, burst, timeout=1200)
        calls = calls_of(stack, burst)
    found = figures(calls, burst)
    done = edits(calls)
    return {
        "seconds": ended - burst.started,
        "bound": found.unavoidable / RATE,
        "ranks": found.by_kind[RANK],
        "edit_times": [t - burst.started for t in done],
        "ended": ended - burst.started,
        "calls": found.calls,
    }


def down(issues: int, seconds: float, mode: str = "down") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="outage-") as folder, stack_in(folder) as stack:
        burst = start(stack, issues)
        wait_edits(stack, burst, issues // 3)
        began = time.time()
        stack.control("POST", "/outage", json={"mode": mode, "seconds": seconds})
        back = began + seconds
        ended = wait_done(stack, burst, timeout=seconds + 1200)
        calls = calls_of(stack, burst)
        statuses = dead_count(stack)
    found = figures(calls, burst)
    failed = [c for c in calls if began <= c["at"] < back]
    settled = [c for c in failed if c["at"] >= began + OPEN_GRACE_S]
    return {
        "seconds": seconds,
        "after_back": ended - back,
        "triaged_after_back": edits(calls)[-1] - back,
        "dead": statuses.get("dead", 0) + statuses.get("failed", 0),
        "calls_down": len(failed),
        "calls_settled": len(settled),
        "settled_span": max(1e-9, back - began - OPEN_GRACE_S),
        "ranks_after": sum(1 for c in calls if kind(c) == RANK and c["at"] >= back),
        "ranks": found.by_kind[RANK],
        "asked_twice": sorted(k for k, n in found.asks.items() if n > 1),
        "bound": found.unavoidable / RATE,
    }


def retry_after(issues: int, seconds: float, wait: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="outage-") as folder, stack_in(folder) as stack:
        stack.register_webhook()
        stack.control("POST", "/faults", json={"limits": limits()})
        outage = {"mode": "503", "seconds": seconds, "retry_after": wait}
        stack.control("POST", "/outage", json=outage)
        began = time.time()
        burst = create_burst(stack, issues)
        ended = wait_done(stack, burst, timeout=seconds + 600)
        calls = calls_of(stack, burst)
        statuses = dead_count(stack)
    refused = [c for c in calls if c["status"] == 503]
    return {
        "seconds": seconds,
        "dead": statuses.get("dead", 0) + statuses.get("failed", 0),
        "after_back": ended - (began + seconds),
        "refused": len(refused),
        "asked_twice": sorted(k for k, n in figures(calls, burst).asks.items() if n > 1),
    }


def killed(issues: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="outage-") as folder, stack_in(folder) as stack:
        burst = start(stack, issues)
        wait_edits(stack, burst, issues // 3)
        kill = time.time()
        stack.stop_process("worker", signal.SIGKILL)
        stack.start_processes(["worker"])
        ended = wait_done(stack, burst, timeout=1200)
        calls = calls_of(stack, burst)
        statuses = dead_count(stack)
    found = figures(calls, burst)
    return {
        "after_kill": ended - kill,
        "triaged_after_kill": edits(calls)[-1] - kill,
        "dead": statuses.get("dead", 0) + statuses.get("failed", 0),
        "asked_twice": sorted(k for k, n in found.asks.items() if n > 1),
    }


def remaining(base: dict[str, Any], done: int) -> float:
    """The baseline's time from its ``done``-th edit to its end: the same work left."""
    times = base["edit_times"]
    return float(base["ended"] - times[min(done, len(times)) - 1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issues", type=int, default=300)
    parser.add_argument("--outages", default="300,600", help="seconds Jira is down, per run")
    parser.add_argument("--retry-after-for", type=float, default=120.0)
    parser.add_argument("--retry-after-issues", type=int, default=10)
    parser.add_argument("--skip", default="", help="scenarios to leave out: down,503,kill")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    base = baseline(args.issues)
    bound = base["bound"]
    print(
        f"== baseline: {args.issues} issues, Jira at {LATENCY_MS} ms a call and {RATE:g} calls/s: "
        f"{base['seconds']:.1f} s (bound {bound:.1f} s, ratio {base['seconds'] / bound:.2f}); "
        f"{base['ranks']} rank calls; {base['calls']} calls"
    )
    if "down" not in skip:
        for seconds in (float(s) for s in args.outages.split(",")):
            r = down(args.issues, seconds)
            goal = 60 + 1.5 * bound
            ok = "met" if r["after_back"] <= goal and r["dead"] == 0 else "NOT met"
            per_second = r["calls_settled"] / r["settled_span"]
            print(
                f"== Jira down {seconds:.0f} s from a third of the burst: last issue triaged "
                f"{r['triaged_after_back']:.1f} s and the board in order "
                f"{r['after_back']:.1f} s after Jira was back (goal {goal:.1f} s: 60 + 1.5 × "
                f"{bound:.1f}; the same work left took the baseline "
                f"{remaining(base, args.issues // 3):.1f} s); dead {r['dead']}; goal {ok}"
            )
            print(
                f"   calls while down: {r['calls_down']}, of which {r['calls_settled']} after "
                f"the first {OPEN_GRACE_S:.0f} s (one every {1 / max(per_second, 1e-9):.1f} s); "
                f"rank calls after the outage {r['ranks_after']} ({r['ranks']} in all; baseline "
                f"{base['ranks']}, goal ≤ {2 * base['ranks']}); asked twice: "
                f"{r['asked_twice'] or 'none'}"
            )
    if "503" not in skip:
        r = retry_after(args.retry_after_issues, args.retry_after_for, 5)
        print(
            f"== 503 with Retry-After: 5 for {args.retry_after_for:.0f} s, "
            f"{args.retry_after_issues} issues created as it starts: dead {r['dead']} (goal 0); "
            f"done {r['after_back']:.1f} s after Jira was back; {r['refused']} calls answered "
            f"503; asked twice: {r['asked_twice'] or 'none'}"
        )
    if "kill" not in skip:
        r = killed(args.issues)
        print(
            f"== worker SIGKILLed at a third of the burst, a new one started: last issue "
            f"triaged {r['triaged_after_kill']:.1f} s, the board in order {r['after_kill']:.1f} s "
            f"after the kill (goal 30 s; the same work left took the "
            f"baseline {remaining(base, args.issues // 3):.1f} s); dead {r['dead']}; asked "
            f"twice: {r['asked_twice'] or 'none'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
