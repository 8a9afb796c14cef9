"""The level an issue has now, as triage decides it: the field a person set, else the admin's
rules, else missing (``impact.decide.decide``), from the issue as Jira holds it.

Triage, placement, the rerank and the pages that show a board all judge issues this one way, so
an issue ranks and shows as triage labels it, whatever labels it carries yet. A rule on the
reporter's groups costs a Jira call per reporter: ``Groups`` asks once per person for as long as
it lives (one triage, one reading of a board).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from connector.protocol import Jira
from impact.decide import DEFAULT_FIELD_LABEL, MISSING_BAND, decide, explain
from impact.model import ImpactConfig, Issue, Plan, ProjectConfig
from impact.ranking import PINNED_LABEL, BoardIssue
from impact.snapshot import issue_from_json

# What deciding an issue reads of it: ask a board or a search for these (and the impact field).
DECIDE_FIELDS = (
    "project",
    "issuetype",
    "summary",
    "description",
    "labels",
    "components",
    "priority",
    "issuelinks",
    "reporter",
    "status",
)


class Groups:
    """The reporter's groups, asked of Jira once per person, and only when a rule needs them."""

    def __init__(self, jira: Jira, config: ImpactConfig) -> None:
        self.jira = jira
        self.needed = any(rule.reporter_groups for rule in config.rules)
        self._known: dict[tuple[str | None, str | None, str | None], tuple[str, ...]] = {}

    def fill(self, issue: Issue) -> Issue:
        reporter = issue.reporter
        if not self.needed or reporter is None or reporter.groups:
            return issue
        who = (reporter.account_id, reporter.name, reporter.key)
        if who not in self._known:
            self._known[who] = self.jira.user_groups(reporter)
        return replace(issue, reporter=replace(reporter, groups=self._known[who]))


@dataclass(frozen=True)
class Judged:
    """An issue and what triage decides of it now; ``extra``: the fields read for a page beyond
    those deciding takes (``created``, say), as Jira gave them."""

    issue: Issue
    plan: Plan
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def band(self) -> str:
        return self.plan.level or MISSING_BAND

    @property
    def why(self) -> str:
        return explain(self.plan)

    @property
    def pinned(self) -> bool:
        return PINNED_LABEL in self.issue.labels

    @property
    def labels_agree(self) -> bool:
        """Whether the issue carries the labels of its level already (no label to write)."""
        return not (self.plan.add_labels or self.plan.remove_labels)

    def board_issue(self) -> BoardIssue:
        return BoardIssue(self.issue.key, self.plan.score, self.band, pinned=self.pinned)


def plan_for(issue: Issue, project: ProjectConfig, *, groups: Groups, config: ImpactConfig) -> Plan:
    """What triage decides for ``issue``: its reporter's groups read when a rule needs them, then
    ``decide``, the ask naming the impact field as the config does."""
    field_label = config.field.name or DEFAULT_FIELD_LABEL
    return decide(groups.fill(issue), project, field_label=field_label)


def judge(
    raw: Mapping[str, Any],
    project: ProjectConfig,
    *,
    field_id: str | None,
    groups: Groups,
    config: ImpactConfig,
    extra: Mapping[str, Any] | None = None,
) -> Judged:
    """Decide ``raw`` (an issue's JSON, with at least ``DECIDE_FIELDS``) as triage would;
    ``extra`` is kept in the ``Judged``."""
    issue = issue_from_json(raw, impact_field_id=field_id)
    return Judged(issue, plan_for(issue, project, groups=groups, config=config), extra or {})


def fields_to_read(field_id: str | None) -> tuple[str, ...]:
    return DECIDE_FIELDS + ((field_id,) if field_id else ())
