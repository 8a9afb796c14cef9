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

EXTRA_FIELDS = ("created",)
RESOLVED_FIELDS = ("labels", "resolutiondate")
RESOLVED_LIMIT = 5_000  # resolved issues the chart counts at most (50 pages of 100)


@dataclass(frozen=True)
class ResolvedWeeks:
    weeks: tuple[Week, ...]
    read: int  # issues the search gave
    complete: bool  # False when the search had more than RESOLVED_LIMIT issues


def read_board_priorities(board_id: int, config: ImpactConfig, jira: Jira) -> BoardPriorities:
    """The board's open issues in their columns (``pipeline.priorities.group_board``).
    ``RankRefusedError`` for a board not in the config; ``JiraError`` when Jira fails."""
    project = project_for_board(config, board_id)
    review = read_board(board_id, config, jira, extra_fields=EXTRA_FIELDS)
    return group_board(board_id, review.issues, project)


def resolved_jql(project: ProjectConfig, since: date) -> str:
    """The project's issues resolved since ``since`` that triage labelled. Jira reads the date in
    the service account's time zone, so the search starts a day early; ``weeks_of`` counts each
    issue by its exact resolution time."""
    labels = [level.label for level in project.levels] + [project.missing.label]
    day = (since - timedelta(days=1)).isoformat()
    return (
        f"project = {jql_string(project.project.key)} AND resolutiondate >= {jql_string(day)} "
        f"AND labels in {jql_list(labels)} ORDER BY resolutiondate ASC"
    )


def read_resolved(
    board_id: int, config: ImpactConfig, jira: Jira, *, now: datetime
) -> ResolvedWeeks:
    """The board's project's issues resolved per week and class (``pipeline.priorities``)."""
    project = project_for_board(config, board_id)
    jql = resolved_jql(project, window_start(now))
    found = jira.search_issues(jql, fields=RESOLVED_FIELDS, limit=RESOLVED_LIMIT)
    weeks = weeks_of(resolved_from_json(found, project), now)
    return ResolvedWeeks(weeks, len(found), complete=len(found) < RESOLVED_LIMIT)


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
