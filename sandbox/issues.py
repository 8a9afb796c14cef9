"""What changes issues: create, edit and comment, with Jira's validation and changelog.

Every function expects the caller to hold ``state.lock`` and raises ``JiraApiError`` in
Jira's words. Each change emits the webhook events Jira would send (see ``sandbox.hooks``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox import catalog, fieldconfig, lexorank, links, shapes
from sandbox.state import Account, FieldOption, JiraApiError, JiraState, Project

NOT_ON_SCREEN = "Field '{0}' cannot be set. It is not on the appropriate screen, or unknown."
EDIT_BODY_KEYS = {"fields", "update", "properties", "historyMetadata", "transition"}


class FieldError(Exception):
    """One field's value is refused; the message goes under ``errors.<field>``."""


# ---------------------------------------------------------------- create


def create_issue(
    state: JiraState,
    actor: Account,
    body: Any,
    *,
    version: str = "2",
) -> dict[str, Any]:
    """Create an issue from a ``POST /issue`` body; new issues go to the bottom of the rank."""
    if not isinstance(body, Mapping) or not isinstance(body.get("fields", {}), Mapping):
        raise JiraApiError(400, "The request body must be a JSON object with 'fields'.")
    if not actor.can("CREATE_ISSUES"):
        raise JiraApiError(403, "You do not have permission to create issues in this project.")
    fields = dict(body.get("fields") or {})
    errors: dict[str, str] = {}
    project = _create_project(state, fields.pop("project", None), errors)
    type_id = _issuetype(fields.pop("issuetype", None), errors)
    reporter = _reporter(state, fields.pop("reporter", None), actor, errors)
    if not str(fields.get("summary") or "").strip():
        errors["summary"] = "You must specify a summary of the issue."
    if errors or project is None or type_id is None:
        raise JiraApiError(400, errors=errors)

    base = state.base_url
    now = state.now()
    issue_id = str(state.next_id())
    key = f"{project.key}-{project.next_number}"
    last = max((i["fields"][catalog.RANK_FIELD] for i in state.issues.values()), default=None)
    issue: dict[str, Any] = {
        "id": issue_id,
        "self": f"{base}/rest/api/2/issue/{issue_id}",
        "key": key,
        "fields": {
            "summary": "",
            "description": None,
            "issuetype": shapes.issuetype_json(base, type_id),
            "project": shapes.project_json(base, project),
            "labels": [],
            "components": [],
            "priority": shapes.priority_json(base, catalog.DEFAULT_PRIORITY),
            "status": shapes.status_json(base, catalog.STATUSES[0][0]),
            "reporter": state.user_json(reporter),
            "creator": state.user_json(actor),
            "assignee": None,
            "created": now,
            "updated": now,
            "issuelinks": [],
            **dict.fromkeys(state.custom_fields),
            catalog.RANK_FIELD: lexorank.between(last, None),
        },
    }
    screen = fieldconfig.screen_operations(state, project, type_id, fieldconfig.CREATE)
    changes = _collect(state, project, screen, issue, fields, body.get("update") or {}, version)
    project.next_number += 1
    state.issues[key] = issue
    state.comments[key] = []
    state.properties[key] = {}
    _apply(state, issue, changes)
    state.emit(
        {
            "webhookEvent": "jira:issue_created",
            "issue_event_type_name": "issue_created",
            "user": state.user_json(actor),
            "issue": state.snapshot(issue),
            "timestamp": state.now_ms(),
        }
    )
    return issue


def resolve(state: JiraState, issue: dict[str, Any], when: str) -> None:
    """Mark the issue Done with a resolution at ``when`` (Jira's timestamp form), as an import of
    old issues does: no event is sent."""
    fields = issue["fields"]
    fields["status"] = shapes.status_json(state.base_url, catalog.STATUSES[-1][0])
    fields["resolution"] = shapes.resolution_json(state.base_url)
    fields["resolutiondate"] = when
    fields["updated"] = max(fields["updated"], when)


def _create_project(state: JiraState, value: Any, errors: dict[str, str]) -> Project | None:
    ref = (value.get("key") or value.get("id")) if isinstance(value, Mapping) else None
    project = None
    if ref:
        try:
            project = state.project(str(ref))
        except JiraApiError:
            project = None
    if project is None:
        errors["project"] = "Specify a valid project ID or key"
    return project


def _issuetype(value: Any, errors: dict[str, str]) -> str | None:
    if isinstance(value, Mapping):
        for type_id, name, _ in catalog.ISSUE_TYPES:
            if value.get("id") == type_id or str(value.get("name", "")).lower() == name.lower():
                return type_id
    errors["issuetype"] = "Specify an issue type" if value is None else "Specify a valid issue type"
    return None


def _reporter(state: JiraState, value: Any, actor: Account, errors: dict[str, str]) -> Account:
    if value is None:
        return actor
    ref = None
    if isinstance(value, Mapping):
        ref = value.get("accountId") or value.get("name") or value.get("id")
    try:
        return state.account(str(ref))
    except JiraApiError:
        errors["reporter"] = "Specify a valid value for reporter"
        return actor


# ---------------------------------------------------------------- edit


def edit_issue(
    state: JiraState,
    actor: Account,
    key: str,
    body: Any,
    *,
    version: str = "2",
    status: str | None = None,
) -> dict[str, Any]:
    """Apply a ``PUT /issue/{key}`` body; ``status`` (a status name) is for the control API."""
    issue = state.issue(key, actor)
    if not isinstance(body, Mapping):
        raise JiraApiError(400, "The request body must be a JSON object.")
    unknown = set(body) - EDIT_BODY_KEYS
    if unknown:
        raise JiraApiError(400, f'Unrecognized field "{sorted(unknown)[0]}"')
    if not actor.can("EDIT_ISSUES"):
        raise JiraApiError(403, "You do not have permission to edit issues in this project.")
    fields, update = body.get("fields") or {}, body.get("update") or {}
    if not isinstance(fields, Mapping) or not isinstance(update, Mapping):
        raise JiraApiError(400, "'fields' and 'update' must be JSON objects.")
    project = state.project(issue["fields"]["project"]["key"])
    type_id = issue["fields"]["issuetype"]["id"]
    screen = fieldconfig.screen_operations(state, project, type_id, fieldconfig.EDIT)
    changes = _collect(state, project, screen, issue, fields, update, version)
    if status is not None:
        status_id = next((s[0] for s in catalog.STATUSES if s[1].lower() == status.lower()), None)
        if status_id is None:
            raise JiraApiError(400, errors={"status": f"Unknown status '{status}'"})
        changes["status"] = shapes.status_json(state.base_url, status_id)
    items = _apply(state, issue, changes)
    if items:
        type_name = "issue_generic" if "status" in changes else "issue_updated"
        emit_update(state, actor, issue, items, type_name)
    return issue


def emit_update(
    state: JiraState,
    actor: Account,
    issue: Mapping[str, Any],
    items: list[dict[str, Any]],
    type_name: str = "issue_updated",
) -> None:
    state.emit(
        {
            "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": type_name,
            "user": state.user_json(actor),
            "issue": state.snapshot(issue),
            "changelog": {"id": str(state.next_id()), "items": items},
            "timestamp": state.now_ms(),
        }
    )


def _collect(
    state: JiraState,
    project: Project,
    screen: Mapping[str, tuple[str, ...]],
    issue: Mapping[str, Any],
    fields: Mapping[str, Any],
    update: Mapping[str, Any],
    version: str,
) -> dict[str, Any]:
    """The new value of every field the body sets, or a 400 naming every bad field; ``screen``:
    the fields the operation's screen lets a person set, with their operations."""
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {}
    operations: list[tuple[str, list[Any]]] = [
        (name, [{"set": value}]) for name, value in fields.items()
    ]
    for name, ops in update.items():
        if name in fields:
            errors[name] = f"Field '{name}' cannot appear in both 'fields' and 'update'"
        elif not isinstance(ops, list):
            errors[name] = f"Field '{name}': the update value must be a list of operations"
        else:
            operations.append((name, ops))
    for name, ops in operations:
        if name in errors:
            continue
        allowed = screen.get(name, ())
        if not allowed:
            errors[name] = NOT_ON_SCREEN.format(name)
            continue
        current = changes.get(name, issue["fields"].get(name))
        try:
            for op in ops:
                if not isinstance(op, Mapping) or len(op) != 1:
                    raise FieldError(f"Field '{name}': each operation is one of {list(allowed)}")
                ((verb, value),) = op.items()
                if verb not in allowed:
                    raise FieldError(
                        f"Field '{name}' does not support operation '{verb}'. "
                        f"Supported operation(s) are: {', '.join(repr(a) for a in allowed)}"
                    )
                current = _operate(state, project, name, verb, value, current, version)
            changes[name] = current
        except FieldError as exc:
            errors[name] = str(exc)
    if errors:
        raise JiraApiError(400, errors=errors)
    return changes


def _operate(
    state: JiraState,
    project: Project,
    name: str,
    verb: str,
    value: Any,
    current: Any,
    version: str,
) -> Any:
    base = state.base_url
    if name == "summary":
        text = value if isinstance(value, str) else ""
        if not text.strip():
            raise FieldError("You must specify a summary of the issue.")
        if len(text) > 255:
            raise FieldError("Summary must be less than 255 characters.")
        return text
    if name == "description":
        if value is None or isinstance(value, str):
            return value
        if version == "3" and isinstance(value, Mapping) and value.get("type") == "doc":
            return shapes.adf_to_text(value)
        raise FieldError("Operation value must be a string")
    if name == "labels":
        return _labels(verb, value, list(current or []))
    if name == "components":
        return _components(base, project, verb, value, list(current or []))
    if name == "priority":
        return shapes.priority_json(base, _priority_id(value))
    custom = state.custom_fields.get(name)
    if custom is not None and custom.type in catalog.OPTION_TYPES:
        if value is None:
            return None
        option = _option(fieldconfig.options_in(custom, project), value)
        return shapes.option_json(base, option.id, option.value)
    if name == "issuelinks":
        try:
            return [*(current or []), links.pending_link(state, value)]
        except links.LinkError as exc:
            raise FieldError(str(exc)) from None
    raise FieldError(NOT_ON_SCREEN.format(name))


def _labels(verb: str, value: Any, labels: list[str]) -> list[str]:
    wanted = value if verb == "set" else [value]
    if not isinstance(wanted, list) or not all(isinstance(v, str) for v in wanted):
        raise FieldError("Labels must be strings")
    for label in wanted:
        if not label or any(c.isspace() for c in label):
            raise FieldError(f"The label '{label}' contains spaces which is invalid.")
        if len(label) > 255:
            raise FieldError("The label must not exceed 255 characters.")
    if verb == "set":
        return sorted(set(wanted))
    if verb == "add":
        return sorted({*labels, value})
    return [label for label in labels if label != value]


def _components(
    base: str, project: Project, verb: str, value: Any, current: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    def find(ref: Any) -> dict[str, Any]:
        if isinstance(ref, Mapping):
            for cid, name in project.components:
                if ref.get("id") == cid or ref.get("name") == name:
                    return shapes.component_json(base, cid, name)
            what = "id" if "id" in ref else "name"
            raise FieldError(f"Component {what} '{ref.get(what)}' is not valid")
        raise FieldError('Components are given as {"name": ...} or {"id": ...}')

    if verb == "set":
        if not isinstance(value, list):
            raise FieldError("Components are set with a list")
        chosen = [find(ref) for ref in value]
        return list({c["id"]: c for c in chosen}.values())
    found = find(value)
    kept = [c for c in current if c["id"] != found["id"]]
    return [*kept, found] if verb == "add" else kept


def _priority_id(value: Any) -> str:
    if not isinstance(value, Mapping) or not ({"id", "name"} & set(value)):
        raise FieldError("Could not find valid 'id' or 'name' in priority object.")
    for pid, name, _ in catalog.PRIORITIES:
        if value.get("id") == pid or value.get("name") == name:
            return pid
    if "id" in value:
        raise FieldError(f"Priority with id '{value['id']}' does not exist")
    raise FieldError(f"Priority name '{value['name']}' is not valid")


def _option(options: list[FieldOption], value: Any) -> FieldOption:
    if not isinstance(value, Mapping) or not ({"id", "value"} & set(value)):
        raise FieldError("Could not find valid 'id' or 'value' in the Parent Option object.")
    for option in options:
        if str(value.get("id")) == option.id or value.get("value") == option.value:
            return option
    if "id" in value:
        raise FieldError(f"Option id '{value['id']}' is not valid")
    raise FieldError(f"Option value '{value['value']}' is not valid")


def _apply(
    state: JiraState, issue: dict[str, Any], changes: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Store the changes; the changelog items of what really changed."""
    fields = issue["fields"]
    items: list[dict[str, Any]] = []
    for name, new in changes.items():
        old = fields.get(name)
        if name == "issuelinks":
            new = [links.make_link(state, issue, ln) if ln.get("_pending") else ln for ln in new]
            added = [links.link_changes(ln) for ln in new if ln not in (old or [])]
            items += [change_item("Link", name, None, None, key, text) for key, text in added]
        elif new != old:
            items += _items(state, name, old, new)
        fields[name] = new
    if items:
        fields["updated"] = state.now()
    return items


def _items(state: JiraState, name: str, old: Any, new: Any) -> list[dict[str, Any]]:
    if name in ("summary", "description"):
        return [change_item(name, name, None, old, None, new)]
    if name == "labels":
        return [change_item("labels", "labels", None, " ".join(old or []), None, " ".join(new))]
    if name == "components":
        old_ids = {c["id"]: c["name"] for c in old or []}
        new_ids = {c["id"]: c["name"] for c in new}
        gone = [
            change_item("Component", "components", cid, n, None, None)
            for cid, n in old_ids.items()
            if cid not in new_ids
        ]
        came = [
            change_item("Component", "components", None, None, cid, n)
            for cid, n in new_ids.items()
            if cid not in old_ids
        ]
        return gone + came
    if name in ("priority", "status"):
        return [
            change_item(name, name, old and old["id"], old and old["name"], new["id"], new["name"])
        ]
    if name in state.custom_fields:
        custom = change_item(
            state.custom_fields[name].name,
            name,
            old and old["id"],
            old and old["value"],
            new and new["id"],
            new and new["value"],
        )
        return [{**custom, "fieldtype": "custom"}]
    return []


def change_item(
    field: str, field_id: str, old: Any, old_text: Any, new: Any, new_text: Any
) -> dict[str, Any]:
    return {
        "field": field,
        "fieldtype": "jira",
        "fieldId": field_id,
        "from": old,
        "fromString": old_text,
        "to": new,
        "toString": new_text,
    }


# ---------------------------------------------------------------- comments


def add_comment(
    state: JiraState, actor: Account, key: str, body: Any, *, version: str = "2"
) -> dict[str, Any]:
    issue = state.issue(key, actor)
    text = body.get("body") if isinstance(body, Mapping) else None
    if version == "3" and isinstance(text, Mapping):
        text = shapes.adf_to_text(text)
    if not isinstance(text, str) or not text.strip():
        raise JiraApiError(400, errors={"comment": "Comment body can not be empty!"})
    if not actor.can("ADD_COMMENTS"):
        raise JiraApiError(403, "You do not have the permission to comment on this issue.")
    comment_id = str(state.next_id())
    now = state.now()
    author = state.user_json(actor)
    comment = {
        "self": f"{state.base_url}/rest/api/2/issue/{issue['id']}/comment/{comment_id}",
        "id": comment_id,
        "author": author,
        "body": text,
        "updateAuthor": author,
        "created": now,
        "updated": now,
        "jsdPublic": True,
    }
    state.comments[issue["key"]].append(comment)
    issue["fields"]["updated"] = now
    stamp = state.now_ms()
    state.emit(
        {
            "webhookEvent": "comment_created",
            "comment": comment,
            "issue": state.snapshot(issue),
            "timestamp": stamp,
        }
    )
    state.emit(
        {
            "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": "issue_commented",
            "user": author,
            "issue": state.snapshot(issue),
            "comment": comment,
            "timestamp": stamp,
        }
    )
    return comment
