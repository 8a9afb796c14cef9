"""Board access for ranking: a board's rank field and filter, its open issues in rank order, the
Schedule issues permission, and rank calls with their 207 partial answers.

``BoardsMixin`` gives ``JiraConnector`` the ``connector.protocol.Boards`` methods; it sends
everything through the connector's ``request``, so every call is recorded and every failure is a
``connector.errors`` type. Endpoints (Jira Software REST, the same on Cloud and Data Center):

- ``GET /rest/agile/1.0/board/{id}/configuration``: ``ranking.rankCustomFieldId``, ``filter.id``
- ``GET /rest/api/2/filter/{id}``: the filter's JQL, which must be ordered by Rank
- ``GET /rest/agile/1.0/board/{id}/issue``: the board's issues, ``jql`` ANDed with the board's
  filter, in rank order unless the ``jql`` has its own ``ORDER BY``; pages of ``startAt``/``total``
- ``GET /rest/api/2/mypermissions?projectKey=K&permissions=SCHEDULE_ISSUES``
- ``PUT /rest/agile/1.0/issue/rank``: at most 50 issues; 204, or 207 with per-issue ``entries``

A board's configuration and filter rarely change, so they are kept for ``SETUP_TTL_SECONDS`` per
connector (one connector per worker thread): a fixed filter is seen within that time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from connector.errors import JiraAnswerError, JiraError, JiraForbiddenError, RankPartialError
from connector.protocol import API, MAX_PAGES, BoardEntry, BoardSetup, Call, Requesting
from impact.ranking import RankCall

AGILE = "/rest/agile/1.0"
RANK_PATH = f"{AGILE}/issue/rank"
SCHEDULE_ISSUES = "SCHEDULE_ISSUES"
SETUP_TTL_SECONDS = 600.0
PAGE_SIZE = 500  # Jira may answer with fewer per page; paging follows what it sends

RANK_FORBIDDEN = (
    "the service account may not rank these issues: grant it the Schedule issues permission "
    "in the project of every issue on the board"
)

# ---------------------------------------------------------------------------------------------
# Pure helpers

_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)


def order_by_keys(jql: str) -> tuple[tuple[str, str], ...]:
    """The ``ORDER BY`` keys of ``jql`` as (field, direction) pairs, field unquoted and in lower
    case, direction ``"asc"`` or ``"desc"`` (``"asc"`` when not given); () when there is none.

    Quoted strings are skipped, so ``summary ~ "order by rank"`` has no ``ORDER BY``."""
    blanked = _QUOTED.sub(lambda m: "\0" * len(m.group()), jql)  # same length, no quotes
    found = list(_ORDER_BY.finditer(blanked))
    if not found:
        return ()
    start = found[-1].end()
    keys = []
    for part in _split_top_level(jql[start:], blanked[start:]):
        words = part.split()
        direction = "asc"
        if len(words) > 1 and words[-1].lower() in ("asc", "desc"):
            direction, words = words[-1].lower(), words[:-1]
        if words:
            keys.append((" ".join(words).strip("\"'").lower(), direction))
    return tuple(keys)


def orders_by_rank(jql: str, rank_field_id: int | None = None) -> bool:
    """Whether the filter's first ``ORDER BY`` key is Rank, ascending: what Jira needs before a
    board can be ranked. ``cf[N]`` of the board's rank field counts as Rank."""
    keys = order_by_keys(jql)
    if not keys:
        return False
    field, direction = keys[0]
    names = {"rank"} | ({f"cf[{rank_field_id}]"} if rank_field_id is not None else set())
    return field in names and direction == "asc"


def _split_top_level(text: str, blanked: str) -> list[str]:
    parts, last = [], 0
    for at, char in enumerate(blanked):
        if char == ",":
            parts.append(text[last:at])
            last = at + 1
    parts.append(text[last:])
    return parts


def retry_calls(call: RankCall, failed: Sequence[str]) -> tuple[RankCall, ...]:
    """The calls that put the issues of ``call`` that failed where ``call`` meant them to be,
    given that the others moved: each run of failed issues goes right after the issue before it
    in the call (the anchor for the first run of an ``after`` call), or right before the issue
    after it (the anchor for the last run of a ``before`` call)."""
    lost = set(failed)
    runs: list[tuple[int, int]] = []  # [start, end) of each run of failed issues
    for at, key in enumerate(call.issues):
        if key not in lost:
            continue
        if runs and runs[-1][1] == at:
            runs[-1] = (runs[-1][0], at + 1)
        else:
            runs.append((at, at + 1))
    calls = []
    for start, end in runs:
        keys = call.issues[start:end]
        if call.after is not None:
            calls.append(RankCall(keys, after=call.issues[start - 1] if start else call.after))
        else:
            last = end == len(call.issues)
            calls.append(RankCall(keys, before=call.before if last else call.issues[end]))
    return tuple(calls)


def failed_entries(answer: Any) -> dict[str, str]:
    """Issue key -> Jira's message, for each entry of a 207 answer whose status is not 2xx."""
    entries = answer.get("entries") if isinstance(answer, Mapping) else None
    failed: dict[str, str] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        status = entry.get("status")
        if isinstance(status, int) and 200 <= status < 300:
            continue
        key = str(entry.get("issueKey") or entry.get("issueId") or "?")
        errors = entry.get("errors")
        said = "; ".join(str(e) for e in errors) if isinstance(errors, list) else ""
        failed[key] = said or f"status {status}"
    return failed


def setup_from(board_id: int, configuration: Mapping[str, Any], jql: str) -> BoardSetup:
    ranking = configuration.get("ranking")
    field = ranking.get("rankCustomFieldId") if isinstance(ranking, Mapping) else None
    rank_field_id = int(field) if isinstance(field, int | str) and str(field).isdigit() else None
    filter_ref = configuration.get("filter")
    filter_id = str(filter_ref.get("id", "")) if isinstance(filter_ref, Mapping) else ""
    return BoardSetup(
        board_id=board_id,
        rank_field_id=rank_field_id,
        filter_id=filter_id,
        filter_jql=jql,
        ordered_by_rank=orders_by_rank(jql, rank_field_id),
        name=str(configuration.get("name") or ""),
    )


def _entry(raw: Any) -> BoardEntry | None:
    if not isinstance(raw, Mapping) or not raw.get("key"):
        return None
    given = raw.get("fields")
    fields: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    labels = fields.get("labels")
    return BoardEntry(str(raw["key"]), tuple(str(x) for x in labels or ()), fields)


# ---------------------------------------------------------------------------------------------
# The connector's board methods


class BoardsMixin(Requesting):
    """The ``connector.protocol.Boards`` methods of ``JiraConnector``."""

    def board_setup(self, board_id: int) -> BoardSetup:
        cache: dict[int, tuple[float, BoardSetup]] = self.__dict__.setdefault("_board_setups", {})
        kept = cache.get(board_id)
        if kept is not None and time.monotonic() - kept[0] < SETUP_TTL_SECONDS:
            return kept[1]
        path = f"{AGILE}/board/{int(board_id)}/configuration"
        configuration = self.request("GET", path)
        if not isinstance(configuration, Mapping):
            raise JiraError(f"board {board_id} has no configuration", method="GET", path=path)
        probe = setup_from(board_id, configuration, "")
        if not probe.filter_id.isdigit():
            raise JiraError(
                f"board {board_id}'s configuration names no filter", method="GET", path=path
            )
        saved = self.request("GET", f"{API}/filter/{probe.filter_id}")
        jql = str(saved.get("jql") or "") if isinstance(saved, Mapping) else ""
        setup = setup_from(board_id, configuration, jql)
        cache[board_id] = (time.monotonic(), setup)
        return setup

    def forget_board_setups(self) -> None:
        """Read each board's configuration again next time (a check wants Jira's answer now)."""
        self.__dict__.pop("_board_setups", None)

    def board_issues(
        self,
        board_id: int,
        *,
        jql: str,
        limit: int | None = None,
        fields: Sequence[str] = ("labels",),
    ) -> tuple[BoardEntry, ...]:
        path = f"{AGILE}/board/{int(board_id)}/issue"
        found: list[BoardEntry] = []
        for _ in range(MAX_PAGES):
            size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(found))
            if size <= 0:
                break
            params = {
                "jql": jql,
                "fields": ",".join(fields),
                "startAt": str(len(found)),
                "maxResults": str(size),
            }
            page = self.request("GET", path, params=params)
            raw = page.get("issues") if isinstance(page, Mapping) else None
            issues = raw if isinstance(raw, list) else []
            found += [entry for entry in map(_entry, issues) if entry is not None]
            total = page.get("total") if isinstance(page, Mapping) else None
            if not issues or (isinstance(total, int) and len(found) >= total):
                break
        else:
            too_many = f"board {board_id} has more than {MAX_PAGES} pages of issues"
            raise JiraError(too_many, method="GET", path=path)
        seen: set[str] = set()
        for entry in found:
            if entry.key in seen:  # an order with one issue in two places is no order
                raise JiraAnswerError(
                    f"the board's issues list {entry.key} twice", method="GET", path=path
                )
            seen.add(entry.key)
        return tuple(found if limit is None else found[:limit])

    def can_schedule(self, project_key: str) -> bool:
        answer = self.request(
            "GET",
            f"{API}/mypermissions",
            params={"projectKey": project_key, "permissions": SCHEDULE_ISSUES},
        )
        permissions = answer.get("permissions") if isinstance(answer, Mapping) else None
        held = permissions.get(SCHEDULE_ISSUES) if isinstance(permissions, Mapping) else None
        return isinstance(held, Mapping) and held.get("havePermission") is True

    def rank_issues(self, board_id: int, call: RankCall) -> tuple[Call, ...]:
        first = len(self.calls)
        field = self.board_setup(board_id).rank_field_id
        failed = self._rank(call, field)
        if failed:
            # An entry naming an issue the call did not send cannot be retried: reported as is.
            still = {key: said for key, said in failed.items() if key not in call.issues}
            for retry in retry_calls(call, list(failed)):
                still |= self._rank(retry, field)
            if still:
                listed = ", ".join(f"{key} ({said})" for key, said in still.items())
                side = "before" if call.before is not None else "after"
                raise RankPartialError(
                    f"{len(still)} of {len(call.issues)} issues could not be ranked {side} "
                    f"{call.anchor}, even on a retry: {listed}",
                    failed=still,
                    method="PUT",
                    path=RANK_PATH,
                )
        return tuple(self.calls[first:])

    def _rank(self, call: RankCall, field: int | None) -> dict[str, str]:
        """One ``PUT issue/rank``; the failed issues of a 207 (empty on a 204)."""
        body = call.payload() | ({"rankCustomFieldId": field} if field is not None else {})
        try:
            answer = self.request("PUT", RANK_PATH, body=body)
        except JiraForbiddenError as exc:
            raise JiraForbiddenError(
                RANK_FORBIDDEN, status=403, messages=exc.messages, method="PUT", path=RANK_PATH
            ) from exc
        return failed_entries(answer)
