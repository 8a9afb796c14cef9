"""Board ranking in the worker and the ``rerank`` command: the glue between the pure planner
(``impact.ranking``) and the board methods of the connector (``connector.protocol.Boards``).

Every issue ranks by the level triage gives it now (``pipeline.judge``): the field a person set,
else the rules, else missing. Labels it may not carry yet do not count. Issues labelled
``rank-pinned`` are never moved and never anchor a move. Done issues are left out.

- ``place_waiting``: the issues triage put in a band and that wait on one board (see
  ``pipeline.placements``) go to the bottom of their bands together: a few bounded reads find
  where each band ends among the *settled* issues (carrying the labels of the level they have,
  and not waiting), the pure ``plan_batch_placement`` lines them up, rank calls of up to 50
  send them. An issue still waiting is never an anchor.
- ``read_board`` / ``plan_board`` / ``rerank``: read the board's open issues in rank order, judge
  each, plan the fewest moves that put them in band order (``impact.ranking.plan_rerank``) and,
  when asked, carry the plan out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from connector.errors import JiraError, RankPartialError
from connector.protocol import BoardEntry, Boards, Call, Jira
from impact.model import ImpactConfig, ProjectConfig, RankMode
from impact.ranking import (
    PINNED_LABEL,
    Gap,
    Pending,
    RerankPlan,
    Settled,
    gap_between,
    plan_batch_placement,
    plan_rerank,
)
from pipeline.judge import Groups, Judged, fields_to_read, judge

log = logging.getLogger(__name__)

OPEN = "statusCategory != Done"
CANDIDATES = 5  # settled-looking issues tried per read before the next fallback
MAX_READ = 1000  # issues one read of candidates asks for at most
GAP_ROUNDS = 3  # reads of the gaps when issues start waiting during them


class RankRefusedError(JiraError):
    """The board cannot be ranked as set up; each problem says what to fix. Not retried."""

    def __init__(self, board_id: int, problems: Sequence[str]) -> None:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"board {board_id} cannot be ranked:\n{lines}")
        self.problems = tuple(problems)


# ---------------------------------------------------------------------------------------------
# Judging a board's issues


class BoardJudge:
    """Reads board issues with what deciding them takes, and judges them, for one project;
    ``extra_fields`` are read too, and kept in each ``Judged.extra``."""

    def __init__(
        self,
        jira: Jira,
        config: ImpactConfig,
        project: ProjectConfig,
        *,
        extra_fields: Sequence[str] = (),
    ) -> None:
        self.jira = jira
        self.config = config
        self.project = project
        self.field_id = jira.field_id()
        self.extra_fields = tuple(extra_fields)
        self.fields = tuple(dict.fromkeys(fields_to_read(self.field_id) + self.extra_fields))
        self.groups = Groups(jira, config)

    def issues(self, board_id: int, jql: str, limit: int | None = None) -> list[Judged]:
        return [self.judge(entry) for entry in self.entries(board_id, jql, limit)]

    def entries(
        self, board_id: int, jql: str, limit: int | None = None, extra: Sequence[str] = ()
    ) -> tuple[BoardEntry, ...]:
        """The board's issues as read, to judge one by one (``judge``), with ``extra`` fields."""
        fields = (*self.fields, *extra)
        return self.jira.board_issues(board_id, jql=jql, limit=limit, fields=fields)

    def judge(self, entry: BoardEntry) -> Judged:
        given = entry.fields or {}
        return judge(
            {"key": entry.key, "fields": {**given, "labels": list(entry.labels)}},
            self.project,
            field_id=self.field_id,
            groups=self.groups,
            config=self.config,
            extra={name: given.get(name) for name in self.extra_fields},
        )


def settled_clause(project: ProjectConfig, keep: Callable[[int], bool]) -> str | None:
    """JQL for the unpinned issues labelled with a band whose score passes ``keep``: where a
    settled issue of those bands is found (it carries its band's label). None when no band
    passes. ``labels not in`` never matches an issue without labels, which is none of these."""
    labels = [level.label for level in project.levels if keep(level.score)]
    if keep(project.missing.score):
        labels.append(project.missing.label)
    if not labels:
        return None
    return f"labels in {jql_list(labels)} AND labels not in {jql_list([PINNED_LABEL])}"


def jql_string(value: str) -> str:
    """``value`` as a JQL string, quoted and escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jql_list(values: Iterable[str]) -> str:
    """``values`` as a JQL list: ``("a", "b")``."""
    return "(" + ", ".join(jql_string(v) for v in values) + ")"


# ---------------------------------------------------------------------------------------------
# Placement of the issues waiting on a board


@dataclass(frozen=True)
class Placed:
    """What one placement run did: its calls, the issues it placed, those Jira refused."""

    calls: tuple[Call, ...] = ()
    placed: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    skipped: str | None = None  # why nothing was placed (a board that cannot be ranked)


class BoardBusyError(RuntimeError):
    """Issues kept starting to wait while a placement run read the board: it runs again later."""


@dataclass(frozen=True)
class _Side:
    """The settled-looking issues one read found on one side of a gap, in rank order from the
    gap; ``complete`` when the read saw every issue it could (fewer came back than it asked)."""

    found: tuple[Settled, ...]
    complete: bool

    def first(self, late: set[str]) -> Settled | None:
        return next((issue for issue in self.found if issue.key not in late), None)

    def exhausted(self, late: set[str]) -> bool:
        """Whether every issue found started waiting meanwhile, and more may lie beyond."""
        return bool(self.found) and self.first(late) is None and not self.complete


def find_gaps(
    board_id: int,
    scores: Iterable[int],
    waiting: Sequence[str],
    judged: BoardJudge,
    *,
    rank_field: str | None = None,
    waiting_now: Callable[[], Iterable[str]] | None = None,
) -> dict[int, Gap]:
    """Each score's gap among the board's settled issues (``impact.ranking.gap_between``): from
    the last settled issue scoring as much or more and the first scoring less, two reads per
    score, each of at most ``CANDIDATES`` issues beyond the waiting ones (skipped unjudged).
    ``rank_field`` (``customfield_N``, the board's Rank) tells whether those two are in order.

    ``waiting_now`` reads which issues wait once the reads are done: one that started waiting
    (and was labelled) meanwhile is no anchor either. Triage records an issue as waiting before
    it labels it, so every issue the reads saw labelled so is in that list. Raises
    ``BoardBusyError`` when such issues hid every anchor, read after read."""
    skip = set(waiting)
    wanted = sorted(set(scores), reverse=True)
    for _ in range(GAP_ROUNDS):
        sides = {score: _sides(board_id, score, skip, judged, rank_field) for score in wanted}
        late = (set(waiting_now()) - skip) if waiting_now is not None else set()
        if any(side.exhausted(late) for pair in sides.values() for side in pair):
            skip |= late
            continue
        gaps = {}
        for score, (above, below) in sides.items():
            after, before = above.first(late), below.first(late)
            gap = gap_between(score, after, before)
            if gap is not None:
                gaps[score] = gap
            if after is not None and before is not None and before.rank < after.rank:
                log.warning(
                    "board %d is out of band order: %s ranks above %s (a person dragged one?); "
                    "`jira-impact rerank --board %d --apply` puts it right",
                    board_id,
                    before.key,
                    after.key,
                    board_id,
                )
        return gaps
    raise BoardBusyError(f"board {board_id}: issues kept starting to wait; placing them later")


def _sides(
    board_id: int, score: int, skip: set[str], judged: BoardJudge, rank_field: str | None
) -> tuple[_Side, _Side]:
    """What lies on each side of ``score``'s gap: scoring as much or more, scoring less."""
    above = _settled_side(board_id, lambda s: s >= score, "DESC", skip, judged, rank_field)
    below = _settled_side(board_id, lambda s: s < score, "ASC", skip, judged, rank_field)
    return above, below


def _settled_side(
    board_id: int,
    keep: Callable[[int], bool],
    order: str,
    skip: set[str],
    judged: BoardJudge,
    rank_field: str | None,
) -> _Side:
    """The first settled-looking issues, in ``order`` of rank, among those whose band passes
    ``keep`` (labelled for the level they have, not pinned, not in ``skip``)."""
    clause = settled_clause(judged.project, keep)
    if clause is None:
        return _Side((), complete=True)
    jql = f"{OPEN} AND ({clause}) ORDER BY Rank {order}"
    limit = min(MAX_READ, CANDIDATES + len(skip))
    entries = judged.entries(board_id, jql, limit, extra=(rank_field,) if rank_field else ())
    found: list[Settled] = []
    for entry in entries:
        if entry.key in skip:
            continue
        issue = judged.judge(entry)
        if issue.labels_agree and keep(issue.plan.score) and not issue.pinned:
            rank = (entry.fields or {}).get(rank_field or "") or ""
            found.append(Settled(entry.key, issue.plan.score, str(rank)))
            if len(found) >= CANDIDATES:
                break
        # else: labelled for a level it no longer has: its own delivery will place it
    return _Side(tuple(found), complete=len(entries) < limit)


def place_waiting(
    board_id: int,
    waiting: Sequence[Pending],
    judged: BoardJudge,
    *,
    waiting_now: Callable[[], Iterable[str]] | None = None,
) -> Placed:
    """Put the waiting issues at the bottom of their bands on the board (see the module's
    docstring; ``waiting_now`` as for ``find_gaps``). A call Jira refuses for some issues (207
    after the retry) is reported and the others go on; any other Jira failure is raised, and
    ``BoardBusyError``, the issues still waiting."""
    jira = judged.jira
    setup = jira.board_setup(board_id)
    if not setup.ordered_by_rank:
        return Placed(
            skipped=f"board {board_id}'s filter {setup.filter_id} is not ordered by Rank "
            f"({setup.filter_jql!r}); `jira-impact rerank --board {board_id}` says what to fix"
        )
    keys = [issue.key for issue in waiting]
    rank_field = f"customfield_{setup.rank_field_id}" if setup.rank_field_id else None
    scores = [issue.score for issue in waiting]
    gaps = find_gaps(board_id, scores, keys, judged, rank_field=rank_field, waiting_now=waiting_now)
    made: list[Call] = []
    refused: set[str] = set()
    for call in plan_batch_placement(waiting, gaps):
        try:
            made += jira.rank_issues(board_id, call)
        except RankPartialError as exc:
            refused |= set(exc.failed)
            log.warning("board %d: not placed: %s", board_id, exc)
    placed = tuple(key for key in dict.fromkeys(keys) if key not in refused)
    return Placed(tuple(made), placed, tuple(sorted(refused)))


def place_on_board(
    board_id: int,
    waiting: Sequence[Pending],
    config: ImpactConfig,
    jira: Jira,
    *,
    waiting_now: Callable[[], Iterable[str]] | None = None,
) -> Placed:
    """``place_waiting`` on the board of a project in ``config`` (``RankRefusedError`` when it
    is in none)."""
    judged = BoardJudge(jira, config, project_for_board(config, board_id))
    return place_waiting(board_id, waiting, judged, waiting_now=waiting_now)


# ---------------------------------------------------------------------------------------------
# Full rerank


@dataclass(frozen=True)
class BoardReview:
    """A board's open issues judged in rank order, and the rerank that puts them in order."""

    issues: tuple[Judged, ...]
    plan: RerankPlan

    @property
    def disagreeing(self) -> tuple[str, ...]:
        """Issues whose labels are not those of the level they have now."""
        return tuple(j.issue.key for j in self.issues if not j.labels_agree)

    def describe(self) -> str:
        text = self.plan.describe()
        if self.disagreeing:
            text += (
                f"\n{len(self.disagreeing)} issue(s) carry labels that disagree with the level "
                "they have now, and rank by that level: `jira-impact backfill` fixes the labels."
            )
        return text


def project_for_board(config: ImpactConfig, board_id: int) -> ProjectConfig:
    for settings in config.projects:
        if settings.board == board_id:
            found = config.for_project(settings.key)
            assert found is not None
            return found
    raise RankRefusedError(
        board_id,
        [
            f"board {board_id} is not in {config.source}: give the [[projects]] entry it "
            f"belongs to board = {board_id}"
        ],
    )


def read_board(
    board_id: int, config: ImpactConfig, jira: Jira, *, extra_fields: Sequence[str] = ()
) -> BoardReview:
    """The board's open issues in rank order, each judged (with ``extra_fields`` kept: see
    ``BoardJudge``), and the rerank plan for them: one paginated read of the board."""
    project = project_for_board(config, board_id)
    judged = BoardJudge(jira, config, project, extra_fields=extra_fields)
    issues = tuple(judged.issues(board_id, f"{OPEN} ORDER BY Rank ASC"))
    return BoardReview(issues, plan_rerank([issue.board_issue() for issue in issues]))


def plan_board(board_id: int, config: ImpactConfig, jira: Jira) -> BoardReview:
    """Check that the board can be ranked, then read and plan it (``read_board``).

    Raises ``RankRefusedError`` (every problem, each saying what to fix) for a board not in the
    config, a board filter not ordered by Rank, or a service account without Schedule issues."""
    project = project_for_board(config, board_id)
    key = project.project.key
    setup = jira.board_setup(board_id)
    problems = []
    if not setup.ordered_by_rank:
        problems.append(
            f"its filter {setup.filter_id} is not ordered by Rank ({setup.filter_jql!r}): end "
            "the filter's query with ORDER BY Rank ASC (Board settings > General > Filter query)"
        )
    if not jira.can_schedule(key):
        problems.append(
            f"the service account lacks the Schedule issues permission in project {key}: grant "
            "it in the project's permission scheme (Project settings > Permissions)"
        )
    if problems:
        raise RankRefusedError(board_id, problems)
    return read_board(board_id, config, jira)


def apply_rerank(board_id: int, plan: RerankPlan, jira: Boards) -> tuple[Call, ...]:
    """Send the plan's calls in order; the calls made.

    Each call is anchored on an issue that does not move, so an issue that still fails after the
    connector's retry does not spoil the calls after it: they all go, then ``RankPartialError``
    lists every issue that still failed. A 403 stops at once (``JiraForbiddenError``)."""
    made: list[Call] = []
    failed: dict[str, str] = {}
    for call in plan.calls:
        try:
            made += jira.rank_issues(board_id, call)
        except RankPartialError as exc:
            failed |= exc.failed
    if failed:
        listed = ", ".join(f"{key} ({said})" for key, said in failed.items())
        raise RankPartialError(
            f"{len(failed)} of {plan.moved} issues could not be ranked, even on a retry: {listed}",
            failed=failed,
        )
    return tuple(made)


def rerank(board_id: int, config: ImpactConfig, jira: Jira, apply: bool) -> BoardReview:
    """Plan the board's rerank and, with ``apply``, carry it out (the scheduled job for boards of
    projects with ``rank = "full"``: see ``full_rank_boards``)."""
    review = plan_board(board_id, config, jira)
    if apply:
        apply_rerank(board_id, review.plan, jira)
    return review


def full_rank_boards(config: ImpactConfig) -> tuple[int, ...]:
    """The boards to rerank periodically: those of projects with ``rank = "full"``."""
    return _boards(config, (RankMode.FULL,))


def ranked_boards(config: ImpactConfig) -> tuple[int, ...]:
    """The boards whose order the worker keeps (placements): those of projects that rank."""
    return _boards(config, (RankMode.BAND, RankMode.FULL))


def _boards(config: ImpactConfig, modes: tuple[RankMode, ...]) -> tuple[int, ...]:
    boards = (p.board for p in config.projects if p.rank in modes and p.board is not None)
    return tuple(dict.fromkeys(boards))


def ranked_board(project: ProjectConfig) -> int | None:
    """The board whose order the project keeps, or None when it ranks nothing."""
    if project.project.rank is RankMode.OFF:
        return None
    return project.project.board
