"""The decision: what one issue's impact is, and what to write back to make it show.

``decide`` is pure: an ``Issue`` and a ``ProjectConfig`` in, a ``Plan`` out. No I/O, no clock,
no environment; the same input always gives an equal plan, with one bound: a rule's pattern that
runs past ``impact.patterns.TIMEOUT_SECONDS`` (only on hostile text) counts as not matching, and
the plan says so in a note.
"""

from __future__ import annotations

from collections.abc import Iterable

from impact import patterns
from impact.model import (
    ImpactClass,
    Issue,
    Level,
    Plan,
    ProjectConfig,
    RankIntent,
    RankMode,
    Rule,
    Source,
)

DEFAULT_FIELD_LABEL = "External customer impact"
MISSING_BAND = "missing"
UNMAPPED_NOTE = "unmapped impact option"

_CLASS_MEANING = {
    ImpactClass.EXTERNAL: "affects paying customers",
    ImpactClass.INTERNAL_PREFERENCE: "an internal preference",
    ImpactClass.UNKNOWN: "impact unknown",
}
_WIKI_SPECIAL = set("*_{}[]|!^~+#")  # not "\\": a doubled backslash is a wiki line break


def decide(issue: Issue, config: ProjectConfig, *, field_label: str = DEFAULT_FIELD_LABEL) -> Plan:
    """Plan the labels, priority, field value, comment and rank move for ``issue``."""
    field_level, notes = field_level_of(issue, config)
    match, slow = first_matching_rule(issue, config)
    notes += slow

    level: Level | None = None
    rule: Rule | None = None
    if field_level is not None:
        level = field_level
        # The product's own write-back (write_field = true) reads like a person's value; the
        # inferred label it left behind tells them apart.
        if (
            match is not None
            and config.level(match.impact) == field_level
            and config.inferred.label in issue.labels
        ):
            rule = match
    elif match is not None:
        level, rule = config.level(match.impact), match

    done = issue.status_category == "done"
    if level is None:
        return _missing_plan(issue, config, notes, done=done, field_label=field_label)

    wanted = {level.label} | ({config.inferred.label} if rule else set())
    add, remove = _label_changes(issue, config, wanted)
    field_value = None
    if rule and config.inferred.write_field and not issue.impact_values and level.values:
        field_value = level.values[0]
    return Plan(
        issue_key=issue.key,
        level=level.name,
        source=Source.RULE if rule else Source.FIELD,
        impact_class=level.impact_class,
        score=level.score,
        rule=rule.name if rule else None,
        add_labels=add,
        remove_labels=remove,
        priority=_priority_change(issue, level),
        field_value=field_value,
        rank=_rank_intent(config, level.label in add, level.name, level.score, done=done),
        notes=notes,
    )


def field_level_of(issue: Issue, config: ProjectConfig) -> tuple[Level | None, tuple[str, ...]]:
    """The highest level among the field's option values, and a note per unmapped value."""
    levels: list[Level] = []
    notes: list[str] = []
    for value in issue.impact_values:
        level = config.level_for_value(value)
        if level is None:
            notes.append(f"{UNMAPPED_NOTE} {value!r} on {issue.key}")
        else:
            levels.append(level)
    best = max(levels, key=lambda lv: lv.score) if levels else None
    return best, tuple(notes)


def first_matching_rule(issue: Issue, config: ProjectConfig) -> tuple[Rule | None, tuple[str, ...]]:
    """The first rule whose conditions all hold for ``issue`` (rules are tried in order), and a
    note for each pattern that ran out of time (``impact.patterns``), counted as not matching."""
    slow: list[str] = []
    for rule in config.rules:
        if rule_holds(rule, issue, slow):
            return rule, tuple(slow)
    return None, tuple(slow)


def rule_holds(rule: Rule, issue: Issue, slow: list[str]) -> bool:
    """True when every non-empty condition of ``rule`` holds; data the issue lacks fails it.
    A pattern that runs out of time does not match, and is noted in ``slow``."""
    reporter = issue.reporter
    issuetype = [issue.issuetype] if issue.issuetype else []
    if rule.issuetypes and not _meets(rule.issuetypes, issuetype):
        return False
    if rule.components and not _meets(rule.components, issue.components):
        return False
    if rule.labels and not set(rule.labels) & set(issue.labels):
        return False
    if rule.text and not _text_matches(rule, issue, slow):
        return False
    if rule.linked_projects and not _meets(rule.linked_projects, issue.linked_projects):
        return False
    if rule.reporter_groups and not (reporter and _meets(rule.reporter_groups, reporter.groups)):
        return False
    if rule.reporter_domains:
        email = (reporter.email if reporter else None) or ""
        domain = email.rpartition("@")[2].casefold() if "@" in email else ""
        wanted = {d.casefold().lstrip("@") for d in rule.reporter_domains}
        if domain not in wanted:
            return False
    return True


def _text_matches(rule: Rule, issue: Issue, slow: list[str]) -> bool:
    text = f"{issue.summary}\n{issue.description}"
    for pattern in rule.text:
        found = patterns.search(pattern, text)
        if found:
            return True
        if found is None:
            shown = pattern.pattern if len(pattern.pattern) <= 60 else pattern.pattern[:60] + "…"
            slow.append(
                f"rule {rule.name!r}: pattern {shown!r} took over "
                f"{patterns.TIMEOUT_SECONDS:g} s on {issue.key}; counted as not matching"
            )
    return False


def explain(plan: Plan) -> str:
    """One plain sentence saying why the issue has the impact it has."""
    if plan.source in (Source.FIELD, Source.RULE):
        return f"{plan.level}, {reason(plan)}"
    return reason(plan)


def reason(plan: Plan) -> str:
    """Who or what gave the issue its level, without naming the level (where the level is
    shown beside it): a person in the field, or the admins' rule by its name."""
    if plan.source is Source.FIELD:
        return "set by a person in the field"
    if plan.source is Source.RULE:
        return f"inferred by rule '{plan.rule}'"
    if any(note.startswith(UNMAPPED_NOTE) for note in plan.notes):
        return "no known impact stated (the field holds an unmapped option) and no rule matched"
    return "no impact stated and no rule matched"


# Ends every ask, so the connector can tell it already asked (and never asks twice).
ASK_MARKER = "asked once by jira-customer-impact"


def missing_comment(issue: Issue, config: ProjectConfig, field_label: str) -> str:
    """The one comment asking the reporter for the impact (Jira wiki markup, REST v2)."""
    name = issue.reporter.display_name if issue.reporter else None
    lines = [f"Hi {_wiki(name)}," if name else "Hi,", ""]
    if issue.impact_values:
        shown = ", ".join(f'"{_wiki(v)}"' for v in issue.impact_values)
        lines.append(
            f"The *{_wiki(field_label)}* field on this issue holds {shown}, which is not one of "
            "the allowed values. Please set it to one of these:"
        )
    else:
        lines.append(
            f"This issue does not say how it affects paying customers: the "
            f"*{_wiki(field_label)}* field is empty. Please set it to one of these values:"
        )
    for level in config.levels:
        meaning = f"{level.name}, {_CLASS_MEANING[level.impact_class]}"
        lines.extend(f"* {_wiki(value)} ({_wiki(meaning)})" for value in level.values)
    lines += [
        "",
        "Why it matters: work that serves paying customers is done first, the rest as capacity "
        "allows. Thank you!",
        "",
        f"_({ASK_MARKER})_",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------


def _missing_plan(
    issue: Issue, config: ProjectConfig, notes: tuple[str, ...], *, done: bool, field_label: str
) -> Plan:
    add, remove = _label_changes(issue, config, {config.missing.label})
    enters_band = config.missing.label in add
    comment = None
    if enters_band and config.missing.comment and not done:
        comment = missing_comment(issue, config, field_label)
    return Plan(
        issue_key=issue.key,
        level=None,
        source=Source.MISSING,
        impact_class=ImpactClass.UNKNOWN,
        score=config.missing.score,
        add_labels=add,
        remove_labels=remove,
        comment=comment,
        rank=_rank_intent(config, enters_band, MISSING_BAND, config.missing.score, done=done),
        notes=notes,
    )


def _label_changes(
    issue: Issue, config: ProjectConfig, wanted: set[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Managed labels to add and to remove so the issue carries exactly ``wanted`` of them.

    An edit that adds a label also removes every other managed label, present in ``issue`` or
    not: the issue may carry more than this snapshot shows (a label written since), and it must
    never carry two that contradict each other. Removing an absent label changes nothing."""
    present = set(issue.labels)
    add = wanted - present
    remove = (config.managed_labels - wanted) if add else (config.managed_labels & present) - wanted
    return tuple(sorted(add)), tuple(sorted(remove))


def _priority_change(issue: Issue, level: Level) -> str | None:
    if level.priority is None:
        return None
    if issue.priority is not None and issue.priority.casefold() == level.priority.casefold():
        return None
    return level.priority


def _rank_intent(
    config: ProjectConfig, enters_band: bool, band: str, score: int, *, done: bool
) -> RankIntent | None:
    if not enters_band or done or config.project.rank is RankMode.OFF:
        return None
    return RankIntent(band=band, score=score)


def _meets(wanted: Iterable[str], actual: Iterable[str]) -> bool:
    """Case-insensitive: does any of ``actual`` appear in ``wanted``?"""
    folded = {w.casefold() for w in wanted}
    return any(a.casefold() in folded for a in actual)


def _wiki(text: str) -> str:
    """Escape the characters Jira wiki markup would read as formatting."""
    return "".join("\\" + ch if ch in _WIKI_SPECIAL else ch for ch in text)
