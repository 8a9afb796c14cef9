"""What the rest of the product asks of Jira. ``connector.client.JiraConnector`` is the real
one; ``tests/conftest.py`` holds the one recording fake the tests above the connector use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from impact.model import Person, Plan


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


class Jira(Protocol):
    def field_id(self) -> str | None:
        """The impact field's id (``customfield_NNNNN``), found by the configured name or id once.

        ``None`` when no such field exists; the caller treats every issue as having no value."""

    def service_account(self) -> Person:
        """The account the product acts as (``GET myself``), fetched once."""

    def get_issue(self, key: str) -> Mapping[str, Any]:
        """The issue's JSON as ``GET /rest/api/2/issue/{key}`` returns it."""

    def user_groups(self, person: Person) -> tuple[str, ...]:
        """Group names of a user (for ``reporter_groups`` rules)."""

    def apply_plan(self, plan: Plan) -> tuple[Call, ...]:
        """Carry a plan out: at most one edit and at most one comment. An empty plan makes no call.

        Returns the calls made. Raises a ``connector.errors.JiraError`` on failure."""
