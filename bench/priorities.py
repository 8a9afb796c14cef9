"""The priorities page of a board of 5,000 open issues: the time our code takes beyond Jira's
answers, and the Jira calls the page makes.

The sandbox (``python -m sandbox`` on 127.0.0.1) is seeded with 5,000 open issues on the SHOP
board (a fifth each blocking and indirect set by a person, degraded by a rule, an internal
preference, and without an impact) and 600 issues resolved over the last 12 weeks. The app is
built in this process (``create_app``) with a real ``JiraConnector`` to the sandbox, and
``GET /priorities/1`` is asked ``--runs`` times through Flask's test client:

- cold (``PRIORITIES_CACHE_SECONDS=0``, every view reads Jira): the page's wall time, Jira's
  answers (the sum of each call's ``elapsed``: from sending it to its answer's headers), and
  ours, the difference: parsing Jira's JSON, judging every issue, grouping, the chart, the HTML;
- the CPU this process spent in a cold view (``time.process_time``): ours, without the waits
  the machine's other processes (the sandbox among them) make us do;
- warm (the page's data in the cache): the page served from what was read, no Jira call.

Each is reported as the median, the fastest and the slowest of the runs. The Jira calls are
counted from the sandbox's own request log, for one cold view after the first (the first also
reads serverInfo and the field list, once per process). The goal: our time within 1 s, with one
paginated read of the board and one search.

Run: ``.venv/bin/python bench/priorities.py [--runs 7]`` (``make bench``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from connector.client import JiraConnector
from connector.protocol import Call
from impact.config import load_config
from sandbox.stack import BOT_EMAIL, BOT_TOKEN, start_sandbox
from service.settings import Settings
from webhooks import create_app

ROOT = Path(__file__).resolve().parents[1]

OPEN_ISSUES = 5_000
RESOLVED = 600
BULK = 1_000
PAGE = "/priorities/1"
VIEWER_TOKEN = "bench-viewer-token-0123"
KINDS = (  # what a fifth of the board carries
    {"impact": "Blocks paying customers", "labels": ["customer-impact-blocking"]},
    {"issuetype": "Bug", "components": ["Checkout"], "labels": ["customer-impact-degraded"]},
    {"impact": "Indirect: feeds customer-facing work", "labels": []},
    {"impact": "None: internal preference", "labels": ["internal-preference"]},
    {"labels": ["needs-customer-impact"]},
)
RESOLVED_LABELS = ("customer-impact-degraded", "internal-preference", "needs-customer-impact")


class MeasuredConnector(JiraConnector):
    """Keeps every call the page's accounting takes from it, with its time to an answer."""

    seen: list[Call]

    def take_calls(self) -> tuple[Call, ...]:
        taken = super().take_calls()
        self.seen.extend(taken)
        return taken


def control(url: str, method: str, path: str, body: Any = None) -> Any:
    answer = requests.request(method, f"{url}/_sandbox{path}", json=body, timeout=300)
    answer.raise_for_status()
    return answer.json() if answer.content else None


def seed(url: str) -> None:
    now = datetime.now(UTC)
    bodies: list[dict[str, Any]] = []
    for n in range(OPEN_ISSUES):
        kind = KINDS[n % len(KINDS)]
        created = now - timedelta(hours=7 * n % 5000)
        bodies.append(
            {"project": "SHOP", "summary": f"Issue {n}: something to do for someone",
             "description": "A line or two, as issues have.", "created": created.isoformat(),
             "as": ("ana", "ben", "carla")[n % 3], **kind}
        )  # fmt: skip
    for n in range(RESOLVED):
        when = now - timedelta(hours=(n * 12 * 7 * 24) / RESOLVED + 1)
        bodies.append(
            {"project": "SHOP", "summary": f"Resolved {n}", "resolved": when.isoformat(),
             "labels": [RESOLVED_LABELS[n % len(RESOLVED_LABELS)]]}
        )  # fmt: skip
    for start in range(0, len(bodies), BULK):
        control(url, "POST", "/issues/bulk", {"issues": bodies[start : start + BULK]})


def build(url: str, cache_seconds: float) -> tuple[Any, MeasuredConnector]:
    env = {
        "JIRA_URL": url,
        "JIRA_EMAIL": BOT_EMAIL,
        "JIRA_API_TOKEN": BOT_TOKEN,
        "ALLOW_UNSIGNED_WEBHOOKS": "1",
        "VIEWER_TOKEN": VIEWER_TOKEN,
        "PRIORITIES_CACHE_SECONDS": str(cache_seconds),
        "PRIORITIES_READ_SECONDS": "60",
    }
    settings = Settings.from_env(env)
    config = load_config(ROOT / "config" / "impact.toml")
    connector = MeasuredConnector(url, field=config.field, email=BOT_EMAIL, api_token=BOT_TOKEN)
    connector.seen = []
    app = create_app({"SETTINGS": settings, "IMPACT": config, "JIRA": connector})
    app.extensions["impact.admin.jira"] = lambda: connector
    return app, connector


def view(client: Any) -> tuple[float, float]:
    """The view's wall time and this process's CPU time during it."""
    start, cpu = time.perf_counter(), time.process_time()
    response = client.get(PAGE, headers={"Authorization": f"Bearer {VIEWER_TOKEN}"})
    took, used = time.perf_counter() - start, time.process_time() - cpu
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return took, used


def spread(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"{statistics.median(ms):7.0f} ms  ({ms[0]:.0f}–{ms[-1]:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-priorities-") as folder:
        process, url = start_sandbox(Path(folder) / "sandbox.log", seed="empty")
        try:
            started = time.perf_counter()
            seed(url)
            print(f"seeded {OPEN_ISSUES:,} open and {RESOLVED} resolved issues in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
            cold_app, connector = build(url, 0.0)
            cold_client = cold_app.test_client()
            view(cold_client)  # the process's first view: serverInfo, the field list
            last = control(url, "GET", "/calls?since=1000000000000")["last"]
            connector.seen.clear()
            totals, jiras, cpus = [], [], []
            for _ in range(args.runs):
                before = len(connector.seen)
                took, used = view(cold_client)
                totals.append(took)
                cpus.append(used)
                jiras.append(sum(call.ms for call in connector.seen[before:]) / 1000)
            calls = control(url, "GET", f"/calls?since={last}")["calls"]
            per_view = Counter(call["path"] for call in calls)
            ours = [total - jira for total, jira in zip(totals, jiras, strict=True)]

            warm_app, _ = build(url, 600.0)
            warm_client = warm_app.test_client()
            view(warm_client)
            warm = [view(warm_client)[0] for _ in range(args.runs)]
        finally:
            process.stop()

    print(f"GET {PAGE}, a board of {OPEN_ISSUES:,} open issues, {args.runs} runs "
          "(median, fastest–slowest):")  # fmt: skip
    print(f"  cold, page           {spread(totals)}")
    print(f"  cold, Jira's answers {spread(jiras)}")
    print(f"  cold, ours           {spread(ours)}   <- the time beyond Jira's answers")
    print(f"  cold, our CPU        {spread(cpus)}   <- this process's CPU in the view")
    print(f"  warm (cached), page  {spread(warm)}")
    print(f"Jira calls per cold view: {sum(per_view.values()) / args.runs:g}")
    for path, count in sorted(per_view.items()):
        print(f"  {count / args.runs:g} x GET {path}")
    worst = max(ours)
    print(f"goal: ours within 1 s of Jira's answers: slowest {worst * 1000:.0f} ms "
          f"{'met' if worst <= 1.0 else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
