"""``jira-impact config init``'s starting config, from plain data: a field's options in, a TOML
text out that the config loader takes, each option under the level its words suggest."""

from __future__ import annotations

import tomllib

import pytest

from impact.config import parse_config
from jira_setup.starter import guess_levels, starter_config

DEFAULTS = [
    "Blocks paying customers",
    "Degrades paying customers' experience",
    "Indirect: feeds customer-facing work",
    "None: internal preference",
]


@pytest.mark.parametrize(
    ("option", "level"),
    [
        ("Blocks paying customers", "blocking"),
        ("Sev 1 - customers cannot log in", "blocking"),
        ("P0", "blocking"),
        ("Degrades paying customers' experience", "degraded"),
        ("Slow for some customers", "degraded"),
        ("Indirect: feeds customer-facing work", "indirect"),
        ("Supports the sales team", "indirect"),
        ("None: internal preference", "none"),
        ("No customer impact", "none"),
        ("Not blocking anyone", "none"),  # the negation wins over "block"
        ("Cosmetic", "none"),
        ("Low", "none"),
    ],
)
def test_an_options_words_suggest_its_level(option, level):
    (guess,) = guess_levels([option])
    assert guess.level == level
    assert "suggests" in guess.why


def test_options_no_word_explains_go_by_their_place_in_jiras_list():
    colours = guess_levels(["Red", "Amber", "Green", "Blue"])
    mixed = guess_levels(["Down for everyone", "Amber", "Green", "Nice to have"])

    assert [g.level for g in colours] == ["blocking", "degraded", "indirect", "none"]
    assert [g.level for g in mixed] == ["blocking", "degraded", "indirect", "none"]
    assert "suggests" in mixed[0].why
    assert "by its place in Jira's list" in mixed[1].why


def test_the_default_options_make_the_default_mapping_and_the_config_loads():
    text = starter_config("Customer Impact", DEFAULTS, ["SHOP"])

    config = parse_config(tomllib.loads(text), source="impact.toml")

    assert config.field.name == "Customer Impact"
    assert [(level.name, level.values) for level in config.levels] == [
        ("blocking", (DEFAULTS[0],)),
        ("degraded", (DEFAULTS[1],)),
        ("indirect", (DEFAULTS[2],)),
        ("none", (DEFAULTS[3],)),
    ]
    assert [p.key for p in config.projects] == ["SHOP"]
    assert "GUESS" in text and "'Blocks' suggests blocking" in text


def test_a_level_no_option_means_is_left_out_with_a_word_on_how_to_add_it():
    text = starter_config("Impact", ["Outage", "Nice to have"])

    config = parse_config(tomllib.loads(text), source="impact.toml")

    assert [level.name for level in config.levels] == ["blocking", "none"]
    assert "# [levels.degraded]: no option was guessed" in text
    assert config.projects == ()


def test_quotes_and_backslashes_in_names_survive():
    odd = ['Says "blocked"', "Back\\slash none", "Ünïcode – slow"]

    text = starter_config('The "impact" field', odd)

    config = parse_config(tomllib.loads(text), source="impact.toml")
    assert config.field.name == 'The "impact" field'
    assert sorted(v for level in config.levels for v in level.values) == sorted(odd)


def test_a_field_without_options_has_nothing_to_start_from():
    with pytest.raises(ValueError, match="no options"):
        starter_config("Impact", [])
