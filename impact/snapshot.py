"""Jira issue JSON (a webhook's ``issue`` or ``GET /rest/api/2/issue/{key}``) → ``Issue``.

Jira sites differ in which fields they show and how they fill them, so every field is optional
here: a missing, null or oddly typed value reads as empty rather than failing the triage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from impact.model import Issue, Person

# ADF nodes that sit inside a line of text; any other node is a block and starts a new line.
_INLINE_NODES = frozenset(
    {"text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status", "mediaInline"}
)


class SnapshotError(ValueError):
    """The JSON is not an issue at all (no key), so there is nothing to triage."""


def person_from_json(data: Any) -> Person | None:
    """A Cloud (``accountId``) or Server/DC (``name``/``key``) user; None when there is none."""
    user = _mapping(data)
    person = Person(
        account_id=_text(user.get("accountId")),
        name=_text(user.get("name")),
        key=_text(user.get("key")),
        display_name=_text(user.get("displayName")),
        email=_text(user.get("emailAddress")),
        # present when the user was fetched with ``expand=groups``
        groups=_names(_mapping(user.get("groups")).get("items")),
    )
    return None if person == Person() else person


def issue_from_json(data: Mapping[str, Any], *, impact_field_id: str | None) -> Issue:
    key = _text(_mapping(data).get("key"))
    if not key:
        raise SnapshotError("issue JSON has no key")
    fields = _mapping(data.get("fields"))
    return Issue(
        key=key,
        project=_text(_mapping(fields.get("project")).get("key")) or _project_of(key),
        issuetype=_text(_mapping(fields.get("issuetype")).get("name")),
        summary=_text(fields.get("summary")) or "",
        description=description_text(fields.get("description")),
        labels=tuple(label for label in _list(fields.get("labels")) if isinstance(label, str)),
        components=_names(fields.get("components")),
        priority=_text(_mapping(fields.get("priority")).get("name")),
        impact_values=option_values(fields.get(impact_field_id) if impact_field_id else None),
        linked_projects=_linked_projects(fields.get("issuelinks")),
        reporter=person_from_json(fields.get("reporter")),
        status_category=_text(
            _mapping(_mapping(fields.get("status")).get("statusCategory")).get("key")
        ),
    )


def description_text(value: Any) -> str:
    """Plain text of a description: wiki text as is, an ADF document flattened to its text."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return _adf_text(value)
    return ""


def option_values(value: Any) -> tuple[str, ...]:
    """The option value(s) of a select, multi-select, cascading select or plain text field."""
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if isinstance(value, Mapping):
        # a cascading select is {"value": parent, "child": {"value": ...}}: the parent counts
        option = _text(value.get("value"))
        return (option,) if option else ()
    if isinstance(value, list):
        return tuple(v for item in value for v in option_values(item))
    return ()


def _adf_text(node: Mapping[str, Any]) -> str:
    kind = node.get("type")
    attrs = _mapping(node.get("attrs"))
    if kind == "text":
        return _text(node.get("text")) or ""
    if kind == "hardBreak":
        return "\n"
    if kind in ("mention", "emoji", "status"):
        return _text(attrs.get("text")) or _text(attrs.get("shortName")) or ""
    if kind == "inlineCard":
        return _text(attrs.get("url")) or ""
    children = [child for child in _list(node.get("content")) if isinstance(child, Mapping)]
    parts = [_adf_text(child) for child in children]
    if all(child.get("type") in _INLINE_NODES for child in children):
        return "".join(parts)
    return "\n".join(part for part in parts if part)


def _linked_projects(links: Any) -> tuple[str, ...]:
    projects: set[str] = set()
    for link in _list(links):
        for side in ("inwardIssue", "outwardIssue"):
            key = _text(_mapping(_mapping(link).get(side)).get("key"))
            if key and "-" in key:
                projects.add(_project_of(key))
    return tuple(sorted(projects))


def _project_of(issue_key: str) -> str:
    return issue_key.rpartition("-")[0] or issue_key


def _names(items: Any) -> tuple[str, ...]:
    names = (_text(_mapping(item).get("name")) for item in _list(items))
    return tuple(name for name in names if name)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> Iterable[Any]:
    return value if isinstance(value, list) else ()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
