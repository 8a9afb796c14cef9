"""The admins' config: shipped files load, every mistake is reported with its key path."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from impact.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_config
from impact.model import (
    FieldRef,
    ImpactClass,
    InferredPolicy,
    MissingPolicy,
    ProjectSettings,
    RankMode,
)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / DEFAULT_CONFIG_PATH
EXAMPLE = ROOT / "config" / "impact.example.toml"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "config"


def errors_of(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    return caught.value.errors


# --------------------------------------------------------------------------------------------
# The shipped files


@pytest.mark.parametrize("path", [SHIPPED, EXAMPLE], ids=["impact.toml", "impact.example.toml"])
def test_shipped_files_load(path: Path) -> None:
    config = load_config(path)

    assert config.source == str(path)
    assert config.for_project("SHOP") is not None


def test_example_describes_the_shipped_config() -> None:
    shipped = load_config(SHIPPED)
    example = load_config(EXAMPLE)

    assert dataclasses.replace(example, source=shipped.source) == shipped


def test_shipped_config_has_the_design_levels() -> None:
    config = load_config(SHIPPED)

    assert config.field == FieldRef(name="External customer impact")
    assert [
        (lv.name, lv.score, lv.label, lv.impact_class, lv.priority) for lv in config.levels
    ] == [
        ("blocking", 100, "customer-impact-blocking", ImpactClass.EXTERNAL, "Highest"),
        ("degraded", 70, "customer-impact-degraded", ImpactClass.EXTERNAL, "High"),
        ("indirect", 40, "customer-impact-indirect", ImpactClass.EXTERNAL, "Medium"),
        ("none", 10, "internal-preference", ImpactClass.INTERNAL_PREFERENCE, "Low"),
    ]
    assert all(len(level.values) == 1 for level in config.levels)
    assert config.missing == MissingPolicy("needs-customer-impact", 20, True)
    assert config.inferred == InferredPolicy("customer-impact-inferred", False)
    assert config.projects == (ProjectSettings("SHOP", 1, RankMode.BAND),)
    assert {rule.impact for rule in config.rules} <= {level.name for level in config.levels}


def test_shipped_rules_are_compiled_and_named() -> None:
    rules = {rule.name: rule for rule in load_config(SHIPPED).rules}

    outage = rules["outage reported"]
    assert any(p.search("Checkout is down for customers since 9:00") for p in outage.text)
    assert not any(p.search("Customers asked for a darker theme") for p in outage.text)
    assert rules["checkout or billing bug"].components == ("Checkout", "Billing")
    assert rules["raised by support"].linked_projects == ("SUP",)


# --------------------------------------------------------------------------------------------
# Defaults, order, lookups


def test_defaults_are_applied() -> None:
    config = load_config(FIXTURES / "minimal.toml")

    assert config.missing == MissingPolicy(label="needs-customer-impact", score=20, comment=True)
    assert config.inferred == InferredPolicy(label="customer-impact-inferred", write_field=False)
    assert config.projects == (ProjectSettings(key="OPS", board=None, rank=RankMode.OFF),)
    assert config.levels[0].priority is None
    assert [rule.name for rule in config.rules] == ["rules[0]"]
    assert config.rules[0].labels == ("outage",)
    assert config.rules[0].issuetypes == () and config.rules[0].text == ()


def test_levels_are_ordered_highest_score_first_ties_in_file_order() -> None:
    config = load_config(FIXTURES / "levels-out-of-order.toml")

    assert config.field == FieldRef(id="customfield_10042")
    assert [level.name for level in config.levels] == ["blocking", "degraded", "slowed", "none"]


def test_for_project_gives_the_shared_settings_with_the_project() -> None:
    config = load_config(SHIPPED)

    shop = config.for_project("SHOP")

    assert shop is not None
    assert shop.project.board == 1
    assert shop.levels == config.levels
    assert shop.rules == config.rules
    assert shop.level_for_value("Blocks paying customers") == shop.level("blocking")
    assert "needs-customer-impact" in shop.managed_labels
    assert config.for_project("OPS") is None


def test_parse_config_reads_a_mapping() -> None:
    data = {
        "field": {"id": "customfield_10042"},
        "levels": {
            "high": {"values": ["High"], "score": 5, "label": "high", "class": "external"},
        },
    }

    config = parse_config(data, source="inline")

    assert config.source == "inline"
    assert config.field.id == "customfield_10042"
    assert [level.name for level in config.levels] == ["high"]


@pytest.mark.parametrize(
    ("key", "value"),
    [("score", True), ("score", 5.0), ("score", "5"), ("values", "High"), ("label", None)],
)
def test_mapping_values_of_the_wrong_type_are_refused(key: str, value: object) -> None:
    level = {"values": ["High"], "score": 5, "label": "high", "class": "external", key: value}

    with pytest.raises(ConfigError) as caught:
        parse_config({"field": {"name": "Impact"}, "levels": {"high": level}}, source="inline")

    assert [path for path, _ in caught.value.errors] == [f"levels.high.{key}"]


# --------------------------------------------------------------------------------------------
# One mistake per file: exactly one error, at the right key, saying what is wrong


@pytest.mark.parametrize(
    ("fixture", "key_path", "says"),
    [
        ("unknown-key", "levels.blocking.scor", "unknown key"),
        ("unknown-table", "project", "unknown key"),
        ("field-both", "field", "not both"),
        ("field-neither", "field", "customfield_"),
        ("field-bad-id", "field.id", "customfield_"),
        ("no-levels", "levels", "at least one level"),
        ("level-empty-values", "levels.blocking.values", "at least one"),
        ("level-score-not-integer", "levels.blocking.score", "integer"),
        ("level-label-with-space", "levels.blocking.label", "spaces"),
        ("level-bad-class", "levels.blocking.class", "external, internal-preference"),
        ("level-reserved-name", "levels.missing", "reserved"),
        ("duplicate-option-value", "levels.degraded.values", "'blocking' and 'degraded'"),
        ("duplicate-level-label", "levels.degraded.label", "'blocking'"),
        ("level-label-is-missing-label", "levels.none.label", "[missing]"),
        ("level-label-is-inferred-label", "levels.blocking.label", "[inferred]"),
        ("missing-comment-not-boolean", "missing.comment", "boolean"),
        ("project-without-key", "projects[0].key", "required"),
        ("project-bad-key", "projects[0].key", "not a Jira project key"),
        ("duplicate-project-key", "projects[1].key", "duplicate project 'SHOP'"),
        ("board-required", "projects[0].board", 'required when rank = "full"'),
        ("rule-unknown-level", "rules[1].impact", "unknown level 'degradd'"),
        ("rule-bad-regex", "rules[0].text[1]", "unterminated character set"),
        ("rule-no-condition", "rules[0]", "would match every issue"),
    ],
)
def test_each_mistake_is_reported_at_its_key_path(fixture: str, key_path: str, says: str) -> None:
    errors = errors_of(FIXTURES / f"{fixture}.toml")

    assert len(errors) == 1, errors
    assert errors[0][0] == key_path
    assert says in errors[0][1]


def test_all_mistakes_in_a_file_are_reported_at_once() -> None:
    errors = errors_of(FIXTURES / "many-errors.toml")

    assert [path for path, _ in errors] == [
        "field",
        "levels.blocking.label",
        "levels.degraded.colour",
        "levels.degraded.score",
        "levels.degraded.values",
        "projects[0].board",
        "projects[1].key",
        "rules[0].impact",
        "rules[0].text[0]",
    ]


def test_message_lists_every_error_with_file_key_and_setting() -> None:
    path = FIXTURES / "many-errors.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)

    heading, *lines = str(caught.value).splitlines()

    assert "IMPACT_CONFIG" in heading
    assert [line.strip() for line in lines] == [
        f"{path}: {key_path}: {message}" for key_path, message in caught.value.errors
    ]
    assert len(lines) == 9


def test_invalid_toml_is_a_config_error_with_its_line() -> None:
    errors = errors_of(FIXTURES / "not-toml.toml")

    assert len(errors) == 1
    assert re.search(r"not valid TOML: .*line 6", errors[0][1])


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    absent = tmp_path / "impact.toml"

    with pytest.raises(ConfigError) as caught:
        load_config(absent)

    assert caught.value.source == str(absent)
    assert "cannot read" in caught.value.errors[0][1]
    assert str(absent) in str(caught.value)


def test_errors_after_a_broken_entry_keep_their_index() -> None:
    data = {
        "field": {"name": "Impact"},
        "levels": {"high": {"values": ["High"], "score": 5, "label": "high", "class": "external"}},
        "rules": [None, {"impact": "low", "labels": ["x"]}],
    }

    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="inline")

    assert [path for path, _ in caught.value.errors] == ["rules[0]", "rules[1].impact"]


HIGH = {"values": ["High"], "score": 5, "label": "high", "class": "external"}


@pytest.mark.parametrize(
    ("extra", "key_path", "says"),
    [
        ({"levels": 5}, "levels", "table"),
        ({"levels": {"high": {**HIGH, "label": ""}}}, "levels.high.label", "empty"),
        ({"levels": {"high": {**HIGH, "label": "x" * 256}}}, "levels.high.label", "255"),
        ({"levels": {"a b": HIGH}}, 'levels."a b"', "letters, digits"),
        ({"inferred": {"label": "needs-customer-impact"}}, "inferred.label", "[missing]"),
        ({"projects": {"key": "SHOP"}}, "projects", "list"),
        (
            {"rules": [{"impact": "high", "reporter_domains": ["@example.com"]}]},
            "rules[0].reporter_domains[0]",
            "example.com",
        ),
        ({"rules": [{"impact": "high", "text": [5]}]}, "rules[0].text[0]", "regular expression"),
    ],
)
def test_mapping_mistakes_are_reported_at_their_key_path(
    extra: dict[str, object], key_path: str, says: str
) -> None:
    data = {"field": {"name": "Impact"}, "levels": {"high": HIGH}, **extra}

    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="inline")

    assert len(caught.value.errors) == 1, caught.value.errors
    assert caught.value.errors[0][0] == key_path
    assert says in caught.value.errors[0][1]


def test_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "impact.toml"
    path.write_bytes(b'[field]\nname = "\xff"\n')

    assert "UTF-8" in errors_of(path)[0][1]
