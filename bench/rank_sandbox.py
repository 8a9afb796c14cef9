"""A full rerank against the Jira sandbox: our batched calls against one issue per call.

For boards of 100, 1,000 and 5,000 open issues with 2 %, 10 % and 50 % of them out of band
(re-classified where they sit; see ``rank_plan.make_board``), the same board is seeded twice
through the sandbox's control API: on the SHOP board (1) for our rerank, on the SUP board (2) for
one issue per call, sent with the ``jira`` library's own ``JIRA.rank()``. Both are checked to end
in band order. Columns: rank calls of each and the lower bound (``lower_bound_calls``), then wall
times: reading the board (the same for both), our rank calls, the one-by-one calls. Last, the
planning time for 10,000 issues already judged (``plan_rerank``), without the sandbox.

Run: ``.venv/bin/python bench/rank_sandbox.py`` (``make bench``). Everything is on 127.0.0.1 and
bounded; the sandbox process is stopped at the end. Takes a few minutes, mostly seeding.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests
from jira import JIRA
from rank_plan import make_board  # the same boards as the planning benchmark

from connector.client import JiraConnector
from impact.config import load_config
from impact.model import ImpactConfig, ProjectConfig, ProjectSettings, RankMode
from impact.ranking import RankCall, RerankPlan, lower_bound_calls, plan_rerank
from pipeline.ranking import apply_rerank, plan_board

ROOT = Path(__file__).resolve().parents[1]
SIZES = (100, 1_000, 5_000)
OUT_OF_BAND = (0.02, 0.10, 0.50)
HOW = "re-classified"
PLANNING_SIZE = 10_000
PLANNING_RUNS = 7
OURS, ONE_BY_ONE = 1, 2  # board ids: SHOP and SUP
EMAIL, TOKEN = "impact-bot@example.com", "sandbox-token"
RANK_PATH = "/rest/agile/1.0/issue/rank"
START_TIMEOUT_S = 30.0


class Sandbox:
    """``python -m sandbox`` on 127.0.0.1 in a subprocess, stopped by ``close()``."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--port", "0", "--seed", "empty"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        lines: list[str] = []
        reader = threading.Thread(
            target=lambda: lines.append(self.proc.stdout.readline().decode()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(START_TIMEOUT_S)
        if not lines or not lines[0].startswith("SANDBOX_URL="):
            self.close()
            raise RuntimeError(f"the sandbox did not start: {lines!r}")
        self.url = lines[0].strip().partition("=")[2]
        self.http = requests.Session()

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.http.request(method, f"{self.url}/_sandbox{path}", json=body, timeout=60)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def rank_calls_since(self, seq: int) -> int:
        calls = self.control("GET", f"/calls?since={seq}")["calls"]
        return sum(1 for c in calls if c["method"] == "PUT" and c["path"] == RANK_PATH)

    def last_call(self) -> int:
        return int(self.control("GET", "/calls?since=1000000000000")["last"])


def bench_config() -> ImpactConfig:
    config = load_config(ROOT / "config" / "impact.toml")
    projects = (
        ProjectSettings("SHOP", board=OURS, rank=RankMode.BAND),
        ProjectSettings("SUP", board=ONE_BY_ONE, rank=RankMode.BAND),
    )
    return dataclasses.replace(config, projects=projects)


def band_fields(project: ProjectConfig) -> dict[str, dict[str, Any]]:
    """What an issue of each band carries: its level's field value and label, as triaged."""
    fields = {
        level.name: {"impact": level.values[0], "labels": [level.label]} for level in project.levels
    }
    fields["missing"] = {"impact": None, "labels": [project.missing.label]}
    return fields


def seed(sandbox: Sandbox, size: int, share: float, fields: dict[str, dict[str, Any]]) -> None:
    """The same board on SHOP and on SUP, issue by issue (new issues go to the bottom)."""
    sandbox.control("POST", "/reset", {"seed": "empty"})
    board = make_board(size, share, HOW, seed=size + int(share * 100))
    for issue in board:
        for project in ("SHOP", "SUP"):
            body = {"project": project, "summary": issue.key, **fields[issue.band]}
            sandbox.control("POST", "/issues", body)


def in_band_order(sandbox: Sandbox, board_id: int, project: ProjectConfig) -> bool:
    rows = sandbox.control("GET", f"/board/{board_id}")["issues"]
    scores = [score_of(row["impact"], project) for row in rows]
    return scores == sorted(scores, reverse=True)


def score_of(value: str | None, project: ProjectConfig) -> int:
    level = project.level_for_value(value) if value else None
    return level.score if level else project.missing.score


def one_by_one(client: JIRA, calls: tuple[RankCall, ...]) -> None:
    """Each call's issues sent one per request with ``JIRA.rank()``, keeping the call's order."""
    for call in calls:
        if call.before is not None:
            for key in call.issues:
                client.rank(key, next_issue=call.before)
        else:
            previous = call.after
            for key in call.issues:
                client.rank(key, prev_issue=previous)
                previous = key


def planning_ms(share: float) -> float:
    """``plan_rerank`` alone, on issues already judged (``read_board`` judges them as it reads)."""
    board = make_board(PLANNING_SIZE, share, HOW, seed=PLANNING_SIZE + int(share * 100))
    runs = []
    for _ in range(PLANNING_RUNS):
        start = time.perf_counter()
        plan_rerank(board)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) * 1000


def main() -> None:
    config = bench_config()
    shop = config.for_project("SHOP")
    assert shop is not None
    fields = band_fields(shop)
    head = (
        f"{'issues':>6} {'out':>4} {'moved':>6} | {'calls':>5} {'1-by-1':>6} {'bound':>5} "
        f"{'1-by-1/ours':>11} {'ours/bound':>10} | {'read s':>6} {'ours s':>6} "
        f"{'1-by-1 s':>8} {'ordered':>7}"
    )
    print(head)
    print("-" * len(head))
    sandbox = Sandbox()
    try:
        connector = JiraConnector(sandbox.url, field=config.field, email=EMAIL, api_token=TOKEN)
        client = JIRA(server=sandbox.url, basic_auth=(EMAIL, TOKEN), max_retries=0)
        goal_row: tuple[float, float] | None = None
        for size, share in itertools.product(SIZES, OUT_OF_BAND):
            seed(sandbox, size, share, fields)
            start = time.perf_counter()
            review = plan_board(OURS, config, connector)
            read_s = time.perf_counter() - start
            plan: RerankPlan = review.plan
            bound = lower_bound_calls([judged.board_issue() for judged in review.issues])

            seq = sandbox.last_call()
            start = time.perf_counter()
            apply_rerank(OURS, plan, connector)
            ours_s = time.perf_counter() - start
            ours = sandbox.rank_calls_since(seq)

            theirs_plan = plan_board(ONE_BY_ONE, config, connector).plan
            seq = sandbox.last_call()
            start = time.perf_counter()
            one_by_one(client, theirs_plan.calls)
            theirs_s = time.perf_counter() - start
            theirs = sandbox.rank_calls_since(seq)

            ordered = in_band_order(sandbox, OURS, shop) and in_band_order(
                sandbox, ONE_BY_ONE, shop
            )
            print(
                f"{size:>6,} {share:>4.0%} {plan.moved:>6,} | {ours:>5,} {theirs:>6,} "
                f"{bound:>5,} {theirs / max(ours, 1):>10.1f}x {ours / max(bound, 1):>10.2f} | "
                f"{read_s:>6.2f} {ours_s:>6.2f} {theirs_s:>8.2f} {'yes' if ordered else 'NO':>7}",
                flush=True,
            )
            if (size, share) == (1_000, 0.10):
                goal_row = (theirs / max(ours, 1), ours / max(bound, 1))
    finally:
        sandbox.close()

    print()
    worst = 0.0
    for share in OUT_OF_BAND:
        ms = planning_ms(share)
        worst = max(worst, ms)
        print(f"planning {PLANNING_SIZE:,} issues, {share:.0%} out of band: {ms:.1f} ms "
              f"(median of {PLANNING_RUNS})")  # fmt: skip
    if goal_row is not None:
        fewer, over_bound = goal_row
        print()
        print(f"goal: >= 20x fewer calls than 1-by-1 at 1,000/10%: {fewer:.1f}x "
              f"{'met' if fewer >= 20 else 'MISSED'}")  # fmt: skip
        print(f"goal: within 10% of the lower bound at 1,000/10%: {over_bound:.2f} "
              f"{'met' if over_bound <= 1.10 else 'MISSED'}")  # fmt: skip
        print(f"goal: planning {PLANNING_SIZE:,} issues under 100 ms: {worst:.1f} ms "
              f"{'met' if worst < 100 else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
