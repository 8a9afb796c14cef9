"""Issue links: added on create or edit through ``update.issuelinks``, shown on both issues."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from sandbox import catalog
from sandbox.state import JiraApiError, JiraState

LINKED_FIELDS = ("summary", "status", "priority", "issuetype")


class LinkError(ValueError):
    pass


def pending_link(state: JiraState, value: Any) -> dict[str, Any]:
    """A checked ``{"add": …}`` value, made into a link by ``make_link`` once the edit is valid."""
    if not isinstance(value, Mapping) or not isinstance(value.get("type"), Mapping):
        raise LinkError('Issue links are added as {"type": {...}, "outwardIssue": {...}}')
    kind = value["type"]
    link_type = next(
        (t for t in catalog.LINK_TYPES if kind.get("name") == t[1] or kind.get("id") == t[0]),
        None,
    )
    if link_type is None:
        raise LinkError(f"No issue link type with name '{kind.get('name')}' found.")
    direction = "outwardIssue" if "outwardIssue" in value else "inwardIssue"
    ref = value.get(direction)
    other_key = (ref.get("key") or ref.get("id")) if isinstance(ref, Mapping) else None
    try:
        other = state.issue(str(other_key))
    except JiraApiError:
        raise LinkError(f"Issue '{other_key}' does not exist.") from None
    return {"_pending": True, "type": link_type, "direction": direction, "other": other["key"]}


def make_link(
    state: JiraState, issue: dict[str, Any], pending: Mapping[str, Any]
) -> dict[str, Any]:
    """Store the link on the other issue too; the link as ``issue`` shows it."""
    base = state.base_url
    other = state.issue(pending["other"])
    type_id, name, inward, outward = pending["type"]
    link_id = str(state.next_id())
    kind = {
        "id": type_id,
        "name": name,
        "inward": inward,
        "outward": outward,
        "self": f"{base}/rest/api/2/issueLinkType/{type_id}",
    }
    back = "inwardIssue" if pending["direction"] == "outwardIssue" else "outwardIssue"
    self_url = f"{base}/rest/api/2/issueLink/{link_id}"
    other["fields"]["issuelinks"].append(
        {"id": link_id, "self": self_url, "type": kind, back: _reference(issue)}
    )
    return {"id": link_id, "self": self_url, "type": kind, pending["direction"]: _reference(other)}


def _reference(target: Mapping[str, Any]) -> dict[str, Any]:
    fields = target["fields"]
    return {
        "id": target["id"],
        "key": target["key"],
        "self": target["self"],
        "fields": {name: copy.deepcopy(fields[name]) for name in LINKED_FIELDS},
    }


def link_changes(link: Mapping[str, Any]) -> tuple[str, str]:
    """(other issue key, "This issue relates to SUP-1") for the changelog."""
    direction = "outwardIssue" if "outwardIssue" in link else "inwardIssue"
    verb = link["type"]["outward" if direction == "outwardIssue" else "inward"]
    other = link[direction]["key"]
    return other, f"This issue {verb} {other}"
