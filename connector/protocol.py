"""What the rest of the product asks of Jira. ``connector.client.JiraConnector`` is the real
one; ``tests/conftest.py`` holds the one recording fake the tests above the connector use.
``Boards`` is what board ranking asks on top (``connector.boards`` implements it); a ``Jira``
is also a ``Boards``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from impact.model import Person, Plan
from impact.ranking import RankCall

API = "/rest/api/2"  # Jira's platform REST API, the same path on Cloud and Data Center
MAX_PAGES = 1_000  # bounds every paged read


@dataclass(frozen=True)
class Call:
    """One HTTP request made to Jira, as recorded for the delivery log and the demo."""

    method: str
    path: str  # without host and query string, e.g. "/rest/api/2/issue/SHOP-1"
    status: int | None  # None when no answer came
    ms: float = 0.0

    def __str__(self) -> str:
        status = self.status if self.status is not None else "no answer"
        return f"{self.method} {self.path} -> {status}"


@dataclass(frozen=True)
class BoardSetup:
    """What ranking needs to know of a board: its configuration and its saved filter."""

    board_id: int
    rank_field_id: int | None  # the configuration's ranking.rankCustomFieldId
    filter_id: str
    filter_jql: str
    ordered_by_rank: bool  # the filter's first ORDER BY key is Rank, ascending
    name: str = ""  # the board's name, as people know it


@dataclass(frozen=True)
class BoardEntry:
    """One issue of a board as ranking reads it: its key, its labels, and the fields asked for
    (as ``GET issue`` gives them), from which ``pipeline.judge`` decides its level."""

    key: str
    labels: tuple[str, ...] = ()
    fields: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


class Requesting:
    """The base of the connector's mixins (boards, search): they send every call through
    ``JiraConnector.request``, which records it and turns failures into ``connector.errors``."""

    if TYPE_CHECKING:
        calls: list[Call]

        def request(
            self,
            method: str,
            path: str,
            *,
            params: Mapping[str, str] | None = None,
            body: Mapping[str, Any] | None = None,
        ) -> Any: ...


class Boards(Protocol):
    def board_setup(self, board_id: int) -> BoardSetup:
        """The board's rank field and filter, fetched once and kept for a while (they rarely
        change). Raises ``JiraNotFoundError`` for a board the account cannot see."""

    def board_issues(
        self,
        board_id: int,
        *,
        jql: str,
        limit: int | None = None,
        fields: Sequence[str] = ("labels",),
    ) -> tuple[BoardEntry, ...]:
        """The board's issues matching ``jql`` (which may end in its own ``ORDER BY``), in the
        order Jira gives them (rank order by default); at most ``limit``, every page when None;
        each with ``fields``."""

    def can_schedule(self, project_key: str) -> bool:
        """Whether the service account holds the Schedule issues permission in the project."""

    def rank_issues(self, board_id: int, call: RankCall) -> tuple[Call, ...]:
        """Send one rank call with the board's rank field. A 207 is retried once for the failed
        issues only; what still fails raises ``RankPartialError``. A 403 raises
        ``JiraForbiddenError`` naming the Schedule issues permission. Returns the calls made."""


class Jira(Boards, Protocol):
    def field_id(self) -> str | None:
        """The impact field's id (``customfield_NNNNN``), found by the configured name or id once.

        ``None`` when no such field exists; the caller treats every issue as having no value."""

    def service_account(self) -> Person:
        """The account the product acts as (``GET myself``), fetched once."""

    def get_issue(self, key: str) -> Mapping[str, Any]:
        """The issue's JSON as ``GET /rest/api/2/issue/{key}`` returns it."""

    def user_groups(self, person: Person) -> tuple[str, ...]:
        """Group names of a user (for ``reporter_groups`` rules)."""

    def search_issues(
        self, jql: str, *, fields: Sequence[str], limit: int
    ) -> tuple[Mapping[str, Any], ...]:
        """The issues ``jql`` matches, in Jira's order, each with ``fields``; at most ``limit``."""

    def time_limit(self, seconds: float) -> AbstractContextManager[None]:
        """Within it, calls wait for Jira ``seconds`` in all, then raise
        ``JiraUnavailableError``."""

    def apply_plan(self, plan: Plan, *, may_have_asked: bool = True) -> tuple[Call, ...]:
        """Carry a plan out: at most one edit and at most one comment. An empty plan makes no call.

        The ask is posted unless the service account posted it on the issue already, which is
        looked up only when ``may_have_asked``. Returns the calls made. Raises a
        ``connector.errors.JiraError`` on failure."""
