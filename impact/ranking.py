"""Board ranking, planned as plain data: where issues go, and the rank calls that put them there.

Bands are ordered by impact score, highest first; the score decides, the band name is for people.
Pinned issues (label ``rank-pinned``) are never moved. Done issues are the caller's to leave out.

- ``plan_batch_placement``: the issues waiting on one board to go to the bottom of their bands,
  placed together next to the *settled* issues (those not waiting), in the fewest calls.
- ``plan_rerank``: the whole board. The longest run of unpinned issues already in band order stays
  where it is (a longest non-increasing subsequence of scores); every other unpinned issue moves,
  which is the least number of moves that yields band order while each band keeps its relative
  order. Moved issues that land next to the same kept issue go together, at most 50 per call.
- ``apply_calls``: what Jira's ``PUT /rest/agile/1.0/issue/rank`` does to the board's order.

Nothing here does I/O; ``connector`` sends the ``RankCall`` objects.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PINNED_LABEL = "rank-pinned"
MAX_RANK_BATCH = 50  # Jira: "At most 50 issues may be ranked at once."


@dataclass(frozen=True)
class BoardIssue:
    """One issue of the board; a board is a sequence of these in rank order."""

    key: str
    score: int
    band: str
    pinned: bool = False


@dataclass(frozen=True)
class RankCall:
    """One ``PUT issue/rank``: ``issues`` end up in this order right before / after the anchor."""

    issues: tuple[str, ...]
    before: str | None = None  # rankBeforeIssue
    after: str | None = None  # rankAfterIssue

    def __post_init__(self) -> None:
        if (self.before is None) == (self.after is None):
            raise ValueError("a rank call needs exactly one of before / after")
        if not 1 <= len(self.issues) <= MAX_RANK_BATCH:
            raise ValueError(f"a rank call carries 1 to {MAX_RANK_BATCH} issues")
        if len(set(self.issues)) != len(self.issues) or self.anchor in self.issues:
            raise ValueError("a rank call's issues must be distinct and exclude the anchor")

    @property
    def anchor(self) -> str:
        return self.before if self.before is not None else str(self.after)

    def payload(self) -> dict[str, Any]:
        """The JSON body of the rank request (without ``rankCustomFieldId``)."""
        side = "rankBeforeIssue" if self.before is not None else "rankAfterIssue"
        return {"issues": list(self.issues), side: self.anchor}

    def describe(self) -> str:
        side = "before" if self.before is not None else "after"
        return f"{len(self.issues)} {side} {self.anchor}: {', '.join(self.issues)}"


@dataclass(frozen=True)
class Move:
    """A moved issue; indices are 0-based positions in the board before and after the calls."""

    key: str
    band: str
    from_index: int
    to_index: int
    reason: str


@dataclass(frozen=True)
class RerankPlan:
    calls: tuple[RankCall, ...]
    moves: tuple[Move, ...]  # in their order on the reranked board
    kept: int  # unpinned issues that stay where they are
    total: int  # issues on the board, pinned ones included

    @property
    def moved(self) -> int:
        return len(self.moves)

    @property
    def pinned(self) -> int:
        return self.total - self.kept - self.moved

    def describe(self) -> str:
        """The dry-run text. Positions are shown 1-based, as people count a board."""
        head = (
            f"Rerank plan: {self.moved} of {self.total} issues move in {len(self.calls)} "
            f"rank call{'' if len(self.calls) == 1 else 's'} "
            f"({self.kept} stay in place, {self.pinned} pinned)."
        )
        if not self.moves:
            return head + "\nThe board is already in band order: nothing to do."
        lines = [head, "Calls, in the order to send them:"]
        lines += [f"  {n}. {call.describe()}" for n, call in enumerate(self.calls, 1)]
        lines.append("Moves:")
        width = max(len(move.key) for move in self.moves)
        band_width = max(len(move.band) for move in self.moves)
        for move in self.moves:
            lines.append(
                f"  {move.key:<{width}}  {move.band:<{band_width}}  "
                f"#{move.from_index + 1} -> #{move.to_index + 1}  {move.reason}"
            )
        return "\n".join(lines)


def plan_rerank(board: Sequence[BoardIssue], *, max_batch: int = MAX_RANK_BATCH) -> RerankPlan:
    """Plan the fewest moves that put the board's unpinned issues in band order.

    Every band keeps its relative order. Moved issues are anchored only on kept issues, and a
    group larger than ``max_batch`` is sent bottom chunk first when ranked after its anchor, so
    each call lands right whatever happens to the calls after it. O(n log n).
    """
    _check_batch(max_batch)
    _check_unique(issue.key for issue in board)
    free = [i for i, issue in enumerate(board) if not issue.pinned]
    kept = {free[p] for p in _longest_non_increasing([board[i].score for i in free])}
    target = sorted(free, key=lambda i: -board[i].score)  # stable: bands keep their order

    # Moved issues between two kept issues of the target order form one landing group.
    top: list[int] = []  # the group above the first kept issue
    below: dict[int, list[int]] = {}  # kept index -> the group right after it
    anchor: int | None = None
    for i in target:
        if i in kept:
            anchor = i
        elif anchor is None:
            top.append(i)
        else:
            below.setdefault(anchor, []).append(i)

    calls: list[RankCall] = []
    final: list[int] = []
    for i, issue in enumerate(board):
        if not issue.pinned and i not in kept:
            continue
        if top and i == target[len(top)]:
            calls += _chunked(board, top, max_batch, before=issue.key)
            final += top
        final.append(i)
        if i in below:
            calls += _chunked(board, below[i], max_batch, after=issue.key)
            final += below[i]

    reasons = _reasons(board, kept)
    moves = tuple(
        Move(board[i].key, board[i].band, i, to, reasons[i])
        for to, i in enumerate(final)
        if i in reasons
    )
    return RerankPlan(tuple(calls), moves, kept=len(kept), total=len(board))


@dataclass(frozen=True)
class Pending:
    """An issue triage put in a band, waiting on the board to go to the bottom of that band."""

    key: str
    score: int
    band: str


@dataclass(frozen=True)
class Gap:
    """Where the bottom of a band lies among the settled issues of a board in band order: right
    after ``after``, the last settled issue scoring as much or more, else right before
    ``before``, the first scoring less; neither when no issue is settled."""

    after: str | None = None
    before: str | None = None


def plan_batch_placement(
    pending: Sequence[Pending], gaps: Mapping[int, Gap], *, max_batch: int = MAX_RANK_BATCH
) -> tuple[RankCall, ...]:
    """The calls that put each waiting issue at the bottom of its band, in ``pending``'s order.

    ``gaps`` gives each waiting score's gap. Bands are placed highest first; a band whose gap is
    the one the band before it went into follows that band's last issue. With no settled issue
    at all, the highest band's first issue is where the others line up. Waiting issues are
    anchored only on settled issues and on issues this plan placed before them."""
    _check_batch(max_batch)
    groups: dict[int, list[str]] = {}
    for issue in pending:
        keys = groups.setdefault(issue.score, [])
        if issue.key not in keys:
            keys.append(issue.key)
    calls: list[RankCall] = []
    last: tuple[Gap, str] | None = None  # the previous band's gap and last issue
    for score in sorted(groups, reverse=True):
        keys = groups[score]
        gap = gaps.get(score, Gap())
        if last is not None and last[0] == gap:
            calls += _key_chunks(keys, max_batch, after=last[1])
        elif gap.after is not None:
            calls += _key_chunks(keys, max_batch, after=gap.after)
        elif gap.before is not None:
            calls += _key_chunks(keys, max_batch, before=gap.before)
        elif len(keys) > 1:
            calls += _key_chunks(keys[1:], max_batch, after=keys[0])
        last = (gap, keys[-1])
    return tuple(calls)


@dataclass(frozen=True)
class Settled:
    """A settled issue found next to a gap: its key, its band's score, its rank (Jira's Rank
    value, which sorts as the board does)."""

    key: str
    score: int
    rank: str


def gap_between(score: int, after: Settled | None, before: Settled | None) -> Gap | None:
    """The gap of ``score`` from the last settled issue scoring as much or more (``after``) and
    the first scoring less (``before``). On a board in band order ``after`` ranks above
    ``before``, and the gap lies between them. Otherwise a person dragged one of them out of its
    band: the one in ``score``'s own band is trusted, else the lower band's first issue (an issue
    dragged down from a higher band would take every new issue down with it)."""
    if after is not None and before is not None and before.rank < after.rank:
        return Gap(after=after.key) if after.score == score else Gap(before=before.key)
    if after is not None:
        return Gap(after=after.key)
    if before is not None:
        return Gap(before=before.key)
    return None


def gaps_on(
    board: Sequence[BoardIssue], waiting: Iterable[str], scores: Iterable[int]
) -> dict[int, Gap]:
    """The gap of each of ``scores`` on ``board``, its settled issues being those neither
    waiting nor pinned: what ``pipeline.ranking.find_gaps`` finds with a few bounded reads,
    computed here over a whole board (the tests' reference)."""
    skip = set(waiting)
    settled = [
        Settled(issue.key, issue.score, f"{n:09d}")
        for n, issue in enumerate(board)
        if not issue.pinned and issue.key not in skip
    ]
    gaps = {}
    for score in set(scores):
        after = next((s for s in reversed(settled) if s.score >= score), None)
        before = next((s for s in settled if s.score < score), None)
        gap = gap_between(score, after, before)
        if gap is not None:
            gaps[score] = gap
    return gaps


def apply_calls(order: Sequence[str], calls: Sequence[RankCall]) -> list[str]:
    """Jira's rank semantics: each call takes its issues out and puts them, in the call's order,
    immediately before / after the anchor. Raises ValueError for a key not on the board."""
    result = list(order)
    for call in calls:
        missing = [key for key in (*call.issues, call.anchor) if key not in result]
        if missing:
            raise ValueError(f"not on the board: {', '.join(missing)}")
        moving = set(call.issues)
        result = [key for key in result if key not in moving]
        at = result.index(call.anchor) + (1 if call.after is not None else 0)
        result[at:at] = call.issues
    return result


def lower_bound_calls(board: Sequence[BoardIssue], max_batch: int = MAX_RANK_BATCH) -> int:
    """A lower bound on the rank calls of any plan that moves the fewest issues.

    Why it holds. Such a plan leaves unmoved a set K of unpinned issues that is a longest
    non-increasing subsequence (LNIS) of the scores, and its final order of unpinned issues is
    the stable sort by score, T. After a call, the issues whose last call it is sit together;
    later calls move neither them nor any unmoved issue, so no unmoved issue ever comes between
    them. So each call finally places issues between two consecutive issues of K in T, at most
    ``max_batch`` of them.

    K may differ between plans, but some issues are on every LNIS (the only issue on any LNIS
    at its chain length). Between two such consecutive "essential" issues every LNIS keeps the
    same number of issues, so every plan moves the same number m into that stretch of T and
    needs at least ceil(m / max_batch) calls there. The bound is the sum over the stretches.
    """
    _check_batch(max_batch)
    scores = [issue.score for issue in board if not issue.pinned]
    ending = _chain_lengths([-s for s in scores])  # LNIS length ending at each issue
    starting = _chain_lengths(scores[::-1])[::-1]  # ... and starting at it
    longest = max(ending, default=0)
    on_some = [p for p in range(len(scores)) if ending[p] + starting[p] - 1 == longest]
    per_length = Counter(ending[p] for p in on_some)
    essential = {p for p in on_some if per_length[ending[p]] == 1}

    target = sorted(range(len(scores)), key=lambda p: -scores[p])
    stops = [(t, ending[p]) for t, p in enumerate(target) if p in essential]
    stops.append((len(scores), longest + 1))
    calls, last_t, last_length = 0, -1, 0
    for t, length in stops:
        moved = (t - last_t - 1) - (length - last_length - 1)
        calls += -(-moved // max_batch)
        last_t, last_length = t, length
    return calls


# --------------------------------------------------------------------------------------------


def _chain_lengths(keys: Sequence[int]) -> list[int]:
    """For each position, the length of the longest non-decreasing run of keys ending there."""
    tails: list[int] = []  # tails[k]: the smallest last key of a run of length k + 1
    lengths = []
    for key in keys:
        k = bisect_right(tails, key)  # right: an equal key extends a run (ties are kept)
        if k == len(tails):
            tails.append(key)
        else:
            tails[k] = key
        lengths.append(k + 1)
    return lengths


def _longest_non_increasing(scores: Sequence[int]) -> list[int]:
    """Positions of one longest non-increasing subsequence, in order (the latest ones found)."""
    ending = _chain_lengths([-s for s in scores])
    need, floor = max(ending, default=0), None
    picked: list[int] = []
    for p in range(len(scores) - 1, -1, -1):
        if need and ending[p] == need and (floor is None or scores[p] >= floor):
            picked.append(p)
            need, floor = need - 1, scores[p]
    return picked[::-1]


def _chunked(
    board: Sequence[BoardIssue],
    group: list[int],
    size: int,
    *,
    before: str | None = None,
    after: str | None = None,
) -> list[RankCall]:
    return _key_chunks([board[i].key for i in group], size, before=before, after=after)


def _key_chunks(
    keys: Sequence[str], size: int, *, before: str | None = None, after: str | None = None
) -> list[RankCall]:
    chunks = [tuple(keys[s : s + size]) for s in range(0, len(keys), size)]
    if after is not None:
        # Each chunk goes right after the anchor, so the bottom chunk is sent first.
        return [RankCall(chunk, after=after) for chunk in reversed(chunks)]
    return [RankCall(chunk, before=before) for chunk in chunks]


def _reasons(board: Sequence[BoardIssue], kept: set[int]) -> dict[int, str]:
    """Why each moved issue moves: a kept issue it is on the wrong side of.

    Kept scores never rise down the board, so the nearest kept issue above is the lowest above
    and the nearest below the highest below; a moved issue is out of order with one of them,
    or it could have been kept.
    """
    reasons: dict[int, str] = {}
    last: BoardIssue | None = None
    for i, issue in enumerate(board):
        if i in kept:
            last = issue
        elif not issue.pinned and last is not None and last.score < issue.score:
            reasons[i] = f"sat below {last.key} ({last.band}, score {last.score})"
    nxt: BoardIssue | None = None
    for i in range(len(board) - 1, -1, -1):
        issue = board[i]
        if i in kept:
            nxt = issue
        elif not issue.pinned and i not in reasons:
            assert nxt is not None and nxt.score > issue.score, "a moved issue is out of order"
            reasons[i] = f"sat above {nxt.key} ({nxt.band}, score {nxt.score})"
    return reasons


def _check_batch(max_batch: int) -> None:
    if not 1 <= max_batch <= MAX_RANK_BATCH:
        raise ValueError(f"max_batch must be 1 to {MAX_RANK_BATCH}, not {max_batch}")


def _check_unique(keys: Iterable[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"{key} is on the board twice")
        seen.add(key)
