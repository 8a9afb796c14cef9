"""Board ranking plans: checked by applying them with Jira's rank semantics (``apply_calls``)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impact.ranking import (
    BoardIssue,
    Gap,
    Pending,
    RankCall,
    RerankPlan,
    Settled,
    apply_calls,
    gap_between,
    lower_bound_calls,
    plan_batch_placement,
    plan_rerank,
)

BANDS = {100: "blocking", 70: "degraded", 40: "indirect", 20: "missing", 10: "none"}


def issue(key: str, score: int, *, pinned: bool = False) -> BoardIssue:
    return BoardIssue(key, score, BANDS[score], pinned)


def make_board(scores: Sequence[int], pinned: frozenset[int] = frozenset()) -> list[BoardIssue]:
    return [issue(f"P-{i}", s, pinned=i in pinned) for i, s in enumerate(scores)]


def keys(board: Sequence[BoardIssue]) -> list[str]:
    return [item.key for item in board]


def reference_lnis(scores: Sequence[int]) -> int:
    """Longest non-increasing subsequence, the O(n²) way."""
    best: list[int] = []
    for i, s in enumerate(scores):
        best.append(1 + max((best[j] for j in range(i) if scores[j] >= s), default=0))
    return max(best, default=0)


@st.composite
def boards(draw: st.DrawFn, max_size: int = 300) -> list[BoardIssue]:
    scores = draw(st.lists(st.sampled_from(sorted(BANDS)), max_size=max_size))
    near_sorted = draw(st.booleans())
    if scores and near_sorted:  # a board in band order, then a few issues re-classified
        scores.sort(reverse=True)
        for _ in range(draw(st.integers(0, 30))):
            scores[draw(st.integers(0, len(scores) - 1))] = draw(st.sampled_from(sorted(BANDS)))
    pinned: set[int] = set()
    if scores:
        pinned = draw(st.sets(st.integers(0, len(scores) - 1), max_size=len(scores) // 5 + 1))
    return make_board(scores, frozenset(pinned))


def called(plan: RerankPlan) -> list[str]:
    return [key for call in plan.calls for key in call.issues]


# --------------------------------------------------------------------------------------------
# Full rerank: properties over random boards


@settings(max_examples=150, deadline=None)
@given(boards(), st.sampled_from([1, 3, 50]))
def test_rerank_gives_band_order_and_keeps_each_bands_order(
    board: list[BoardIssue], max_batch: int
) -> None:
    result = apply_calls(keys(board), plan_rerank(board, max_batch=max_batch).calls)

    by_key = {item.key: item for item in board}
    unpinned = [by_key[key] for key in result if not by_key[key].pinned]
    scores = [item.score for item in unpinned]
    assert scores == sorted(scores, reverse=True)
    for band in BANDS.values():
        before = [item.key for item in board if item.band == band and not item.pinned]
        assert [item.key for item in unpinned if item.band == band] == before


@settings(max_examples=150, deadline=None)
@given(boards())
def test_rerank_never_moves_pinned_issues(board: list[BoardIssue]) -> None:
    """Pinned issues are in no call, so they keep their order relative to every unmoved issue
    (their neighbours among unmoved issues are unchanged); moved issues may land next to them."""
    plan = plan_rerank(board)
    moving = set(called(plan))
    pinned = {item.key for item in board if item.pinned}

    assert not moving & pinned
    assert not {move.key for move in plan.moves} & pinned
    result = apply_calls(keys(board), plan.calls)
    assert [k for k in result if k not in moving] == [k for k in keys(board) if k not in moving]


@settings(max_examples=150, deadline=None)
@given(boards())
def test_rerank_moves_the_fewest_issues(board: list[BoardIssue]) -> None:
    plan = plan_rerank(board)
    unpinned = [item.score for item in board if not item.pinned]
    fewest = len(unpinned) - reference_lnis(unpinned)

    assert plan.moved == fewest
    assert sorted(called(plan)) == sorted(move.key for move in plan.moves)
    assert (plan.kept, plan.total) == (len(unpinned) - fewest, len(board))


@settings(max_examples=150, deadline=None)
@given(boards(), st.integers(1, 50))
def test_rerank_calls_carry_at_most_the_batch_and_each_issue_once(
    board: list[BoardIssue], max_batch: int
) -> None:
    plan = plan_rerank(board, max_batch=max_batch)

    assert all(1 <= len(call.issues) <= max_batch for call in plan.calls)
    assert len(called(plan)) == len(set(called(plan)))
    assert plan.moved == 0 or len(plan.calls) >= -(-plan.moved // max_batch)


@settings(max_examples=100, deadline=None)
@given(boards(), st.sampled_from([2, 50]))
def test_rerank_each_call_lands_right_whatever_follows(
    board: list[BoardIssue], max_batch: int
) -> None:
    """After any prefix of the calls, the issues placed so far already sit in their final order
    among the issues that never move: a run stopped half-way leaves nothing misplaced."""
    plan = plan_rerank(board, max_batch=max_batch)
    final = apply_calls(keys(board), plan.calls)
    settled = set(keys(board)) - set(called(plan))

    order = keys(board)
    for call in plan.calls:
        order = apply_calls(order, [call])
        settled |= set(call.issues)
        assert [k for k in order if k in settled] == [k for k in final if k in settled]


@settings(max_examples=150, deadline=None)
@given(boards())
def test_rerank_moves_say_where_from_and_where_to(board: list[BoardIssue]) -> None:
    plan = plan_rerank(board)
    before = keys(board)
    after = apply_calls(before, plan.calls)

    for move in plan.moves:
        assert before[move.from_index] == move.key
        assert after[move.to_index] == move.key
        assert move.band == board[move.from_index].band
        assert move.reason.startswith(("sat below", "sat above"))
    assert [m.to_index for m in plan.moves] == sorted(m.to_index for m in plan.moves)


@settings(max_examples=100, deadline=None)
@given(boards())
def test_sorted_board_gives_an_empty_plan(board: list[BoardIssue]) -> None:
    ordered = sorted(board, key=lambda item: -item.score)
    plan = plan_rerank(ordered)
    assert (plan.calls, plan.moves) == ((), ())
    assert lower_bound_calls(ordered) == 0


@settings(max_examples=150, deadline=None)
@given(boards(), st.integers(1, 50))
def test_lower_bound_is_below_the_plan(board: list[BoardIssue], max_batch: int) -> None:
    plan = plan_rerank(board, max_batch=max_batch)
    bound = lower_bound_calls(board, max_batch)
    assert -(-plan.moved // max_batch) <= bound <= len(plan.calls)


def fewest_calls_by_brute_force(scores: Sequence[int], max_batch: int) -> int:
    """Over every longest non-increasing kept set: one landing group per gap between kept issues
    of the target order, each split by max_batch; the least total."""
    longest = reference_lnis(scores)
    target = sorted(range(len(scores)), key=lambda p: -scores[p])
    best = None
    for kept in itertools.combinations(range(len(scores)), longest):
        if any(scores[a] < scores[b] for a, b in itertools.pairwise(kept)):
            continue
        calls, run = 0, 0
        for p in [*target, None]:
            if p is None or p in kept:
                calls, run = calls + -(-run // max_batch), 0
            else:
                run += 1
        best = calls if best is None else min(best, calls)
    return best or 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(sorted(BANDS)), max_size=9), st.integers(1, 3))
def test_lower_bound_holds_for_every_plan_with_fewest_moves(
    scores: list[int], max_batch: int
) -> None:
    board = make_board(scores)
    assert lower_bound_calls(board, max_batch) <= fewest_calls_by_brute_force(scores, max_batch)


# --------------------------------------------------------------------------------------------
# Full rerank: worked examples


def test_rerank_splits_a_large_group_bottom_chunk_first() -> None:
    board = make_board([100] * 5 + [10] * 200 + [70] * 60)
    plan = plan_rerank(board)

    degraded = tuple(f"P-{i}" for i in range(205, 265))
    assert plan.calls == (
        RankCall(degraded[50:], after="P-4"),
        RankCall(degraded[:50], after="P-4"),
    )
    assert (plan.moved, plan.kept) == (60, 205)
    assert lower_bound_calls(board) == 2


def test_rerank_ranks_after_the_kept_issue_above_or_before_the_top_one() -> None:
    board = make_board([40, 40, 100, 100, 100])
    assert plan_rerank(board).calls == (RankCall(("P-0", "P-1"), after="P-4"),)

    board = make_board([70, 70, 70, 100])
    assert plan_rerank(board).calls == (RankCall(("P-3",), before="P-0"),)


def test_rerank_leaves_pinned_issues_where_they_are() -> None:
    board = make_board([10, 100, 40, 70], pinned=frozenset({0}))
    plan = plan_rerank(board)
    assert apply_calls(keys(board), plan.calls) == ["P-0", "P-1", "P-3", "P-2"]


def test_rerank_of_empty_or_all_pinned_board_is_empty() -> None:
    assert plan_rerank([]) == RerankPlan((), (), kept=0, total=0)
    board = make_board([10, 100, 40], pinned=frozenset({0, 1, 2}))
    assert plan_rerank(board) == RerankPlan((), (), kept=0, total=3)


def test_rerank_rejects_a_bad_batch_or_a_duplicate_key() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        plan_rerank([], max_batch=51)
    with pytest.raises(ValueError, match="twice"):
        plan_rerank([issue("P-1", 10), issue("P-1", 20)])


def test_describe_shows_counts_calls_and_each_move() -> None:
    board = [
        issue("WEB-1", 100),
        issue("WEB-2", 10),
        issue("WEB-3", 70, pinned=True),
        issue("WEB-4", 100),
        issue("WEB-5", 40),
        issue("WEB-6", 20),
    ]
    assert plan_rerank(board).describe() == (
        "Rerank plan: 1 of 6 issues move in 1 rank call (4 stay in place, 1 pinned).\n"
        "Calls, in the order to send them:\n"
        "  1. 1 after WEB-6: WEB-2\n"
        "Moves:\n"
        "  WEB-2  none  #2 -> #6  sat above WEB-4 (blocking, score 100)"
    )


def test_describe_says_when_nothing_moves() -> None:
    text = plan_rerank(make_board([100, 70, 10])).describe()
    assert text == (
        "Rerank plan: 0 of 3 issues move in 0 rank calls (3 stay in place, 0 pinned).\n"
        "The board is already in band order: nothing to do."
    )


def test_lower_bound_counts_each_landing_place() -> None:
    # Keep the none issues or the blocking ones: either way 60 land in one place, two calls.
    assert lower_bound_calls(make_board([10] * 60 + [100] * 60)) == 2
    # Whichever three are kept, the two moved issues land between the same two kept ones.
    assert lower_bound_calls(make_board([100, 10, 100, 10, 100, 10])) == 1
    # A none issue sits above the degraded band, a degraded one below the none band: two places.
    assert lower_bound_calls(make_board([100, 10, 70, 70, 40, 10, 10, 70])) == 2


# --------------------------------------------------------------------------------------------
# Placement of the issues waiting on a board


def settled(key: str, score: int, rank: int) -> Settled:
    return Settled(key, score, f"{rank:03d}")


GAPS = [
    ("in order: after the last of the band", settled("A", 70, 1), settled("B", 10, 2), "A", None),
    ("in order: after a higher band's last", settled("A", 100, 1), settled("B", 10, 2), "A", None),
    ("nothing scores as much: before the first lower", None, settled("B", 10, 2), None, "B"),
    ("nothing scores less: after the last", settled("A", 70, 1), None, "A", None),
    ("a higher issue dragged to the bottom", settled("C", 100, 9), settled("B", 10, 2), None, "B"),
    ("a lower issue dragged to the top", settled("A", 70, 5), settled("Z", 10, 1), "A", None),
]


@pytest.mark.parametrize(
    ("after", "before", "expect_after", "expect_before"),
    [case[1:] for case in GAPS],
    ids=[case[0] for case in GAPS],
)
def test_the_gap_of_a_band_between_its_settled_neighbours(
    after: Settled | None, before: Settled | None, expect_after: str, expect_before: str
) -> None:
    assert gap_between(70, after, before) == Gap(after=expect_after, before=expect_before)


def test_no_settled_issue_no_gap() -> None:
    assert gap_between(70, None, None) is None


def waiting(*bands: tuple[str, int]) -> list[Pending]:
    return [Pending(key, score, str(score)) for key, score in bands]


def test_a_burst_goes_band_by_band_next_to_the_settled_issues() -> None:
    board = ["S-1", "S-2", "S-3", "N-1", "N-2", "N-3", "N-4"]
    pending = waiting(("N-1", 10), ("N-2", 100), ("N-3", 10), ("N-4", 70))
    gaps = {100: Gap(after="S-1"), 70: Gap(after="S-2"), 10: Gap(after="S-3")}
    calls = plan_batch_placement(pending, gaps)
    assert [c.describe() for c in calls] == [
        "1 after S-1: N-2",
        "1 after S-2: N-4",
        "2 after S-3: N-1, N-3",
    ]
    assert apply_calls(board, calls) == ["S-1", "N-2", "S-2", "N-4", "S-3", "N-1", "N-3"]


def test_bands_sharing_a_gap_follow_each_other_highest_first() -> None:
    pending = waiting(("N-1", 10), ("N-2", 100), ("N-3", 70))
    gap = Gap(before="S-9")  # nothing settled scores as much as any of them
    calls = plan_batch_placement(pending, {100: gap, 70: gap, 10: gap})
    order = apply_calls(["S-9", "N-1", "N-2", "N-3"], calls)
    assert order == ["N-2", "N-3", "N-1", "S-9"]
    gap = Gap(after="S-1")  # all after the last of a higher band
    calls = plan_batch_placement(pending, {70: gap, 10: gap, 100: gap})
    assert apply_calls(["S-1", "N-1", "N-2", "N-3"], calls) == ["S-1", "N-2", "N-3", "N-1"]


def test_with_no_settled_issue_the_highest_bands_first_issue_leads() -> None:
    pending = waiting(("N-1", 10), ("N-2", 100), ("N-3", 100), ("N-4", 10))
    calls = plan_batch_placement(pending, {})
    order = apply_calls(["N-1", "N-2", "N-3", "N-4"], calls)
    assert order == ["N-2", "N-3", "N-1", "N-4"]
    assert all(call.anchor != "N-1" or call.after for call in calls)


def test_a_large_band_goes_in_calls_of_at_most_the_batch() -> None:
    keys = [f"N-{n}" for n in range(120)]
    pending = [Pending(key, 40, "indirect") for key in keys]
    calls = plan_batch_placement(pending, {40: Gap(after="S-1")})
    assert [len(call.issues) for call in calls] == [20, 50, 50]  # bottom chunk first
    assert apply_calls(["S-1", "S-2", *keys], calls) == ["S-1", *keys, "S-2"]


# --------------------------------------------------------------------------------------------
# Rank calls and the simulator


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (RankCall(("D",), before="B"), ["A", "D", "B", "C", "E"]),
        (RankCall(("A",), after="E"), ["B", "C", "D", "E", "A"]),
        (RankCall(("E", "A"), after="B"), ["B", "E", "A", "C", "D"]),
        (RankCall(("C", "A"), before="B"), ["C", "A", "B", "D", "E"]),
    ],
)
def test_apply_calls_puts_issues_next_to_the_anchor_in_call_order(
    call: RankCall, expected: list[str]
) -> None:
    assert apply_calls(["A", "B", "C", "D", "E"], [call]) == expected


def test_apply_calls_rejects_an_issue_not_on_the_board() -> None:
    with pytest.raises(ValueError, match="Z"):
        apply_calls(["A", "B"], [RankCall(("A",), after="Z")])


@pytest.mark.parametrize(
    "make",
    [
        lambda: RankCall(("A",)),
        lambda: RankCall(("A",), before="B", after="C"),
        lambda: RankCall((), before="B"),
        lambda: RankCall(tuple(f"P-{i}" for i in range(51)), before="B"),
        lambda: RankCall(("A", "A"), before="B"),
        lambda: RankCall(("A", "B"), before="B"),
    ],
    ids=["no anchor", "two anchors", "no issues", "51 issues", "duplicate", "anchor in issues"],
)
def test_rank_call_rejects_what_jira_would(make: Callable[[], RankCall]) -> None:
    with pytest.raises(ValueError):
        make()


def test_rank_call_payload_is_the_request_body() -> None:
    assert RankCall(("A", "B"), before="C").payload() == {
        "issues": ["A", "B"],
        "rankBeforeIssue": "C",
    }
    assert RankCall(("A",), after="C").payload() == {"issues": ["A"], "rankAfterIssue": "C"}
