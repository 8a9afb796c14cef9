"""Issue search: Cloud's ``GET /rest/api/2/search/jql`` (pages by ``nextPageToken``, no total)
and Data Center's ``GET /rest/api/2/search`` (``startAt``/``total``).

``SearchMixin`` gives ``JiraConnector`` ``search_page`` (one page, for callers that keep their
own place, as the backfill does) and ``search_issues`` (every page up to a limit). Everything
goes through the connector's ``request``, so every call is recorded and every failure is a
``connector.errors`` type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connector.errors import JiraError
from connector.protocol import API, MAX_PAGES, Requesting

SEARCH_PAGE = 100  # Cloud sends at most 100 issues a page when fields are asked for


@dataclass(frozen=True)
class SearchPage:
    issues: tuple[Mapping[str, Any], ...]
    cursor: str | None  # what asks for the next page; None on the last


class SearchMixin(Requesting):
    """The search methods of ``JiraConnector``."""

    if TYPE_CHECKING:

        def is_cloud(self) -> bool: ...

    def search_page(
        self, jql: str, *, fields: Sequence[str], cursor: str | None = None, size: int = 50
    ) -> SearchPage:
        """One page of a search. ``cursor`` is the one the previous page gave (Cloud's
        ``nextPageToken``; on Data Center the next ``startAt``)."""
        params = {"jql": jql, "fields": ",".join(fields), "maxResults": str(size)}
        if self.is_cloud():
            if cursor:
                params["nextPageToken"] = cursor
            page = self.request("GET", f"{API}/search/jql", params=params)
            issues = _issues(page)
            token = page.get("nextPageToken") if isinstance(page, Mapping) else None
            last = not isinstance(token, str) or not token or page.get("isLast") is True
            return SearchPage(issues, None if last or not issues else token)
        start = int(cursor) if cursor and cursor.isdigit() else 0
        params["startAt"] = str(start)
        page = self.request("GET", f"{API}/search", params=params)
        issues = _issues(page)
        total = page.get("total") if isinstance(page, Mapping) else None
        following = start + len(issues)
        more = bool(issues) and (not isinstance(total, int) or following < total)
        return SearchPage(issues, str(following) if more else None)

    def search_issues(
        self, jql: str, *, fields: Sequence[str], limit: int
    ) -> tuple[Mapping[str, Any], ...]:
        """The issues ``jql`` matches, in Jira's order, with ``fields``: at most ``limit``,
        read a page after another."""
        found: list[Mapping[str, Any]] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            size = min(SEARCH_PAGE, limit - len(found))
            if size <= 0:
                break
            page = self.search_page(jql, fields=fields, cursor=cursor, size=size)
            found += page.issues
            cursor = page.cursor
            if cursor is None:
                break
        else:
            raise JiraError(f"the search {jql!r} has more than {MAX_PAGES} pages")
        return tuple(found[:limit])


def _issues(page: Any) -> tuple[Mapping[str, Any], ...]:
    raw = page.get("issues") if isinstance(page, Mapping) else None
    return tuple(i for i in raw if isinstance(i, Mapping)) if isinstance(raw, list) else ()
