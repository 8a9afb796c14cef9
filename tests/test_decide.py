"""decide(): plain data in, a Plan out. Config built by hand from design.md's default levels."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from impact.decide import decide, explain
from impact.model import (
    ImpactClass,
    InferredPolicy,
    Issue,
    Level,
    MissingPolicy,
    Person,
    Plan,
    ProjectConfig,
    ProjectSettings,
    RankIntent,
    RankMode,
    Rule,
    Source,
)
from impact.patterns import compile_pattern

BLOCKING = "customer-impact-blocking"
DEGRADED = "customer-impact-degraded"
INDIRECT = "customer-impact-indirect"
NONE = "internal-preference"
MISSING = "needs-customer-impact"
INFERRED = "customer-impact-inferred"
MANAGED = (BLOCKING, DEGRADED, INDIRECT, NONE, MISSING, INFERRED)


def others(*kept: str) -> tuple[str, ...]:
    """The managed labels but ``kept``, sorted: what an edit that adds a label removes."""
    return tuple(sorted(set(MANAGED) - set(kept)))


LEVELS = (
    Level("blocking", ("Blocks paying customers",), 100, BLOCKING, ImpactClass.EXTERNAL, "Highest"),
    Level("degraded", ("Degrades paying customers",), 70, DEGRADED, ImpactClass.EXTERNAL, "High"),
    Level(
        "indirect",
        ("Feeds customer work", "Supports a client deliverable"),
        40,
        INDIRECT,
        ImpactClass.EXTERNAL,
        "Medium",
    ),
    Level("none", ("Internal preference",), 10, NONE, ImpactClass.INTERNAL_PREFERENCE, "Low"),
)

CHECKOUT_BUGS = Rule(
    "checkout bugs", "degraded", issuetypes=("Bug",), components=("Checkout", "Billing")
)
OUTAGES = Rule("outages", "blocking", text=(compile_pattern(r"(?i)\boutage\b"),))
SUPPORT_LINKS = Rule("support links", "indirect", linked_projects=("SUP",))
DEFAULT_RULES = (CHECKOUT_BUGS, OUTAGES, SUPPORT_LINKS)


def make_config(
    *,
    rules: tuple[Rule, ...] = DEFAULT_RULES,
    levels: tuple[Level, ...] = LEVELS,
    comment: bool = True,
    write_field: bool = False,
    rank: RankMode = RankMode.BAND,
) -> ProjectConfig:
    return ProjectConfig(
        project=ProjectSettings("SHOP", board=12, rank=rank),
        levels=levels,
        missing=MissingPolicy(label=MISSING, score=20, comment=comment),
        inferred=InferredPolicy(label=INFERRED, write_field=write_field),
        rules=rules,
    )


def make_issue(**fields: Any) -> Issue:
    fields.setdefault("key", "SHOP-1")
    fields.setdefault("project", "SHOP")
    return Issue(**fields)


ANA = Person(account_id="a1", display_name="Ana", email="ana@partner.example", groups=("Support",))


# ------------------------------------------------------------------------------------------------
# The field


@pytest.mark.parametrize(
    ("value", "level", "label", "score", "impact_class", "priority"),
    [
        ("Blocks paying customers", "blocking", BLOCKING, 100, ImpactClass.EXTERNAL, "Highest"),
        ("Degrades paying customers", "degraded", DEGRADED, 70, ImpactClass.EXTERNAL, "High"),
        ("Feeds customer work", "indirect", INDIRECT, 40, ImpactClass.EXTERNAL, "Medium"),
        ("Supports a client deliverable", "indirect", INDIRECT, 40, ImpactClass.EXTERNAL, "Medium"),
        ("Internal preference", "none", NONE, 10, ImpactClass.INTERNAL_PREFERENCE, "Low"),
    ],
)
def test_field_value_gives_its_level(
    value: str, level: str, label: str, score: int, impact_class: ImpactClass, priority: str
) -> None:
    plan = decide(make_issue(impact_values=(value,)), make_config())

    assert (plan.level, plan.source, plan.score, plan.impact_class) == (
        level,
        Source.FIELD,
        score,
        impact_class,
    )
    assert plan.add_labels == (label,)
    assert plan.remove_labels == others(label)
    assert plan.priority == priority
    assert plan.field_value is None
    assert plan.comment is None
    assert plan.rank == RankIntent(level, score)


def test_several_field_values_take_the_highest_level() -> None:
    issue = make_issue(impact_values=("Internal preference", "Degrades paying customers"))

    assert decide(issue, make_config()).level == "degraded"


def test_unmapped_option_counts_as_missing_and_is_noted() -> None:
    plan = decide(make_issue(impact_values=("Nice to have",)), make_config())

    assert (plan.source, plan.level, plan.impact_class) == (
        Source.MISSING,
        None,
        ImpactClass.UNKNOWN,
    )
    assert plan.notes == ("unmapped impact option 'Nice to have' on SHOP-1",)
    assert plan.add_labels == (MISSING,)
    assert plan.comment is not None and '"Nice to have"' in plan.comment


def test_unmapped_option_next_to_a_mapped_one_is_noted_but_the_mapped_one_counts() -> None:
    issue = make_issue(impact_values=("Nice to have", "Feeds customer work"))

    plan = decide(issue, make_config())

    assert (plan.level, plan.source) == ("indirect", Source.FIELD)
    assert plan.notes == ("unmapped impact option 'Nice to have' on SHOP-1",)


def test_unmapped_option_lets_rules_decide_but_never_overwrites_the_field() -> None:
    issue = make_issue(impact_values=("Nice to have",), linked_projects=("SUP",))

    plan = decide(issue, make_config(write_field=True))

    assert (plan.level, plan.source, plan.rule) == ("indirect", Source.RULE, "support links")
    assert plan.field_value is None


# ------------------------------------------------------------------------------------------------
# Rules


NO_REPORTER_GROUPS = Person(account_id="b2", display_name="Bo", email="bo@shop.example")

RULE_CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("issuetype", {"issuetypes": ("Bug",)}, {"issuetype": "bug"}, True),
    ("issuetype other", {"issuetypes": ("Bug",)}, {"issuetype": "Story"}, False),
    ("issuetype absent", {"issuetypes": ("Bug",)}, {}, False),
    ("component", {"components": ("Checkout",)}, {"components": ("UI", "checkout")}, True),
    ("component other", {"components": ("Checkout",)}, {"components": ("UI",)}, False),
    ("label", {"labels": ("vip",)}, {"labels": ("x", "vip")}, True),
    ("label other", {"labels": ("vip",)}, {"labels": ("x",)}, False),
    (
        "text in summary",
        {"text": (compile_pattern(r"(?i)\bcustomers?\b"),)},
        {"summary": "A Customer"},
        True,
    ),
    (
        "text in description",
        {"text": (compile_pattern(r"refund"), compile_pattern(r"(?i)\bcustomers?\b"))},
        {"summary": "Pay page", "description": "three customers wrote"},
        True,
    ),
    (
        "text absent",
        {"text": (compile_pattern(r"(?i)\bcustomers?\b"),)},
        {"summary": "customs"},
        False,
    ),
    ("linked project", {"linked_projects": ("SUP",)}, {"linked_projects": ("OPS", "SUP")}, True),
    ("linked project other", {"linked_projects": ("SUP",)}, {"linked_projects": ("OPS",)}, False),
    ("reporter group", {"reporter_groups": ("support",)}, {"reporter": ANA}, True),
    ("reporter group other", {"reporter_groups": ("sales",)}, {"reporter": ANA}, False),
    (
        "reporter group none",
        {"reporter_groups": ("support",)},
        {"reporter": NO_REPORTER_GROUPS},
        False,
    ),
    ("reporter group no reporter", {"reporter_groups": ("support",)}, {}, False),
    ("reporter domain", {"reporter_domains": ("Partner.Example",)}, {"reporter": ANA}, True),
    ("reporter domain @", {"reporter_domains": ("@partner.example",)}, {"reporter": ANA}, True),
    ("reporter domain other", {"reporter_domains": ("example",)}, {"reporter": ANA}, False),
    (
        "reporter domain no email",
        {"reporter_domains": ("partner.example",)},
        {"reporter": Person(account_id="c3")},
        False,
    ),
    ("reporter domain no reporter", {"reporter_domains": ("partner.example",)}, {}, False),
]


@pytest.mark.parametrize(
    ("conditions", "issue_fields", "matches"),
    [case[1:] for case in RULE_CASES],
    ids=[case[0] for case in RULE_CASES],
)
def test_rule_condition(
    conditions: dict[str, Any], issue_fields: dict[str, Any], matches: bool
) -> None:
    config = make_config(rules=(Rule("the rule", "degraded", **conditions),))

    plan = decide(make_issue(**issue_fields), config)

    if matches:
        assert (plan.level, plan.source, plan.rule) == ("degraded", Source.RULE, "the rule")
        assert set(plan.add_labels) == {DEGRADED, INFERRED}
    else:
        assert (plan.level, plan.source, plan.rule) == (None, Source.MISSING, None)


def test_first_matching_rule_wins() -> None:
    issue = make_issue(summary="Outage at checkout", issuetype="Bug", components=("Checkout",))

    plan = decide(issue, make_config())

    assert (plan.level, plan.rule) == ("degraded", "checkout bugs")


def test_every_condition_of_a_rule_must_hold() -> None:
    bug_elsewhere = make_issue(issuetype="Bug", components=("Search",))

    assert decide(bug_elsewhere, make_config()).source is Source.MISSING


def test_persons_value_beats_rules_and_drops_the_inferred_label() -> None:
    issue = make_issue(
        impact_values=("Internal preference",),
        summary="outage",
        labels=(BLOCKING, INFERRED),
        priority="Highest",
    )

    plan = decide(issue, make_config(write_field=True))

    assert (plan.level, plan.source, plan.rule) == ("none", Source.FIELD, None)
    assert plan.add_labels == (NONE,)
    assert plan.remove_labels == others(NONE)
    assert plan.field_value is None
    assert plan.priority == "Low"


def test_products_own_write_back_still_counts_as_inferred() -> None:
    issue = make_issue(
        impact_values=("Blocks paying customers",),
        summary="outage",
        labels=(BLOCKING, INFERRED),
        priority="Highest",
    )

    plan = decide(issue, make_config(write_field=True))

    assert (plan.level, plan.source, plan.rule) == ("blocking", Source.RULE, "outages")
    assert plan.is_empty


def test_same_value_without_the_inferred_label_is_a_persons_choice() -> None:
    issue = make_issue(impact_values=("Blocks paying customers",), summary="outage")

    plan = decide(issue, make_config())

    assert plan.source is Source.FIELD
    assert plan.add_labels == (BLOCKING,)


@pytest.mark.parametrize(
    ("write_field", "expected"), [(True, "Feeds customer work"), (False, None)]
)
def test_write_field_writes_the_levels_first_option(
    write_field: bool, expected: str | None
) -> None:
    plan = decide(make_issue(linked_projects=("SUP",)), make_config(write_field=write_field))

    assert plan.field_value == expected


# ------------------------------------------------------------------------------------------------
# Missing


def test_missing_adds_its_label_and_comments_once() -> None:
    config = make_config()
    first = decide(make_issue(reporter=ANA, summary="Pens"), config)

    assert (first.level, first.source, first.score) == (None, Source.MISSING, 20)
    assert first.add_labels == (MISSING,)
    assert first.comment is not None
    assert first.comment.startswith("Hi Ana,")
    assert first.rank == RankIntent("missing", 20)

    second = decide(make_issue(reporter=ANA, summary="Pens", labels=(MISSING,)), config)

    assert second.comment is None
    assert second.rank is None
    assert second.is_empty


def test_missing_without_comment_policy_only_labels() -> None:
    plan = decide(make_issue(), make_config(comment=False))

    assert plan.add_labels == (MISSING,)
    assert plan.comment is None


def test_missing_removes_level_and_inferred_labels() -> None:
    issue = make_issue(labels=("team-a", DEGRADED, INFERRED))

    plan = decide(issue, make_config())

    assert plan.add_labels == (MISSING,)
    assert plan.remove_labels == others(MISSING)


def test_missing_comment_lists_every_allowed_value_and_why() -> None:
    plan = decide(make_issue(), make_config(), field_label="Customer impact (ext)")

    comment = plan.comment
    assert comment is not None
    assert comment.startswith("Hi,")
    assert "Customer impact (ext)" in comment
    for level in LEVELS:
        for value in level.values:
            assert f"* {value} ({level.name}," in comment
    assert "paying customers is done first" in comment
    assert "capacity" in comment


def test_missing_comment_escapes_wiki_markup_in_names() -> None:
    reporter = Person(account_id="d4", display_name="*Kim*")

    comment = decide(make_issue(reporter=reporter), make_config()).comment

    assert comment is not None and comment.startswith("Hi \\*Kim\\*,")


# ------------------------------------------------------------------------------------------------
# Labels, priority, rank


def test_changing_level_removes_other_level_labels_and_missing() -> None:
    issue = make_issue(
        impact_values=("Degrades paying customers",), labels=(BLOCKING, INDIRECT, MISSING)
    )

    plan = decide(issue, make_config())

    assert plan.add_labels == (DEGRADED,)
    assert plan.remove_labels == others(DEGRADED)


def test_an_edit_that_adds_a_label_removes_every_other_managed_one_seen_or_not() -> None:
    """A stale body shows none of the labels written since: the edit takes them off anyway, so
    an issue never carries two managed labels that contradict each other."""
    plan = decide(make_issue(impact_values=("Blocks paying customers",)), make_config())
    assert plan.remove_labels == others(BLOCKING)
    assert MISSING in plan.remove_labels


def test_a_plan_that_adds_no_label_removes_only_those_present() -> None:
    issue = make_issue(impact_values=("Blocks paying customers",), labels=(BLOCKING, INFERRED))
    plan = decide(issue, make_config())
    assert (plan.add_labels, plan.remove_labels) == ((), (INFERRED,))


@pytest.mark.parametrize(
    "issue_fields",
    [
        {"impact_values": ("Blocks paying customers",)},
        {"summary": "outage"},
        {},
    ],
    ids=["field", "rule", "missing"],
)
def test_unrelated_labels_are_never_touched(issue_fields: dict[str, Any]) -> None:
    config = make_config()
    plan = decide(make_issue(labels=("rank-pinned", "team-a", "Customer"), **issue_fields), config)

    touched = set(plan.add_labels) | set(plan.remove_labels)
    assert touched <= config.managed_labels
    assert not touched & {"rank-pinned", "team-a", "Customer"}


@pytest.mark.parametrize(
    ("level_priority", "issue_priority", "expected"),
    [
        ("Highest", None, "Highest"),
        ("Highest", "Low", "Highest"),
        ("Highest", "highest", None),
        (None, "Low", None),
    ],
)
def test_priority_is_set_only_when_configured_and_different(
    level_priority: str | None, issue_priority: str | None, expected: str | None
) -> None:
    blocking = dataclasses.replace(LEVELS[0], priority=level_priority)
    config = make_config(levels=(blocking, *LEVELS[1:]))
    issue = make_issue(impact_values=("Blocks paying customers",), priority=issue_priority)

    assert decide(issue, config).priority == expected


@pytest.mark.parametrize(
    ("issue_fields", "rank"),
    [
        ({"impact_values": ("Feeds customer work",)}, RankIntent("indirect", 40)),
        ({"impact_values": ("Feeds customer work",), "labels": (INDIRECT,)}, None),
        ({"linked_projects": ("SUP",), "labels": (INFERRED,)}, RankIntent("indirect", 40)),
        ({"linked_projects": ("SUP",), "labels": (INDIRECT,)}, None),
        ({}, RankIntent("missing", 20)),
        ({"labels": (MISSING,)}, None),
    ],
    ids=[
        "field enters",
        "field stays",
        "rule enters",
        "rule stays",
        "missing enters",
        "missing stays",
    ],
)
def test_rank_intent_only_when_entering_a_band(
    issue_fields: dict[str, Any], rank: RankIntent | None
) -> None:
    assert decide(make_issue(**issue_fields), make_config()).rank == rank


def test_no_rank_intent_when_ranking_is_off_for_the_project() -> None:
    plan = decide(
        make_issue(impact_values=("Feeds customer work",)), make_config(rank=RankMode.OFF)
    )

    assert plan.add_labels == (INDIRECT,)
    assert plan.rank is None


@pytest.mark.parametrize(
    ("issue_fields", "label"),
    [({}, MISSING), ({"impact_values": ("Feeds customer work",)}, INDIRECT)],
    ids=["missing", "field"],
)
def test_done_issue_is_labelled_without_comment_or_rank(
    issue_fields: dict[str, Any], label: str
) -> None:
    plan = decide(make_issue(status_category="done", reporter=ANA, **issue_fields), make_config())

    assert label in plan.add_labels
    assert plan.comment is None
    assert plan.rank is None


def test_settled_issue_gives_an_empty_plan() -> None:
    issue = make_issue(
        impact_values=("Degrades paying customers",), labels=(DEGRADED, "team-a"), priority="HIGH"
    )

    plan = decide(issue, make_config())

    assert plan.is_empty
    assert plan.summary() == "SHOP-1: degraded (field) no change"


def test_same_input_gives_equal_plans() -> None:
    issue = make_issue(
        reporter=ANA,
        labels=("z", BLOCKING, NONE, INFERRED, "a"),
        impact_values=("Nope", "Also nope"),
    )
    config = make_config(comment=True)

    first, second = decide(issue, config), decide(issue, config)

    assert first == second
    assert first.remove_labels == others(MISSING)


# ------------------------------------------------------------------------------------------------
# explain


@pytest.mark.parametrize(
    ("issue_fields", "sentence"),
    [
        ({"impact_values": ("Blocks paying customers",)}, "blocking, set by a person in the field"),
        (
            {"issuetype": "Bug", "components": ("Billing",)},
            "degraded, inferred by rule 'checkout bugs'",
        ),
        ({}, "no impact stated and no rule matched"),
        (
            {"impact_values": ("Nope",)},
            "no known impact stated (the field holds an unmapped option) and no rule matched",
        ),
    ],
)
def test_explain_says_why(issue_fields: dict[str, Any], sentence: str) -> None:
    plan: Plan = decide(make_issue(**issue_fields), make_config())

    assert explain(plan) == sentence
