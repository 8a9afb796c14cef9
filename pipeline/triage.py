"""The worker's job for one delivery: load the issue, decide, carry the plan out.

Everything that talks to Jira goes through the ``Jira`` object passed in; the decision itself is
``impact.decide.decide``, pure. A creation delivery carries the whole issue, so triaging it reads
nothing; the issue is read only when its body cannot be trusted (``refresh``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from connector.protocol import Call, Jira
from impact.events import WebhookEvent, should_triage
from impact.model import ImpactConfig, Plan, ProjectConfig
from impact.ranking import Pending
from impact.snapshot import issue_from_json
from pipeline.judge import Groups, plan_for
from pipeline.placements import Placements
from pipeline.ranking import ranked_board

log = logging.getLogger(__name__)

CREATED = "jira:issue_created"


@dataclass(frozen=True)
class Outcome:
    status: str  # "done" | "ignored"
    reason: str | None = None  # why it was ignored
    plan: Plan | None = None
    calls: tuple[Call, ...] = ()


def triage(
    event: WebhookEvent,
    *,
    jira: Jira,
    config: ImpactConfig,
    placements: Placements,
    refresh: bool = False,
    first_attempt: bool = True,
) -> Outcome:
    """Triage the issue an event is about. ``refresh`` re-reads the issue from Jira instead of
    trusting the payload (a late or out-of-order delivery, whose payload may be stale).

    Nothing could have asked for this issue's impact before the first attempt at its creation
    delivery, read from its own body, so only other deliveries look for an earlier ask."""
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
    plan = plan_for(issue, project, groups=Groups(jira, config), config=config)
    for note in plan.notes:
        log.warning("%s", note)
    asked_maybe = refresh or not first_attempt or event.name != CREATED
    calls = carry_out(plan, project, jira=jira, placements=placements, may_have_asked=asked_maybe)
    log.debug("triaged %s", plan.summary())  # the worker's line for the delivery says it
    return Outcome("done", plan=plan, calls=calls)


def carry_out(
    plan: Plan,
    project: ProjectConfig,
    *,
    jira: Jira,
    placements: Placements,
    may_have_asked: bool = True,
) -> tuple[Call, ...]:
    """Carry ``plan`` out; the calls made. Raises the ``JiraError`` of the edit.

    An issue that enters a band on a ranked board is recorded as waiting to be placed first,
    before its labels are written: an issue labelled for a band but not yet placed must never
    look settled to a placement run (``pipeline.placements``)."""
    board = ranked_board(project)
    if plan.rank is not None and board is not None:
        placements.wait(board, Pending(plan.issue_key, plan.rank.score, plan.rank.band))
    return jira.apply_plan(plan, may_have_asked=may_have_asked)
