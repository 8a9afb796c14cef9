"""Jira's JSON shapes for the objects an issue refers to, and the v3 (ADF) conversions."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from sandbox import catalog

ALL_FIELDS = "*all"
NAVIGABLE = "*navigable"
EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"


def project_json(base: str, project: Any) -> dict[str, Any]:
    return {
        "self": f"{base}/rest/api/2/project/{project.id}",
        "id": project.id,
        "key": project.key,
        "name": project.name,
        "projectTypeKey": "software",
        "simplified": False,
        "avatarUrls": _avatars(f"{base}/secure/projectavatar?pid={project.id}"),
    }


def issuetype_json(base: str, type_id: str) -> dict[str, Any]:
    _, name, description = next(t for t in catalog.ISSUE_TYPES if t[0] == type_id)
    return {
        "self": f"{base}/rest/api/2/issuetype/{type_id}",
        "id": type_id,
        "description": description,
        "iconUrl": f"{base}/images/icons/issuetypes/{name.lower()}.svg",
        "name": name,
        "subtask": False,
        "hierarchyLevel": 0,
    }


def priority_json(base: str, priority_id: str) -> dict[str, Any]:
    _, name, _colour = next(p for p in catalog.PRIORITIES if p[0] == priority_id)
    return {
        "self": f"{base}/rest/api/2/priority/{priority_id}",
        "iconUrl": f"{base}/images/icons/priorities/{name.lower()}.svg",
        "name": name,
        "id": priority_id,
    }


def priority_details(base: str) -> list[dict[str, Any]]:
    """``GET /priority``: every priority with its colour and description."""
    return [
        {**priority_json(base, pid), "statusColor": colour, "description": f"{name} priority."}
        for pid, name, colour in catalog.PRIORITIES
    ]


def status_json(base: str, status_id: str) -> dict[str, Any]:
    _, name, (cat_id, cat_key, colour, cat_name) = next(
        s for s in catalog.STATUSES if s[0] == status_id
    )
    return {
        "self": f"{base}/rest/api/2/status/{status_id}",
        "description": "",
        "iconUrl": f"{base}/images/icons/statuses/generic.png",
        "name": name,
        "id": status_id,
        "statusCategory": {
            "self": f"{base}/rest/api/2/statuscategory/{cat_id}",
            "id": cat_id,
            "key": cat_key,
            "colorName": colour,
            "name": cat_name,
        },
    }


def resolution_json(base: str) -> dict[str, Any]:
    """The resolution an issue gets when it is done (the sandbox has the one)."""
    return {
        "self": f"{base}/rest/api/2/resolution/10000",
        "id": "10000",
        "description": "Work has been completed on this issue.",
        "name": "Done",
    }


def option_json(base: str, option_id: str, value: str) -> dict[str, Any]:
    return {
        "self": f"{base}/rest/api/2/customFieldOption/{option_id}",
        "value": value,
        "id": option_id,
    }


def component_json(base: str, component_id: str, name: str) -> dict[str, Any]:
    return {"self": f"{base}/rest/api/2/component/{component_id}", "id": component_id, "name": name}


def _avatars(url: str) -> dict[str, str]:
    return {size: f"{url}&size={size}" for size in ("48x48", "24x24", "16x16", "32x32")}


# ---------------------------------------------------------------- issue projections


def parse_fields_param(values: Iterable[str] | None, default: str) -> list[str]:
    """``fields`` as a list, from repeated and comma-separated values."""
    names = [n.strip() for v in values or () for n in str(v).split(",") if n.strip()]
    return names or [default]


def issue_view(
    issue: Mapping[str, Any], wanted: list[str], *, version: str = "2", id_only_ok: bool = False
) -> dict[str, Any]:
    """The issue with only the ``wanted`` fields (``*all``, ``*navigable``, ids, ``-id``)."""
    if id_only_ok and wanted == ["id"]:
        return {"id": issue["id"]}
    stored = issue["fields"]
    chosen: set[str] = set()
    for name in wanted:
        if name in (ALL_FIELDS, NAVIGABLE):
            chosen |= set(stored)
        elif not name.startswith("-"):
            chosen.add(name)
    for name in wanted:
        if name.startswith("-"):
            chosen.discard(name[1:])
    fields = {name: copy.deepcopy(stored[name]) for name in stored if name in chosen}
    view = {
        "expand": EXPAND,
        "id": issue["id"],
        "self": issue["self"],
        "key": issue["key"],
        "fields": fields,
    }
    return to_v3(view) if version == "3" else view


# ---------------------------------------------------------------- v3: Atlassian Document Format


def text_to_adf(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    paragraphs = [p for p in text.split("\n\n")]
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": p}] if p else []}
            for p in paragraphs
        ],
    }


def adf_to_text(doc: Any) -> str:
    """Plain text of an ADF document: text nodes joined, paragraphs split by a blank line."""
    if isinstance(doc, str):
        return doc
    if not isinstance(doc, Mapping):
        return ""
    if doc.get("type") == "text":
        return str(doc.get("text", ""))
    parts = [adf_to_text(child) for child in doc.get("content", []) or []]
    joiner = "\n\n" if doc.get("type") == "doc" else ""
    return joiner.join(parts)


def to_v3(view: dict[str, Any]) -> dict[str, Any]:
    fields = view.get("fields", {})
    if "description" in fields:
        fields["description"] = text_to_adf(fields["description"])
    return view
