"""Jira webhook bodies → ``WebhookEvent``, and whether an event is one to triage.

``decode_body`` turns the raw bytes (already signature-checked) into a JSON object;
``parse_event`` checks its shape with ``WebhookEventSchema``. Unknown keys are dropped at every
level, since each Jira site adds its own custom fields. Both raise an ``EventError`` carrying the
HTTP status the receiver should answer with.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validates_schema

from impact.keys import is_issue_key, project_of
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


# The nested parts are fields rather than nested schemas: each checks its part in one pass and
# reports problems under the same paths and with the same words as marshmallow's own fields do.
# A nested schema costs some 20 µs a load, and the web process parses every delivery.
_NOT_STRING = fields.String.default_error_messages["invalid"]
_NOT_NULL = fields.Field.default_error_messages["null"]
_NOT_MAPPING = "Invalid input type."  # what a nested schema says
_NOT_LIST = fields.List.default_error_messages["invalid"]


def _check_strings(
    value: Mapping[str, Any], names: Collection[str], required: Collection[str] = ()
) -> dict[str, Any]:
    """Errors for those of ``names`` that are present and neither a string nor null (null is
    refused too, and absence, for the ``required``)."""
    errors: dict[str, Any] = {}
    for name in names:
        item = value.get(name)
        if item is None:
            if name in required:
                errors[name] = [_NOT_NULL if name in value else _MISSING]
        elif not isinstance(item, str):
            errors[name] = [_NOT_STRING]
    return errors


class _Part(fields.Field[Any]):
    """A JSON object inside the event; ``read`` turns a mapping into the value kept."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(load_default=None, **kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Any:
        if not isinstance(value, Mapping):
            raise ValidationError(_NOT_MAPPING)
        return self.read(value)

    def read(self, value: Mapping[str, Any]) -> Any:
        raise NotImplementedError


class _User(_Part):
    """``user``: who caused the event."""

    NAMES = ("accountId", "accountType", "name", "key", "displayName", "emailAddress")

    def read(self, value: Mapping[str, Any]) -> Person | None:
        errors = _check_strings(value, self.NAMES)
        if errors:
            raise ValidationError(errors)
        return person_from_json(value)


class _IssueRef(_Part):
    """``issue``: its key and its project's key (their absence is the schema's check). The key
    must be a Jira issue key of that very project: the worker writes to the issue it names, and
    the project decides whether (and how) it is triaged."""

    def read(self, value: Mapping[str, Any]) -> tuple[str | None, str | None]:
        errors = _check_strings(value, ("key",))
        key = value.get("key")
        if isinstance(key, str) and not is_issue_key(key):
            errors["key"] = [f"{_clip(key)} is not a Jira issue key (PROJECT-123)"]
        project_key = None
        issue_fields = value.get("fields")
        if issue_fields is not None and not isinstance(issue_fields, Mapping):
            errors["fields"] = [_NOT_MAPPING]
        elif issue_fields is not None:
            project = issue_fields.get("project")
            if project is not None and not isinstance(project, Mapping):
                errors["fields"] = {"project": [_NOT_MAPPING]}
            elif project is not None:
                if problems := _check_strings(project, ("key",)):
                    errors["fields"] = {"project": problems}
                project_key = project.get("key")
        if (
            not errors
            and isinstance(key, str)
            and isinstance(project_key, str)
            and project_of(key) != project_key
        ):
            where = "(issue.fields.project.key)"
            errors["key"] = [f"{key} is not an issue of project {_clip(project_key)} {where}"]
        if errors:
            raise ValidationError(errors)
        return key, project_key


def _clip(text: str, limit: int = 40) -> str:
    """``text`` quoted for an error message, cut short: the message goes back to the sender."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


class _Changelog(_Part):
    """``changelog``: its items, each a change of one field."""

    def read(self, value: Mapping[str, Any]) -> tuple[ChangeItem, ...]:
        items = value.get("items")
        if items is None:
            return ()
        if not isinstance(items, list):
            raise ValidationError({"items": [_NOT_LIST]})
        changes, errors = [], {}
        for n, item in enumerate(items):
            if not isinstance(item, Mapping):
                errors[n] = {"_schema": [_NOT_MAPPING]}
            elif problems := _check_strings(item, _CHANGE_KEYS, required=("field",)):
                errors[n] = problems
            else:
                changes.append(
                    ChangeItem(
                        field=item["field"],
                        field_id=item.get("fieldId"),
                        from_string=item.get("fromString"),
                        to_string=item.get("toString"),
                    )
                )
        if errors:
            raise ValidationError({"items": errors})
        return tuple(changes)


_CHANGE_KEYS = ("field", "fieldId", "fromString", "toString")


class WebhookEventSchema(_JiraSchema):
    webhookEvent = fields.String(required=True)
    issue_event_type_name = fields.String(load_default=None)
    timestamp = _Timestamp(load_default=None)
    user = _User()
    issue = _IssueRef()
    changelog = _Changelog()

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
        issue_key, project_key = data["issue"] or (None, None)
        raw_issue = original.get("issue")
        return WebhookEvent(
            name=data["webhookEvent"],
            type_name=data["issue_event_type_name"],
            timestamp_ms=data["timestamp"],
            issue_key=issue_key,
            project_key=project_key,
            actor=data["user"],
            changes=data["changelog"] or (),
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


def body_text(body: bytes) -> str:
    """The body as text; ``BodyError`` when it is not UTF-8."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError("body is not UTF-8") from exc


def decode_body(body: bytes | str) -> dict[str, Any]:
    """The JSON object a body holds (bytes are read with ``body_text`` first).

    Strict JSON (RFC 8259), read by orjson, some three times quicker than the standard library
    on a delivery, which every web process and worker reads: ``NaN``, ``Infinity``, a lone
    surrogate escape or nesting past 1024 levels is refused, where ``json`` would let it by."""
    text = body_text(body) if isinstance(body, bytes) else body
    if not text.strip():
        raise BodyError("body is empty")
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BodyError(
            f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
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


def too_old(event_ms: int, *, now: float, max_age: float) -> bool:
    """Whether an event of ``event_ms`` (epoch ms) is more than ``max_age`` seconds old."""
    return now * 1000 - event_ms > max_age * 1000
