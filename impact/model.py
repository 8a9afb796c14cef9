"""The product's vocabulary: frozen dataclasses shared by every layer.

Nothing here does I/O. The config loader (``impact.config``) builds an ``ImpactConfig``;
``impact.snapshot`` turns Jira JSON into an ``Issue``; ``impact.decide`` turns an ``Issue`` and a
``ProjectConfig`` into a ``Plan``; ``connector`` carries a ``Plan`` out against Jira.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import regex


class ImpactClass(StrEnum):
    EXTERNAL = "external"
    INTERNAL_PREFERENCE = "internal-preference"
    UNKNOWN = "unknown"


class Source(StrEnum):
    """How a plan's level was reached."""

    FIELD = "field"  # a person set the Jira field
    RULE = "rule"  # an admin rule inferred it
    MISSING = "missing"  # neither


class RankMode(StrEnum):
    OFF = "off"
    BAND = "band"  # place new / re-classified issues at the bottom of their band
    FULL = "full"  # band, plus a periodic full rerank


# --------------------------------------------------------------------------------------------
# Config (built by impact.config from config/impact.toml)


@dataclass(frozen=True)
class FieldRef:
    """The Jira custom field holding the impact; exactly one of ``name`` / ``id`` is set."""

    name: str | None = None
    id: str | None = None

    def describe(self) -> str:
        return self.id if self.id else repr(self.name)


@dataclass(frozen=True)
class Level:
    name: str  # "blocking"
    values: tuple[str, ...]  # the Jira option values that mean this level
    score: int
    label: str
    impact_class: ImpactClass
    priority: str | None = None


@dataclass(frozen=True)
class MissingPolicy:
    label: str = "needs-customer-impact"
    score: int = 20
    comment: bool = True


@dataclass(frozen=True)
class InferredPolicy:
    label: str = "customer-impact-inferred"
    write_field: bool = False


@dataclass(frozen=True)
class Rule:
    """All non-empty conditions must hold; an empty condition is not checked."""

    name: str  # the rule's ``name`` key, or "rules[N]" when it has none
    impact: str  # a level name
    issuetypes: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    text: tuple[regex.Pattern[str], ...] = ()  # any pattern matching summary + description
    linked_projects: tuple[str, ...] = ()
    reporter_groups: tuple[str, ...] = ()
    reporter_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProjectSettings:
    key: str
    board: int | None = None
    rank: RankMode = RankMode.OFF


@dataclass(frozen=True)
class ProjectConfig:
    """Everything ``decide`` needs for one project."""

    project: ProjectSettings
    levels: tuple[Level, ...]  # highest score first
    missing: MissingPolicy
    inferred: InferredPolicy
    rules: tuple[Rule, ...]

    def level(self, name: str) -> Level:
        for level in self.levels:
            if level.name == name:
                return level
        raise KeyError(name)

    def level_for_value(self, value: str) -> Level | None:
        for level in self.levels:
            if value in level.values:
                return level
        return None

    @property
    def managed_labels(self) -> frozenset[str]:
        """Labels this product owns: every level's, the missing and the inferred label."""
        return frozenset(
            [lv.label for lv in self.levels] + [self.missing.label, self.inferred.label]
        )


@dataclass(frozen=True)
class ImpactConfig:
    field: FieldRef
    levels: tuple[Level, ...]  # highest score first
    missing: MissingPolicy
    inferred: InferredPolicy
    projects: tuple[ProjectSettings, ...]
    rules: tuple[Rule, ...]
    source: str = "<memory>"  # the file it was read from, for messages

    def for_project(self, key: str) -> ProjectConfig | None:
        for project in self.projects:
            if project.key == key:
                return ProjectConfig(project, self.levels, self.missing, self.inferred, self.rules)
        return None


# --------------------------------------------------------------------------------------------
# Jira data, reduced to what decisions need (built by impact.snapshot)


@dataclass(frozen=True)
class Person:
    """A Jira user. Cloud identifies by ``account_id``; Server/DC by ``name`` / ``key``."""

    account_id: str | None = None
    name: str | None = None
    key: str | None = None
    display_name: str | None = None
    email: str | None = None
    groups: tuple[str, ...] = ()

    def same_as(self, other: Person | None) -> bool:
        if other is None:
            return False
        for mine, theirs in (
            (self.account_id, other.account_id),
            (self.key, other.key),
            (self.name, other.name),
        ):
            if mine and theirs:
                return mine == theirs
        return False


@dataclass(frozen=True)
class Issue:
    key: str
    project: str
    issuetype: str | None = None
    summary: str = ""
    description: str = ""  # plain text (ADF flattened)
    labels: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    priority: str | None = None  # priority name
    impact_values: tuple[str, ...] = ()  # option value(s) of the impact field; () when empty
    linked_projects: tuple[str, ...] = ()  # project keys of linked issues
    reporter: Person | None = None
    status_category: str | None = None  # "new" | "indeterminate" | "done"


# --------------------------------------------------------------------------------------------
# The decision


@dataclass(frozen=True)
class RankIntent:
    """Where the ranking step should put the issue: the bottom of this band."""

    band: str  # level name, or "missing"
    score: int


@dataclass(frozen=True)
class Plan:
    issue_key: str
    level: str | None  # level name; None when missing
    source: Source
    impact_class: ImpactClass
    score: int
    rule: str | None = None  # the rule's name when source is RULE
    add_labels: tuple[str, ...] = ()
    remove_labels: tuple[str, ...] = ()
    priority: str | None = None  # priority name to set; None leaves it
    field_value: str | None = None  # inferred option value to write (write_field = true)
    comment: str | None = None  # wiki-text comment to post
    rank: RankIntent | None = None  # set when the issue enters a band
    notes: tuple[str, ...] = field(default=())  # things to log (an unmapped option, say)

    @property
    def is_empty(self) -> bool:
        """True when carrying the plan out would write nothing to the issue."""
        return not (
            self.add_labels
            or self.remove_labels
            or self.priority
            or self.field_value
            or self.comment
            or self.rank
        )

    def summary(self) -> str:
        """One line for logs and the delivery log."""
        parts = [f"{self.issue_key}: {self.level or 'missing'} ({self.source.value}"]
        parts[0] += f" {self.rule})" if self.rule else ")"
        if self.add_labels:
            parts.append("+" + ",".join(self.add_labels))
        if self.remove_labels:
            parts.append("-" + ",".join(self.remove_labels))
        if self.priority:
            parts.append(f"priority={self.priority}")
        if self.field_value:
            parts.append(f"field={self.field_value!r}")
        if self.comment:
            parts.append("comment")
        if self.rank:
            parts.append(f"rank->{self.rank.band}")
        return " ".join(parts) if len(parts) > 1 else parts[0] + " no change"
