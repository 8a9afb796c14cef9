"""How many rank calls a full rerank needs, against one call per moved issue and a lower bound.

Boards are seeded random: issues in band order, then a share of them put out of band in one of
two ways: "re-classified" (given another level where they sit) or "dragged" (moved by hand to a
random place; the team's order inside each band is the board's, so they go back to a band edge).
Run: ``.venv/bin/python bench/rank_plan.py``.
Figures only; nothing is asserted.
"""

from __future__ import annotations

import itertools
import random
import statistics
import time

from impact.ranking import BoardIssue, lower_bound_calls, plan_rerank

BANDS = {100: "blocking", 70: "degraded", 40: "indirect", 20: "missing", 10: "none"}
WEIGHTS = (5, 15, 25, 15, 40)  # share of each band on a typical board, highest first
SIZES = (100, 1_000, 5_000)
OUT_OF_BAND = (0.02, 0.10, 0.50)
HOW = ("re-classified", "dragged")
TIMED_SIZE = 10_000
TIMED_RUNS = 7


def make_board(size: int, out_of_band: float, how: str, seed: int) -> list[BoardIssue]:
    rng = random.Random(seed)
    scores = sorted(rng.choices(list(BANDS), weights=WEIGHTS, k=size), reverse=True)
    board = [BoardIssue(f"WEB-{i + 1}", s, BANDS[s]) for i, s in enumerate(scores)]
    chosen = rng.sample(range(size), round(size * out_of_band))
    if how == "re-classified":
        for i in chosen:
            score = rng.choice([s for s in BANDS if s != board[i].score])
            board[i] = BoardIssue(board[i].key, score, BANDS[score])
        return board
    dragged = [board[i] for i in sorted(chosen)]
    picked = set(chosen)
    rest = [item for i, item in enumerate(board) if i not in picked]
    for item in dragged:
        rest.insert(rng.randrange(len(rest) + 1), item)
    return rest


def median_planning_seconds(board: list[BoardIssue]) -> float:
    runs = []
    for _ in range(TIMED_RUNS):
        start = time.perf_counter()
        plan_rerank(board)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    head = (
        f"{'issues':>7} {'out':>5} {'how':>13} {'moved':>6} {'calls':>6} {'1-by-1':>7} "
        f"{'bound':>6} {'calls/1-by-1':>13} {'calls/bound':>12}"
    )
    print(head)
    print("-" * len(head))
    for size, share, how in itertools.product(SIZES, OUT_OF_BAND, HOW):
        board = make_board(size, share, how, seed=size + int(share * 100))
        plan = plan_rerank(board)
        one_by_one = plan.moved  # the jira library's rank(): one issue per call
        bound = lower_bound_calls(board)
        calls = len(plan.calls)
        print(
            f"{size:>7,} {share:>5.0%} {how:>13} {plan.moved:>6,} {calls:>6,} {one_by_one:>7,} "
            f"{bound:>6,} {calls / max(one_by_one, 1):>13.3f} {calls / max(bound, 1):>12.3f}"
        )
    print()
    for share, how in itertools.product(OUT_OF_BAND, HOW):
        board = make_board(TIMED_SIZE, share, how, seed=TIMED_SIZE + int(share * 100))
        seconds = median_planning_seconds(board)
        print(
            f"planning {TIMED_SIZE:,} issues, {share:.0%} {how}: "
            f"{seconds * 1000:.1f} ms (median of {TIMED_RUNS})"
        )


if __name__ == "__main__":
    main()
