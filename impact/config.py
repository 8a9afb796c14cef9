"""The admins' config: ``config/impact.toml`` read strictly into an ``ImpactConfig``.

Marshmallow schemas check each table's shape (an unknown key is an error: a typo must not pass
silently); ``_relation_errors`` then checks what ties tables together (a rule's level exists, no
option value or label serves two levels). Every error is collected and raised at once, keyed by
its path in the file (``levels.blocking.score``, ``rules[2].text[0]``).

No environment here: the caller decides which file to read (``IMPACT_CONFIG``).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import regex
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from impact.model import (
    FieldRef,
    ImpactClass,
    ImpactConfig,
    InferredPolicy,
    Level,
    MissingPolicy,
    ProjectSettings,
    RankMode,
    Rule,
)
from impact.patterns import PatternError, compile_pattern, risks

DEFAULT_CONFIG_PATH = "config/impact.toml"
SETTING = "IMPACT_CONFIG"

PathPart = str | int
KeyPath = tuple[PathPart, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]+")
_FIELD_ID = re.compile(r"customfield_[0-9]+")
_JIRA_LABEL_MAX = 255
# Rank bands are named after levels; issues without one sit in the band called "missing".
_RESERVED_LEVEL_NAMES = frozenset({"missing"})
_RULE_CONDITIONS = (
    "issuetypes",
    "components",
    "labels",
    "text",
    "linked_projects",
    "reporter_groups",
    "reporter_domains",
)


class ConfigError(Exception):
    """The config file cannot be used; ``errors`` holds every (key path, message) found."""

    def __init__(self, source: str, errors: Sequence[tuple[str, str]]) -> None:
        super().__init__(source, list(errors))
        self.source = source
        self.errors = list(errors)

    def __str__(self) -> str:
        count = f"{len(self.errors)} error{'s' if len(self.errors) != 1 else ''}"
        lines = [
            f"invalid impact config {self.source} ({count}); the file read is the one "
            f"{SETTING} names (default {DEFAULT_CONFIG_PATH}):"
        ]
        for path, message in self.errors:
            where = f"{self.source}: {path}" if path else self.source
            lines.append(f"  {where}: {message}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Reading


def load_config(path: str | os.PathLike[str]) -> ImpactConfig:
    """Read and check the TOML file at ``path``; raise ``ConfigError`` listing every problem."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(source, [("", f"cannot read the file: {exc.strerror or exc}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [("", f"not valid TOML: {exc}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [("", f"not UTF-8 text: {exc}")]) from exc
    return parse_config(data, source=source)


def parse_config(data: Mapping[str, Any], *, source: str) -> ImpactConfig:
    """Check an already parsed config; ``source`` names it in messages and in the result."""
    found: list[tuple[KeyPath, str]] = []
    try:
        loaded: dict[str, Any] = ConfigSchema().load(data)
    except ValidationError as exc:
        loaded = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        found.extend(_flatten(exc.messages))
    found.extend(_relation_errors(loaded))
    if found:
        found.sort(key=lambda error: _path_order(error[0]))
        raise ConfigError(source, [(format_key_path(path), message) for path, message in found])
    return _build(loaded, source)


def pattern_warnings(config: ImpactConfig) -> list[tuple[str, str]]:
    """(key path, why) for each rule pattern of a shape that can be slow on a long text: not
    errors (the search has a time limit, ``impact.patterns``), but worth a rewrite."""
    return [
        (format_key_path(("rules", n, "text", m)), risk)
        for n, rule in enumerate(config.rules)
        for m, pattern in enumerate(rule.text)
        for risk in risks(pattern.pattern)
    ]


def format_key_path(path: Iterable[PathPart]) -> str:
    """``("rules", 2, "text", 0)`` -> ``rules[2].text[0]``; odd keys are quoted as in TOML."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            key = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
            text += f".{key}" if text else key
    return text


# --------------------------------------------------------------------------------------------
# Value checks


def _jira_label(value: str) -> None:
    if not value:
        raise ValidationError("must not be empty")
    if any(char.isspace() for char in value):
        raise ValidationError(f"Jira labels cannot contain spaces: {value!r}")
    if len(value) > _JIRA_LABEL_MAX:
        raise ValidationError(f"Jira labels are at most {_JIRA_LABEL_MAX} characters")


def _mail_domain(value: str) -> None:
    if not value or "@" in value or any(char.isspace() for char in value):
        raise ValidationError(f"expected a mail domain such as example.com, got {value!r}")


_non_empty = validate.Length(min=1, error="must not be empty")
_project_key = validate.Regexp(
    _PROJECT_KEY,
    error="{input!r} is not a Jira project key (capitals, digits and _, starting with a letter)",
)


class StrictInteger(fields.Integer):
    """An integer, and only that: no numeric strings, floats or booleans."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


class StrictBoolean(fields.Boolean):
    """``true`` or ``false``, not ``1`` or ``"yes"``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class Regex(fields.Field[regex.Pattern[str]]):
    """A regular expression (Python's syntax), compiled for ``impact.patterns.search``; one that
    does not compile is reported with the engine's reason."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> regex.Pattern[str]:
        if not isinstance(value, str):
            raise ValidationError("must be a string holding a regular expression")
        try:
            return compile_pattern(value)
        except PatternError as exc:
            raise ValidationError(f"not a valid regular expression: {exc}") from exc


class Positional(fields.List[Any]):
    """A TOML array of tables whose partial result keeps each entry at its index, so later
    checks can name ``rules[N]`` even when an earlier entry failed."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list | tuple):
            raise self.make_error("invalid")
        result: list[Any] = []
        errors: dict[int, Any] = {}
        for index, item in enumerate(value):
            try:
                result.append(self.inner.deserialize(item, **kwargs))
            except ValidationError as exc:
                result.append(exc.valid_data if isinstance(exc.valid_data, dict) else {})
                errors[index] = exc.messages
        if errors:
            raise ValidationError(errors, valid_data=result)
        return result


class NamedTables(fields.Field[dict[str, dict[str, Any]]]):
    """A table of named sub-tables (``[levels.<name>]``), each loaded by ``schema``, keeping
    file order; errors and the partial result are keyed by name."""

    def __init__(self, schema: type[Schema], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schema = schema

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> dict[str, dict[str, Any]]:
        if not isinstance(value, Mapping):
            raise ValidationError("must be a table of named tables")
        result: dict[str, dict[str, Any]] = {}
        errors: dict[str, Any] = {}
        for name, table in value.items():
            name_problem = _level_name_problem(name)
            try:
                result[name] = self.schema().load(table)
            except ValidationError as exc:
                result[name] = exc.valid_data if isinstance(exc.valid_data, dict) else {}
                errors[name] = exc.messages
            if name_problem:
                errors[name] = _merge_schema_message(errors.get(name), name_problem)
        if errors:
            raise ValidationError(errors, valid_data=result)
        return result


def _level_name_problem(name: Any) -> str | None:
    if not isinstance(name, str) or not _BARE_KEY.fullmatch(name):
        return "a level name may hold only letters, digits, _ and -"
    if name in _RESERVED_LEVEL_NAMES:
        return f"{name!r} is reserved (it names the rank band of issues with no level)"
    return None


def _merge_schema_message(errors: Any, message: str) -> dict[str, Any]:
    merged: dict[str, Any] = dict(errors) if isinstance(errors, dict) else {}
    merged.setdefault("_schema", []).append(message)
    return merged


# --------------------------------------------------------------------------------------------
# Schemas: one per table


def _as_table(original_data: Any) -> Mapping[str, Any]:
    """The raw input of a schema validator; those run even when the input was not a table."""
    return original_data if isinstance(original_data, Mapping) else {}


class StrictSchema(Schema):
    """Unknown keys are errors, and the message lists the keys allowed in that table."""

    class Meta:
        unknown = RAISE

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        allowed = ", ".join(field.data_key or name for name, field in self.load_fields.items())
        self.error_messages = {
            **self.error_messages,
            "unknown": f"unknown key (a typo?); allowed here: {allowed}",
            "type": "must be a table",
        }


class FieldSchema(StrictSchema):
    name = fields.String(validate=_non_empty)
    id = fields.String(
        validate=validate.Regexp(_FIELD_ID, error="{input!r} does not look like customfield_NNNNN")
    )

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _exactly_one(self, data: dict[str, Any], original_data: Any, **kwargs: Any) -> None:
        given = [key for key in ("name", "id") if key in _as_table(original_data)]
        if len(given) == 2:
            raise ValidationError("give either name or id, not both")
        if not given:
            raise ValidationError(
                'give the impact field as name = "<its name in Jira>" or id = "customfield_NNNNN"'
            )


class LevelSchema(StrictSchema):
    values = fields.List(
        fields.String(validate=_non_empty),
        required=True,
        validate=validate.Length(min=1, error="list at least one Jira option value"),
    )
    score = StrictInteger(required=True)
    label = fields.String(required=True, validate=_jira_label)
    impact_class = fields.String(
        data_key="class",
        required=True,
        validate=validate.OneOf(
            [ImpactClass.EXTERNAL.value, ImpactClass.INTERNAL_PREFERENCE.value]
        ),
    )
    priority = fields.String(validate=_non_empty)


class MissingSchema(StrictSchema):
    label = fields.String(validate=_jira_label)
    score = StrictInteger()
    comment = StrictBoolean()


class InferredSchema(StrictSchema):
    label = fields.String(validate=_jira_label)
    write_field = StrictBoolean()


class ProjectSchema(StrictSchema):
    key = fields.String(
        required=True,
        validate=_project_key,
        error_messages={"required": "required: the Jira project key, such as SHOP"},
    )
    board = StrictInteger(validate=validate.Range(min=1, error="must be a positive board id"))
    rank = fields.Enum(RankMode, by_value=True)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _board_when_ranking(self, data: dict[str, Any], original_data: Any, **kwargs: Any) -> None:
        rank = data.get("rank", RankMode.OFF)
        if rank is not RankMode.OFF and "board" not in _as_table(original_data):
            raise ValidationError(
                f'required when rank = "{rank.value}": the id of the board whose order is kept '
                '(or set rank = "off")',
                field_name="board",
            )


def _names(validator: Any = None) -> Positional:
    inner = fields.String(validate=[_non_empty, validator] if validator else _non_empty)
    return Positional(inner)


class RuleSchema(StrictSchema):
    name = fields.String(validate=_non_empty)
    impact = fields.String(
        required=True, error_messages={"required": "required: the level this rule infers"}
    )
    issuetypes = _names()
    components = _names()
    labels = _names()
    text = Positional(Regex())
    linked_projects = _names(_project_key)
    reporter_groups = _names()
    reporter_domains = _names(_mail_domain)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _has_a_condition(self, data: dict[str, Any], original_data: Any, **kwargs: Any) -> None:
        raw = _as_table(original_data)
        if not any(raw.get(key) for key in _RULE_CONDITIONS):
            raise ValidationError(
                "this rule has no condition, so it would match every issue; give at least one of "
                + ", ".join(_RULE_CONDITIONS)
            )


class ConfigSchema(StrictSchema):
    field = fields.Nested(
        FieldSchema,
        required=True,
        error_messages={"required": 'required: [field] with name = "..." or id = "customfield_N"'},
    )
    levels = NamedTables(
        LevelSchema,
        required=True,
        validate=validate.Length(min=1, error="define at least one level, as [levels.<name>]"),
        error_messages={"required": "define at least one level, as [levels.<name>]"},
    )
    missing = fields.Nested(MissingSchema)
    inferred = fields.Nested(InferredSchema)
    projects = Positional(fields.Nested(ProjectSchema))
    rules = Positional(fields.Nested(RuleSchema))


# --------------------------------------------------------------------------------------------
# Checks across tables, on whatever loaded


def _relation_errors(loaded: Mapping[str, Any]) -> list[tuple[KeyPath, str]]:
    levels: dict[str, dict[str, Any]] = loaded.get("levels", {})
    found = _option_value_errors(levels) + _label_errors(loaded, levels)
    found += _project_key_errors(loaded.get("projects", []))
    if "levels" in loaded:
        found += _rule_level_errors(loaded.get("rules", []), levels)
    return found


def _option_value_errors(levels: Mapping[str, Mapping[str, Any]]) -> list[tuple[KeyPath, str]]:
    found: list[tuple[KeyPath, str]] = []
    owner: dict[str, str] = {}
    for name, level in levels.items():
        for value in level.get("values", []):
            first = owner.setdefault(value, name)
            if first != name:
                found.append(
                    (
                        ("levels", name, "values"),
                        f"option value {value!r} is under two levels, {first!r} and {name!r}; "
                        "an option can mean only one level",
                    )
                )
    return found


def _label_errors(
    loaded: Mapping[str, Any], levels: Mapping[str, Mapping[str, Any]]
) -> list[tuple[KeyPath, str]]:
    found: list[tuple[KeyPath, str]] = []
    missing_label = loaded.get("missing", {}).get("label", MissingPolicy.label)
    inferred_label = loaded.get("inferred", {}).get("label", InferredPolicy.label)
    owner: dict[str, str] = {missing_label: "the [missing] label"}
    if inferred_label == missing_label:
        found.append((("inferred", "label"), f"{inferred_label!r} is also the [missing] label"))
    owner.setdefault(inferred_label, "the [inferred] label")
    for name, level in levels.items():
        label = level.get("label")
        if label is None:
            continue
        first = owner.setdefault(label, f"level {name!r}'s label")
        if first != f"level {name!r}'s label":
            found.append(
                (
                    ("levels", name, "label"),
                    f"label {label!r} is also {first}; each level needs a label of its own",
                )
            )
    return found


def _project_key_errors(projects: Sequence[Mapping[str, Any]]) -> list[tuple[KeyPath, str]]:
    found: list[tuple[KeyPath, str]] = []
    first_index: dict[str, int] = {}
    for index, project in enumerate(projects):
        key = project.get("key")
        if key is None:
            continue
        first = first_index.setdefault(key, index)
        if first != index:
            found.append(
                (
                    ("projects", index, "key"),
                    f"duplicate project {key!r}, first at projects[{first}]",
                )
            )
    return found


def _rule_level_errors(
    rules: Sequence[Mapping[str, Any]], levels: Mapping[str, Any]
) -> list[tuple[KeyPath, str]]:
    defined = ", ".join(levels) or "none"
    return [
        (("rules", index, "impact"), f"unknown level {rule['impact']!r}; defined levels: {defined}")
        for index, rule in enumerate(rules)
        if "impact" in rule and rule["impact"] not in levels
    ]


# --------------------------------------------------------------------------------------------
# Errors: marshmallow's nested messages to (key path, message)


def _flatten(messages: Any, path: KeyPath = ()) -> list[tuple[KeyPath, str]]:
    if isinstance(messages, Mapping):
        found: list[tuple[KeyPath, str]] = []
        for key, inner in messages.items():
            found += _flatten(inner, path if key == "_schema" else (*path, key))
        return found
    if isinstance(messages, list | tuple):
        return [error for message in messages for error in _flatten(message, path)]
    return [(path, str(messages))]


def _path_order(path: KeyPath) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, str(part)) for part in path)


# --------------------------------------------------------------------------------------------
# Building the model from checked data


def _build(loaded: Mapping[str, Any], source: str) -> ImpactConfig:
    levels = [
        Level(
            name=name,
            values=tuple(level["values"]),
            score=level["score"],
            label=level["label"],
            impact_class=ImpactClass(level["impact_class"]),
            priority=level.get("priority"),
        )
        for name, level in loaded["levels"].items()
    ]
    levels.sort(key=lambda level: -level.score)  # stable: ties keep file order
    return ImpactConfig(
        field=FieldRef(**loaded["field"]),
        levels=tuple(levels),
        missing=MissingPolicy(**loaded.get("missing", {})),
        inferred=InferredPolicy(**loaded.get("inferred", {})),
        projects=tuple(ProjectSettings(**project) for project in loaded.get("projects", [])),
        rules=tuple(_build_rule(index, rule) for index, rule in enumerate(loaded.get("rules", []))),
        source=source,
    )


def _build_rule(index: int, rule: Mapping[str, Any]) -> Rule:
    conditions = {key: tuple(rule[key]) for key in _RULE_CONDITIONS if key in rule}
    return Rule(name=rule.get("name", f"rules[{index}]"), impact=rule["impact"], **conditions)
