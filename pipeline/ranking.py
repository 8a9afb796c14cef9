"""Board ranking in the worker and the ``rerank`` command: the glue between the pure planner
(``impact.ranking``) and the board methods of the connector (``connector.protocol.Boards``).

- ``place``: after triage gave an issue a new band, put it at the bottom of that band with one
  rank call, found with small bounded queries; no call when it already sits in its band.
- ``rerank``: read the board's open issues in rank order, plan the fewest moves that put them in
  band order (``impact.ranking.plan_rerank``) and, when asked, carry the plan out.

Bands come from the labels this product writes (see ``band_of``); issues labelled
``rank-pinned`` are never moved and never used to find a band. Done issues are left out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from connector.errors import JiraError, RankPartialError
from connector.protocol import BoardEntry, Boards, Call
from impact.decide import MISSING_BAND
from impact.model import ImpactConfig, Plan, ProjectConfig, RankMode
from impact.ranking import PINNED_LABEL, BoardIssue, RankCall, RerankPlan, plan_rerank

log = logging.getLogger(__name__)

OPEN = "statusCategory != Done"
Search = Callable[[str, int], Sequence[BoardEntry]]  # (jql, at most) -> entries in Jira's order


class RankRefusedError(JiraError):
    """The board cannot be ranked as set up; each problem says what to fix. Not retried."""

    def __init__(self, board_id: int, problems: Sequence[str]) -> None:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"board {board_id} cannot be ranked:\n{lines}")
        self.problems = tuple(problems)


# ---------------------------------------------------------------------------------------------
# Bands


def band_of(labels: Iterable[str], project: ProjectConfig) -> tuple[str, int]:
    """The band (a level name, or ``"missing"``) and score that an issue's labels put it in.

    A level's label puts the issue in that level's band (with several, the highest scoring one).
    Otherwise the issue is in the missing band: with the missing label, and also with no managed
    label at all (an issue not triaged yet, or whose labels a person took off, ranks as missing
    until triage labels it).
    """
    present = set(labels)
    for level in project.levels:  # highest score first
        if level.label in present:
            return level.name, level.score
    return MISSING_BAND, project.missing.score


def board_issue(entry: BoardEntry, project: ProjectConfig) -> BoardIssue:
    band, score = band_of(entry.labels, project)
    return BoardIssue(entry.key, score, band, pinned=PINNED_LABEL in entry.labels)


def band_clause(project: ProjectConfig, keep: Callable[[int], bool]) -> str | None:
    """JQL matching the unpinned issues whose band score passes ``keep`` (a range of scores, as
    ``band_of`` reads labels); None when no band passes. Labels are compared as Jira does: ``not
    in`` never matches an issue without labels, hence the ``is EMPTY``."""
    levels = project.levels
    kept = [level for level in levels if keep(level.score)]
    parts = []
    if kept:
        floor = min(level.score for level in kept)
        outranking = [lv.label for lv in levels if not keep(lv.score) and lv.score > floor]
        parts.append(
            f"labels in {_listed(lv.label for lv in kept)} "
            f"AND labels not in {_listed([*outranking, PINNED_LABEL])}"
        )
    if keep(project.missing.score):
        unlabelled = [*(lv.label for lv in levels), PINNED_LABEL]
        parts.append(f"labels is EMPTY OR labels not in {_listed(unlabelled)}")
    return " OR ".join(f"({part})" for part in parts) or None


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _listed(values: Iterable[str]) -> str:
    return "(" + ", ".join(_quoted(v) for v in values) + ")"


# ---------------------------------------------------------------------------------------------
# Placement


def placement_call(key: str, score: int, project: ProjectConfig, search: Search) -> RankCall | None:
    """The rank call that puts ``key`` (now scoring ``score``) at the bottom of its band on the
    board ``search`` reads, or None when it already sits in its band, is pinned or is not there.

    In its band means: no higher-band issue below it and no lower-band issue above it (pinned
    and Done issues never count). A query sees one side of the issue only, so that takes up to
    two bounded ones: the first two of {it, lower bands}, then, unless a lower-band issue is
    above it, the last of {it, higher bands}. Out of its band, one more finds the last other
    issue of its band, and the anchor is the one the planner's ``plan_placement`` picks: after
    the last issue of its band, else before the first lower-band issue, else after the last
    higher-band issue. On a board in band order but for this issue, the call is exactly the
    planner's. An issue a person dragged far out of its band can make this one look out of its
    band too: it then goes to the bottom of its band, where a new or re-classified issue goes
    anyway.
    """
    me = f"key = {_quoted(key)}"

    def around(keep: Callable[[int], bool], order: str, limit: int) -> list[BoardEntry]:
        clause = band_clause(project, keep)
        if clause is None:
            return []
        return list(search(f"{OPEN} AND ({me} OR {clause}) ORDER BY Rank {order}", limit))

    first_lower = around(lambda s: s < score, "ASC", 2)
    lower_above = bool(first_lower) and first_lower[0].key != key
    last_higher = [] if lower_above else around(lambda s: s > score, "DESC", 1)
    higher_below = bool(last_higher) and last_higher[0].key != key
    if not (higher_below or lower_above):
        return None
    last_same = around(lambda s: s == score, "DESC", 2)
    found = [e for e in (*last_higher, *first_lower, *last_same) if e.key == key]
    if not found:  # out of band on every side, or not on the board (its filter leaves it out)
        found = list(search(f"{OPEN} AND {me}", 1))
    if not found or PINNED_LABEL in found[0].labels:
        return None
    same, lower, higher = (
        [e for e in entries if e.key != key] for entries in (last_same, first_lower, last_higher)
    )
    if same:
        return RankCall((key,), after=same[0].key)
    if lower:
        return RankCall((key,), before=lower[0].key)
    return RankCall((key,), after=higher[0].key) if higher else None


def place(plan: Plan, project: ProjectConfig, jira: Boards) -> tuple[Call, ...]:
    """Put a triaged issue at the bottom of its band on its project's board; the calls made.

    Does nothing unless the plan gives a band (``plan.rank``), the project ranks and has a board
    whose filter is ordered by Rank. A person who drags an issue inside its band is never
    overridden: only the issue triage just re-classified is looked at. Jira's failures are
    logged, not raised: the labels are already written, and a retried delivery would not place
    the issue again (its labels no longer change), so the next rerank is what puts it right.
    """
    board_id = project.project.board
    if plan.rank is None or project.project.rank is RankMode.OFF or board_id is None:
        return ()
    band = plan.rank.band
    try:
        setup = jira.board_setup(board_id)
        if not setup.ordered_by_rank:
            log.warning(
                "%s: not ranked: board %d's filter %s is not ordered by Rank (%r)",
                plan.issue_key,
                board_id,
                setup.filter_id,
                setup.filter_jql,
            )
            return ()

        def search(jql: str, limit: int) -> Sequence[BoardEntry]:
            return jira.board_issues(board_id, jql=jql, limit=limit)

        call = placement_call(plan.issue_key, plan.rank.score, project, search)
        if call is None:
            log.info("%s: already in its band (%s) on board %d", plan.issue_key, band, board_id)
            return ()
        calls = jira.rank_issues(board_id, call)
    except JiraError as exc:
        log.warning(
            "%s: not placed in its band (%s) on board %d: %s; "
            "`jira-impact rerank --board %d --apply` puts the board in order",
            plan.issue_key,
            band,
            board_id,
            exc,
            board_id,
        )
        return ()
    log.info("%s: ranked to the bottom of its band (%s): %s", plan.issue_key, band, call.describe())
    return calls


# ---------------------------------------------------------------------------------------------
# Full rerank


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


def plan_board(board_id: int, config: ImpactConfig, jira: Boards) -> RerankPlan:
    """Check that the board can be ranked, read its open issues in rank order, plan the rerank.

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
    entries = jira.board_issues(board_id, jql=f"{OPEN} ORDER BY Rank ASC")
    return plan_rerank([board_issue(entry, project) for entry in entries])


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


def rerank(board_id: int, config: ImpactConfig, jira: Boards, apply: bool) -> RerankPlan:
    """Plan the board's rerank and, with ``apply``, carry it out (the scheduled job for boards of
    projects with ``rank = "full"``: see ``full_rank_boards``)."""
    plan = plan_board(board_id, config, jira)
    if apply:
        apply_rerank(board_id, plan, jira)
    return plan


def full_rank_boards(config: ImpactConfig) -> tuple[int, ...]:
    """The boards to rerank periodically: those of projects with ``rank = "full"``."""
    boards = (p.board for p in config.projects if p.rank is RankMode.FULL and p.board is not None)
    return tuple(dict.fromkeys(boards))
