"""What the priorities pages show, from issues already judged and resolved issues already read:
pure functions and frozen dataclasses, no Jira, no Flask, no clock (``now`` is given).

- ``group_board``: a board's open issues in two columns, work that serves paying customers
  (levels of class ``external``, highest first) and internal preferences, with the issues that
  need an impact apart; each column keeps the board's order within a level. The level is the
  one triage gives now (``pipeline.judge``), never what the labels say.
- ``weeks_of``: issues resolved per week by class, for the last ``WEEKS`` weeks (Monday to
  Sunday, UTC; the last is the current week, so far). A resolved issue is not triaged again:
  its class is the one its labels say, as triage wrote them (``resolved_column``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from impact.decide import MISSING_BAND, reason
from impact.model import ImpactClass, ProjectConfig
from pipeline.judge import Judged

EXTERNAL = "external"
INTERNAL = "internal-preference"
MISSING = "missing"
COLUMNS = (EXTERNAL, INTERNAL, MISSING)
COLUMN_OF_CLASS = {
    ImpactClass.EXTERNAL: EXTERNAL,
    ImpactClass.INTERNAL_PREFERENCE: INTERNAL,
    ImpactClass.UNKNOWN: MISSING,
}
WEEKS = 12


# ---------------------------------------------------------------------------------------------
# The board now


@dataclass(frozen=True)
class Row:
    """One open issue as the pages show it."""

    position: int  # its place on the board, 1-based
    key: str
    summary: str
    level: str  # a level's name, or "missing"
    column: str  # one of COLUMNS
    score: int
    why: str
    reporter: str | None  # the reporter's display name
    created: datetime | None
    status: str | None = None  # the issue's status, as Jira names it
    assignee: str | None = None  # who it is assigned to (display name); None: nobody


@dataclass(frozen=True)
class Count:
    """How many of the board's open issues are in a column (or a level), and their share."""

    name: str
    count: int
    share: float  # of all the board's open issues; 0.0 on an empty board


@dataclass(frozen=True)
class BoardPriorities:
    board_id: int
    project: str
    columns: tuple[tuple[str, tuple[Row, ...]], ...]  # (column, rows) in COLUMNS order
    classes: tuple[Count, ...]  # per column, in COLUMNS order
    levels: tuple[Count, ...]  # per level, highest score first, then missing
    name: str = ""  # the board's name in Jira ("" when Jira gave none)

    @property
    def title(self) -> str:
        """What people call the board: its name in Jira, else its number."""
        return self.name or f"Board {self.board_id}"

    @property
    def total(self) -> int:
        return sum(count.count for count in self.classes)

    def column(self, name: str) -> tuple[Row, ...]:
        return dict(self.columns)[name]

    def rows(self) -> tuple[Row, ...]:
        """Every issue, in board order."""
        return tuple(sorted((r for _, rows in self.columns for r in rows), key=_position))


def row_of(position: int, judged: Judged) -> Row:
    reporter = judged.issue.reporter
    return Row(
        position=position,
        key=judged.issue.key,
        summary=judged.issue.summary,
        level=judged.band,
        column=COLUMN_OF_CLASS[judged.plan.impact_class],
        score=judged.plan.score,
        why=reason(judged.plan),
        reporter=(reporter.display_name or reporter.name) if reporter else None,
        created=parse_time(judged.extra.get("created")),
        status=_named(judged.extra.get("status"), "name"),
        assignee=_named(judged.extra.get("assignee"), "displayName", "name"),
    )


def _named(value: Any, *keys: str) -> str | None:
    """The first of ``keys`` that ``value`` (a Jira object: a status, a user) holds as text."""
    if isinstance(value, Mapping):
        for key in keys:
            if isinstance(value.get(key), str) and value[key].strip():
                return str(value[key])
    return None


def group_board(
    board_id: int, issues: Sequence[Judged], project: ProjectConfig, *, name: str = ""
) -> BoardPriorities:
    """``issues`` (judged, in board order) in their columns, with the counts and shares."""
    rows = [row_of(position, judged) for position, judged in enumerate(issues, 1)]
    columns = tuple(
        (name, tuple(sorted((r for r in rows if r.column == name), key=_by_level)))
        for name in COLUMNS
    )
    total = len(rows)
    levels = [level.name for level in project.levels] + [MISSING_BAND]
    return BoardPriorities(
        board_id=board_id,
        name=name,
        project=project.project.key,
        columns=columns,
        classes=tuple(_count(name, len(found), total) for name, found in columns),
        levels=tuple(
            _count(name, sum(1 for r in rows if r.level == name), total) for name in levels
        ),
    )


def _by_level(row: Row) -> tuple[int, int]:
    return -row.score, row.position  # the highest level first, the board's order within it


def _position(row: Row) -> int:
    return row.position


def _count(name: str, count: int, total: int) -> Count:
    return Count(name, count, count / total if total else 0.0)


def age_text(created: datetime | None, now: datetime) -> str:
    """How long ago an issue was created, as a person says it: 5 h, 3 d, 7 w."""
    if created is None:
        return "–"
    seconds = max(0.0, (now - created).total_seconds())
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h"
    if seconds < 14 * 86400:
        return f"{int(seconds // 86400)} d"
    return f"{int(seconds // (7 * 86400))} w"


def parse_time(value: Any) -> datetime | None:
    """A Jira timestamp (``2025-03-01T10:00:00.000+0000``, or ISO 8601); None if it is not."""
    if not isinstance(value, str):
        return None
    try:
        found = datetime.fromisoformat(value)  # Jira's +0000 too, fifty times strptime's speed
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Resolved issues by week


@dataclass(frozen=True)
class Resolved:
    key: str
    resolved: datetime
    column: str  # one of COLUMNS


@dataclass(frozen=True)
class Week:
    start: date  # its Monday
    external: int = 0
    internal: int = 0
    missing: int = 0

    @property
    def total(self) -> int:
        return self.external + self.internal + self.missing

    @property
    def external_share(self) -> float | None:
        """The share of the week's resolved issues that served paying customers; None for a
        week that resolved none."""
        return self.external / self.total if self.total else None

    def count(self, column: str) -> int:
        return {EXTERNAL: self.external, INTERNAL: self.internal, MISSING: self.missing}[column]


def week_starts(now: datetime, weeks: int = WEEKS) -> tuple[date, ...]:
    """The Mondays (UTC) of the last ``weeks`` weeks, oldest first; the last is this week's."""
    this_monday = now.astimezone(UTC).date() - timedelta(days=now.astimezone(UTC).weekday())
    return tuple(this_monday - timedelta(weeks=back) for back in range(weeks - 1, -1, -1))


def resolved_column(labels: Iterable[str], project: ProjectConfig) -> str | None:
    """The column of a resolved issue, by the labels triage wrote: its level's (the highest
    score's, if it carries several), else missing for the missing label; None for an issue
    that carries none of them (never triaged)."""
    held = set(labels)
    for level in project.levels:  # highest score first
        if level.label in held:
            return COLUMN_OF_CLASS[level.impact_class]
    return MISSING if project.missing.label in held else None


def resolved_from_json(
    issues: Iterable[Mapping[str, Any]], project: ProjectConfig
) -> tuple[Resolved, ...]:
    """Search results (with ``labels``, ``resolutiondate`` and ``statuscategorychangedate``) as
    ``Resolved``. An issue done without a resolution (a workflow that sets none) counts on the
    day it reached done; one with neither date, or without a managed label, is left out."""
    found = []
    for raw in issues:
        fields = raw.get("fields")
        fields = fields if isinstance(fields, Mapping) else {}
        labels = fields.get("labels")
        column = resolved_column(
            (x for x in labels if isinstance(x, str)) if isinstance(labels, list) else (), project
        )
        when = parse_time(fields.get("resolutiondate")) or parse_time(
            fields.get("statuscategorychangedate")
        )
        if column is not None and when is not None:
            found.append(Resolved(str(raw.get("key") or ""), when, column))
    return tuple(found)


def weeks_of(resolved: Iterable[Resolved], now: datetime, weeks: int = WEEKS) -> tuple[Week, ...]:
    """The resolved issues counted per week and column, for the last ``weeks`` weeks, oldest
    first; an issue resolved before them (or after ``now``) is not counted."""
    starts = week_starts(now, weeks)
    counts = {start: dict.fromkeys(COLUMNS, 0) for start in starts}
    for issue in resolved:
        day = issue.resolved.astimezone(UTC).date()
        start = day - timedelta(days=day.weekday())
        if start in counts and issue.resolved <= now:
            counts[start][issue.column] += 1
    return tuple(
        Week(start, counts[start][EXTERNAL], counts[start][INTERNAL], counts[start][MISSING])
        for start in starts
    )


def window_start(now: datetime, weeks: int = WEEKS) -> date:
    """The first day the chart counts: the Monday of the oldest week."""
    return week_starts(now, weeks)[0]
