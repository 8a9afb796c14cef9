"""Jira webhook bodies → ``WebhookEvent``, and whether an event is one to triage.

``decode_body`` turns the raw bytes (already signature-checked) into a JSON object;
``parse_event`` checks its shape with ``WebhookEventSchema``. Unknown keys are dropped at every
level, since each Jira site adds its own custom fields. Both raise an ``EventError`` carrying the
HTTP status the receiver should answer with.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validates_schema

from impact.model import Person
from impact.snapshot import person_from_json

TRIAGED_EVENTS = frozenset({"jira:issue_created", "jira:issue_updated"})
ISSUE_EVENT_PREFIX = "jira:issue_"
RANK_FIELD = "Rank"  # changelog name of a board rank move, ours or a person's
_MISSING = "Missing data for required field."


class EventError(ValueError):
    status = 400


class BodyError(EventError):
    """The body is not a JSON document."""

    status = 400


class PayloadError(EventError):
    """The JSON is not shaped like a Jira webhook; ``errors`` maps field paths to messages."""

    status = 422

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = dict(errors)
        detail = "; ".join(f"{path}: {' '.join(msgs)}" for path, msgs in self.errors.items())
        super().__init__(f"payload has the wrong shape: {detail}")


@dataclass(frozen=True)
class ChangeItem:
    field: str  # display name ("Rank", "labels", "Customer Impact")
    field_id: str | None  # "customfield_10042"; absent on older Server
    from_string: str | None
    to_string: str | None

    def is_field(self, *, field_id: str | None = None, name: str | None = None) -> bool:
        """Match on the field id when both sides have one, else on the display name."""
        if field_id and self.field_id:
            return field_id == self.field_id
        return name is not None and name.casefold() == self.field.casefold()


@dataclass(frozen=True)
class WebhookEvent:
    name: str  # webhookEvent: "jira:issue_updated"
    type_name: str | None  # issue_event_type_name: "issue_generic"; older Server omits it
    timestamp_ms: int | None
    issue_key: str | None
    project_key: str | None
    actor: Person | None  # who caused the event
    changes: tuple[ChangeItem, ...]
    issue: Mapping[str, Any] | None = field(default=None, repr=False, hash=False)  # raw JSON

    @property
    def is_issue_event(self) -> bool:
        return self.name in TRIAGED_EVENTS

    def changed_fields(self) -> frozenset[str]:
        """Every changed field's display name, plus its id where Jira sent one."""
        names = {item.field for item in self.changes}
        return frozenset(names | {item.field_id for item in self.changes if item.field_id})

    def changes_field(self, *, field_id: str | None = None, name: str | None = None) -> bool:
        return any(item.is_field(field_id=field_id, name=name) for item in self.changes)


# --------------------------------------------------------------------------------------------
# Schemas


class _JiraSchema(Schema):
    class Meta:
        unknown = EXCLUDE


class _Timestamp(fields.Field[int | None]):
    """Epoch milliseconds; anything else (some relays send a date string) reads as None."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return int(value) if math.isfinite(value) else None


class UserSchema(_JiraSchema):
    accountId = fields.String(allow_none=True)
    accountType = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    key = fields.String(allow_none=True)
    displayName = fields.String(allow_none=True)
    emailAddress = fields.String(allow_none=True)

    @post_load(pass_original=True)
    def make_person(self, data: dict[str, Any], original: Any, **kwargs: Any) -> Person | None:
        return person_from_json(original)


class ProjectSchema(_JiraSchema):
    key = fields.String(allow_none=True)


class IssueFieldsSchema(_JiraSchema):
    project = fields.Nested(ProjectSchema, allow_none=True)


class IssueSchema(_JiraSchema):
    key = fields.String(allow_none=True)
    issue_fields = fields.Nested(IssueFieldsSchema, data_key="fields", allow_none=True)


class ChangeItemSchema(_JiraSchema):
    field = fields.String(required=True)
    field_id = fields.String(data_key="fieldId", load_default=None)
    from_string = fields.String(data_key="fromString", load_default=None)
    to_string = fields.String(data_key="toString", load_default=None)

    @post_load
    def make_item(self, data: dict[str, Any], **kwargs: Any) -> ChangeItem:
        return ChangeItem(**data)


class ChangelogSchema(_JiraSchema):
    items = fields.List(fields.Nested(ChangeItemSchema), load_default=list)


class WebhookEventSchema(_JiraSchema):
    webhookEvent = fields.String(required=True)
    issue_event_type_name = fields.String(load_default=None)
    timestamp = _Timestamp(load_default=None)
    user = fields.Nested(UserSchema, load_default=None)
    issue = fields.Nested(IssueSchema, load_default=None)
    changelog = fields.Nested(ChangelogSchema, load_default=None)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def issue_events_name_their_issue(
        self, data: dict[str, Any], original: Any, **kwargs: Any
    ) -> None:
        name = original.get("webhookEvent") if isinstance(original, Mapping) else None
        if isinstance(name, str) and name.startswith(ISSUE_EVENT_PREFIX):
            errors = _missing_issue_parts(original.get("issue"))
            if errors:
                raise ValidationError({"issue": errors})

    @post_load(pass_original=True)
    def make_event(self, data: dict[str, Any], original: Any, **kwargs: Any) -> WebhookEvent:
        issue = data["issue"] or {}
        project = (issue.get("issue_fields") or {}).get("project") or {}
        raw_issue = original.get("issue")
        return WebhookEvent(
            name=data["webhookEvent"],
            type_name=data["issue_event_type_name"],
            timestamp_ms=data["timestamp"],
            issue_key=issue.get("key"),
            project_key=project.get("key"),
            actor=data["user"],
            changes=tuple((data["changelog"] or {}).get("items", ())),
            issue=raw_issue if isinstance(raw_issue, Mapping) else None,
        )


def _missing_issue_parts(issue: Any) -> dict[str, Any]:
    """What an issue event lacks of ``issue.key`` / ``.fields.project.key``, as marshmallow errors.

    Only absent or null parts are reported here; a wrongly typed part is the fields' own error.
    """
    if issue is None:
        return {"_schema": [_MISSING]}
    if not isinstance(issue, Mapping):
        return {}
    errors: dict[str, Any] = {}
    if issue.get("key") is None:
        errors["key"] = [_MISSING]
    issue_fields = issue.get("fields")
    if issue_fields is None:
        errors["fields"] = [_MISSING]
    elif isinstance(issue_fields, Mapping):
        project = issue_fields.get("project")
        if project is None:
            errors["fields"] = {"project": [_MISSING]}
        elif isinstance(project, Mapping) and project.get("key") is None:
            errors["fields"] = {"project": {"key": [_MISSING]}}
    return errors


# --------------------------------------------------------------------------------------------
# Entry points


def decode_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise BodyError("body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError("body is not UTF-8") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BodyError(
            f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise BodyError("body is not JSON: nested too deeply") from exc
    if not isinstance(data, dict):
        raise PayloadError({"_schema": [f"expected a JSON object, got {_json_type(data)}"]})
    return data


_SCHEMA = WebhookEventSchema()  # built once: marshmallow schemas are reusable and costly to make


def parse_event(data: Any) -> WebhookEvent:
    if not isinstance(data, Mapping):
        raise PayloadError({"_schema": [f"expected a JSON object, got {_json_type(data)}"]})
    try:
        event = _SCHEMA.load(data)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise PayloadError(_flatten(messages)) from exc
    assert isinstance(event, WebhookEvent)
    return event


def should_triage(
    event: WebhookEvent, *, service_account: Person | None, projects: Collection[str]
) -> str | None:
    """None when the event must be triaged, else why it is ignored (for the delivery log)."""
    if event.name not in TRIAGED_EVENTS:
        return f"event {event.name} is not triaged"
    if event.issue is None or not event.issue_key or not event.project_key:
        return "no issue in payload"
    if event.project_key not in projects:
        return f"project {event.project_key} is not configured"
    if event.name == "jira:issue_updated":
        # our own label edits and rank moves come back as updates; issues we create do not loop
        if service_account is not None and service_account.same_as(event.actor):
            return "update made by the service account itself"
        if event.changes and all(item.field == RANK_FIELD for item in event.changes):
            return "update only moves the rank"
    return None


def _flatten(messages: Mapping[Any, Any], prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested errors → {"issue.fields.project.key": [...]}; lists index as "0"."""
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        path = prefix if key == "_schema" else f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(_flatten(value, path))
        else:
            msgs = value if isinstance(value, list) else [value]
            flat.setdefault(path or "_schema", []).extend(str(m) for m in msgs)
    return flat


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
