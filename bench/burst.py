"""A bulk import against the Procfile's processes: how close to Jira's own limit a burst gets.

The sandbox plays a busy Jira Cloud: every call takes ``--latency-ms`` (150 ms), a token bucket
lets ``--rate`` calls a second through (20; the bucket holds one second's worth) and answers 429
with ``Retry-After`` past it, and one issue takes at most 10 writes a second. Then ``--issues``
new issues (1,000) of a known mix of impacts are created at once, as an import makes them; the
sandbox sends a webhook for each, to the web process started from the Procfile, and the worker
(``WORKER_THREADS``) triages and places them. The run ends when every issue carries its label,
the board is in band order and the product has gone quiet.

Printed per run:
- the time from the first issue created to the last write Jira answered for the burst;
- the lower bound: the writes no product can avoid (one edit per issue, one ask per issue
  without an impact, one rank call per 50 issues) divided by the rate, and our time's ratio to it;
- calls per issue by kind, and those beyond the unavoidable writes;
- the share of calls answered 429, and the most calls the worker had in flight (from the
  sandbox's log: calls whose answer times overlap).

Run: ``.venv/bin/python bench/burst.py`` (``make bench``): 20 calls a second, then 200 to show
where our own processes become the limit. ``--cap 2`` sets ``JIRA_MAX_CALLS_PER_SECOND`` to
twice what Jira allows, so the pace has to learn the limit from 429s; ``--issues 300 --rates 20``
for a quicker look. All on 127.0.0.1; every process started is stopped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.burst import calls_of, create_burst, figures, wait_done  # noqa: E402
from sandbox.stack import Stack  # noqa: E402

ISSUE_WRITES = 10  # per issue per second, Jira's per-issue write limit in the sandbox


def run(
    issues: int, rate: float, latency_ms: int, env: dict[str, str], cap: float
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="burst-") as folder:
        settings = {"JIRA_MAX_CALLS_PER_SECOND": str(rate * cap), **env}
        with Stack(Path(folder), seed="empty", env=settings) as stack:
            stack.register_webhook()
            limits = {
                "latency_ms": latency_ms,
                "rate": rate,
                "issue_writes": ISSUE_WRITES,
                "issue_window_s": 1,
            }
            stack.control("POST", "/faults", json={"limits": limits})
            burst = create_burst(stack, issues)
            ended = wait_done(stack, burst, timeout=max(120.0, 6 * issues / rate + 60))
            calls = calls_of(stack, burst)
    seconds = ended - burst.started
    found = figures(calls, burst)
    bound = found.unavoidable / rate
    return {
        "rate": rate,
        "cap": rate * cap,
        "seconds": seconds,
        "bound": bound,
        "ratio": seconds / bound,
        "figures": found,
        "in_flight": most_in_flight(calls),
        "twice_asked": sorted(k for k, n in found.asks.items() if n > 1),
    }


def most_in_flight(calls: list[dict[str, Any]]) -> int:
    """The most calls whose time at the sandbox overlapped (answered at ``at``, ``ms`` long)."""
    edges = []
    for call in calls:
        end = call["at"]
        edges += [(end - call["ms"] / 1000, 1), (end, -1)]
    most = now = 0
    for _at, step in sorted(edges):
        now += step
        most = max(most, now)
    return most


def show(result: dict[str, Any]) -> None:
    f = result["figures"]
    print(
        f"\n== {f.issues} issues; Jira allows {result['rate']:g} calls a second, "
        f"JIRA_MAX_CALLS_PER_SECOND={result['cap']:g}"
    )
    print(
        f"time {result['seconds']:.1f} s; lower bound {result['bound']:.1f} s "
        f"({f.unavoidable} unavoidable writes); ratio {result['ratio']:.2f}"
    )
    beyond = (f.calls - f.unavoidable) / f.issues
    print(
        f"calls {f.calls} ({f.calls / f.issues:.2f} per issue, {beyond:.2f} beyond the "
        f"unavoidable); 429s {f.rate_limited} ({100 * f.rate_limited / max(1, f.calls):.1f} %); "
        f"most in flight {result['in_flight']}"
    )
    for name, count in f.by_kind.most_common():
        print(f"  {count:6d}  {count / f.issues:6.3f}/issue  {name}")
    if result["twice_asked"]:
        print(f"ASKED TWICE: {result['twice_asked'][:10]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issues", type=int, default=1000)
    parser.add_argument("--rates", default="20,200", help="Jira's calls a second, per run")
    parser.add_argument("--latency-ms", type=int, default=150)
    parser.add_argument("--turns", type=int, default=1, help="runs per rate (ratio's spread)")
    parser.add_argument("--threads", default="", help="WORKER_THREADS (default: the product's)")
    parser.add_argument("--in-flight", default="", help="JIRA_MAX_IN_FLIGHT")
    parser.add_argument(
        "--cap",
        type=float,
        default=1.0,
        help="JIRA_MAX_CALLS_PER_SECOND as a multiple of Jira's rate (above 1: learnt from 429s)",
    )
    args = parser.parse_args()
    env = {"PLACEMENT_DELAY_SECONDS": "2"}
    if args.threads:
        env["WORKER_THREADS"] = args.threads
    if args.in_flight:
        env["JIRA_MAX_IN_FLIGHT"] = args.in_flight
    for rate in (float(r) for r in args.rates.split(",")):
        ratios = []
        for _ in range(args.turns):
            started = time.monotonic()
            result = run(args.issues, rate, args.latency_ms, env, args.cap)
            show(result)
            ratios.append(result["ratio"])
            print(f"(run took {time.monotonic() - started:.0f} s)")
        if len(ratios) > 1:
            print(
                f"ratio at {rate:g}/s over {len(ratios)} runs: median "
                f"{statistics.median(ratios):.2f}, from {min(ratios):.2f} to {max(ratios):.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
