"""``PUT /rest/agile/1.0/issue/rank``: move issues before or after another, as Jira Software does.

Rank is global (one order across projects), kept as LexoRank-like strings in the Rank field.
The caller holds ``state.lock``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox import catalog, issues, lexorank
from sandbox.faults import RANK_FAILURE
from sandbox.state import Account, JiraApiError, JiraState

MAX_BATCH = 50
BODY_KEYS = {"issues", "rankBeforeIssue", "rankAfterIssue", "rankCustomFieldId"}


def rank_issues(state: JiraState, actor: Account, body: Any) -> list[dict[str, Any]] | None:
    """Move the issues; None when all moved, else the 207 entries (one per issue)."""
    moving, anchor, before = _read(state, body)
    if not actor.can("SCHEDULE_ISSUES"):
        raise JiraApiError(
            403, "You do not have the permission to rank issues (Schedule Issues is required)."
        )
    failed = {i["key"] for i in moving if state.faults.take_rank_failure(i["key"])}
    movers = [i for i in moving if i["key"] not in failed]
    mover_keys = {i["key"] for i in movers}
    rank = catalog.RANK_FIELD
    staying = sorted(
        (i for i in state.issues.values() if i["key"] not in mover_keys),
        key=lambda i: i["fields"][rank],
    )
    at = next(n for n, i in enumerate(staying) if i["key"] == anchor["key"])
    if before:
        low = staying[at - 1]["fields"][rank] if at > 0 else None
        high = anchor["fields"][rank]
    else:
        low = anchor["fields"][rank]
        high = staying[at + 1]["fields"][rank] if at + 1 < len(staying) else None
    for issue in movers:  # each lands just after the one before it, all before ``high``
        old, low = issue["fields"][rank], lexorank.between(low, high)
        issue["fields"][rank] = low
        issue["fields"]["updated"] = state.now()
        direction = "Ranked higher" if low < old else "Ranked lower"
        item = issues.change_item("Rank", rank, "", "", "", direction)
        issues.emit_update(state, actor, issue, [{**item, "fieldtype": "custom"}])
    if not failed:
        return None
    return [_entry(i, failed) for i in moving]


def _entry(issue: Mapping[str, Any], failed: set[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"issueId": int(issue["id"]), "issueKey": issue["key"], "status": 200}
    if issue["key"] in failed:
        entry.update(status=503, errors=[RANK_FAILURE])
    return entry


def _read(state: JiraState, body: Any) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
    """The issues to move, the anchor, and whether they go before it; 400 when invalid."""
    if not isinstance(body, Mapping):
        raise JiraApiError(400, "The request body must be a JSON object.")
    unknown = sorted(set(body) - BODY_KEYS)
    if unknown:
        raise JiraApiError(400, f'Unrecognized field "{unknown[0]}", not marked as ignorable')
    refs = body.get("issues")
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
        raise JiraApiError(400, "'issues' must be a non-empty list of issue keys or ids.")
    if len(refs) > MAX_BATCH:
        raise JiraApiError(400, f"At most {MAX_BATCH} issues may be ranked at once.")
    before, after = body.get("rankBeforeIssue"), body.get("rankAfterIssue")
    if (before is None) == (after is None):
        raise JiraApiError(
            400, "Exactly one of 'rankBeforeIssue' and 'rankAfterIssue' is required."
        )
    field_id = body.get("rankCustomFieldId")
    if field_id is not None and field_id != catalog.RANK_FIELD_NUMBER:
        raise JiraApiError(400, f"The custom field with id {field_id} is not a rank field.")
    anchor = _target(state, str(before if before is not None else after))
    moving: list[dict[str, Any]] = []
    for ref in refs:
        issue = _target(state, ref)
        if issue["key"] == anchor["key"]:
            raise JiraApiError(400, "An issue cannot be ranked relative to itself.")
        if issue["key"] not in {m["key"] for m in moving}:
            moving.append(issue)
    return moving, anchor, before is not None


def _target(state: JiraState, ref: str) -> dict[str, Any]:
    try:
        return state.issue(ref)
    except JiraApiError:
        raise JiraApiError(
            400, f"Issue '{ref}' does not exist or you do not have permission to see it."
        ) from None
