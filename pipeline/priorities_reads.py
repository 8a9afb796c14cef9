"""What the priorities pages read from Jira, and how long they keep it.

- A board: one paginated read of its open issues in rank order, judged as the rerank judges
  them (``pipeline.ranking.read_board``), with ``created`` for each issue's age.
- Its project's resolved issues: one search (paged) for the issues resolved in the chart's
  weeks that carry a level's label or the missing label, with their labels and resolution date.

``TimedCache`` keeps what was read for a while, so that a page open in every team does not use
up Jira's rate limit.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from connector.protocol import Jira
from impact.model import ImpactConfig, ProjectConfig
from pipeline.priorities import (
    BoardPriorities,
    Week,
    group_board,
    resolved_from_json,
    weeks_of,
    window_start,
)
from pipeline.ranking import jql_list, jql_string, project_for_board, read_board

EXTRA_FIELDS = ("created", "status", "assignee")
RESOLVED_FIELDS = ("labels", "resolutiondate", "statuscategorychangedate")
RESOLVED_LIMIT = 5_000  # resolved issues the chart counts at most (50 pages of 100)


@dataclass(frozen=True)
class ResolvedWeeks:
    weeks: tuple[Week, ...]
    read: int  # issues the search gave
    complete: bool  # False when the search had more than RESOLVED_LIMIT issues
    undated: int = 0  # done, labelled, and no date to count them by: left out, and said so

    @property
    def empty(self) -> bool:
        """Nothing counted in any week (a fresh install: no triaged issue resolved yet)."""
        return not any(week.total for week in self.weeks)


def read_board_priorities(board_id: int, config: ImpactConfig, jira: Jira) -> BoardPriorities:
    """The board's open issues in their columns (``pipeline.priorities.group_board``).
    ``RankRefusedError`` for a board not in the config; ``JiraError`` when Jira fails."""
    project = project_for_board(config, board_id)
    name = jira.board_setup(board_id).name  # kept by the connector: read once in a while
    review = read_board(board_id, config, jira, extra_fields=EXTRA_FIELDS)
    return group_board(board_id, review.issues, project, name=name)


def resolved_jql(project: ProjectConfig, since: date) -> str:
    """The project's issues resolved since ``since`` that triage labelled, and those done
    without a resolution (their workflow sets none) updated since. Jira reads the date in the
    service account's time zone, so the search starts a day early; ``weeks_of`` counts each
    issue by its exact resolution time, or the time it reached done."""
    labels = [level.label for level in project.levels] + [project.missing.label]
    day = jql_string((since - timedelta(days=1)).isoformat())
    return (
        f"project = {jql_string(project.project.key)} AND labels in {jql_list(labels)} AND "
        f"(resolutiondate >= {day} OR (resolution is EMPTY AND statusCategory = Done AND "
        f"updated >= {day})) ORDER BY key ASC"
    )


def read_resolved(
    board_id: int, config: ImpactConfig, jira: Jira, *, now: datetime
) -> ResolvedWeeks:
    """The board's project's issues resolved per week and class (``pipeline.priorities``)."""
    project = project_for_board(config, board_id)
    jql = resolved_jql(project, window_start(now))
    found = jira.search_issues(jql, fields=RESOLVED_FIELDS, limit=RESOLVED_LIMIT)
    resolved = resolved_from_json(found, project)
    weeks = weeks_of(resolved, now)
    undated = sum(1 for raw in found if _undated(raw))
    return ResolvedWeeks(weeks, len(found), complete=len(found) < RESOLVED_LIMIT, undated=undated)


def _undated(raw: Any) -> bool:
    fields = raw.get("fields") if isinstance(raw, dict) else None
    fields = fields if isinstance(fields, dict) else {}
    return not (fields.get("resolutiondate") or fields.get("statuscategorychangedate"))


class TimedCache:
    """Values kept ``ttl`` seconds (0 keeps nothing), at most ``max_entries`` of them (the
    oldest goes first). One per web process: safe for its threads and greenlets."""

    def __init__(
        self, ttl: float, *, max_entries: int = 64, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._kept: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or self.clock() - kept[0] >= self.ttl:
                return None
            return kept[1]

    def put(self, key: Hashable, value: Any) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._kept.pop(key, None)
            self._kept[key] = (self.clock(), value)
            while len(self._kept) > self.max_entries:
                self._kept.popitem(last=False)

    def __len__(self) -> int:
        return len(self._kept)
