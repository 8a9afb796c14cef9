"""The worker's job for one delivery: load the issue, decide, carry the plan out.

Everything that talks to Jira goes through the ``Jira`` object passed in; the decision itself is
``impact.decide.decide``, pure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from connector.protocol import Call, Jira
from impact.decide import DEFAULT_FIELD_LABEL, decide
from impact.events import WebhookEvent, should_triage
from impact.model import ImpactConfig, Issue, Plan, ProjectConfig
from impact.snapshot import issue_from_json
from pipeline.ranking import place

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: str  # "done" | "ignored"
    reason: str | None = None  # why it was ignored
    plan: Plan | None = None
    calls: tuple[Call, ...] = ()


def triage(
    event: WebhookEvent, *, jira: Jira, config: ImpactConfig, refresh: bool = False
) -> Outcome:
    """Triage the issue an event is about. ``refresh`` re-reads the issue from Jira instead of
    trusting the payload (for retried or late deliveries, whose payload may be stale)."""
    projects = [p.key for p in config.projects]
    actor_check = jira.service_account() if event.name == "jira:issue_updated" else None
    reason = should_triage(event, service_account=actor_check, projects=projects)
    if reason is not None:
        return Outcome("ignored", reason=reason)
    assert event.issue_key is not None and event.project_key is not None  # should_triage checked
    project = config.for_project(event.project_key)
    assert project is not None

    field_id = jira.field_id()
    if field_id is None:
        log.warning(
            "impact field %s not found in Jira; every issue counts as missing",
            config.field.describe(),
        )
    raw = jira.get_issue(event.issue_key) if refresh or event.issue is None else event.issue
    issue = issue_from_json(raw, impact_field_id=field_id)
    plan = plan_for(issue, project, jira=jira, config=config)
    for note in plan.notes:
        log.warning("%s", note)
    calls = carry_out(plan, project, jira=jira)
    log.debug("triaged %s", plan.summary())  # the worker's line for the delivery says it
    return Outcome("done", plan=plan, calls=calls)


def plan_for(issue: Issue, project: ProjectConfig, *, jira: Jira, config: ImpactConfig) -> Plan:
    """What triage does to ``issue``: its reporter's groups read from Jira when a rule needs
    them, then ``decide``, the ask naming the impact field as the config does."""
    issue = _with_reporter_groups(issue, jira, config)
    return decide(issue, project, field_label=config.field.name or DEFAULT_FIELD_LABEL)


def carry_out(plan: Plan, project: ProjectConfig, *, jira: Jira) -> tuple[Call, ...]:
    """Carry ``plan`` out and, when the issue entered a band, put it at the bottom of that band
    on the board; the calls made. Raises the ``JiraError`` of the edit (placing only logs)."""
    calls = jira.apply_plan(plan)
    if plan.rank is not None:
        calls += place(plan, project, jira)
    return calls


def _with_reporter_groups(issue: Issue, jira: Jira, config: ImpactConfig) -> Issue:
    """Fill the reporter's groups, only when a rule needs them (it costs a Jira call)."""
    if issue.reporter is None or issue.reporter.groups:
        return issue
    if not any(rule.reporter_groups for rule in config.rules):
        return issue
    groups = jira.user_groups(issue.reporter)
    return replace(issue, reporter=replace(issue.reporter, groups=groups))
