"""``jira-impact setup``: read the Jira site, plan (``jira_setup.setup_plan``) and, with
``apply``, make the changes.

Reading makes GET requests only. Nothing is read or written before the account is known to hold
Administer Jira (``GET /mypermissions?permissions=ADMINISTER``). Applying makes the changes that
are ready, then reads and plans again for those that named what did not exist yet (the new
field, a new context), at most ``ROUNDS`` times; a run over a site set up already writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from connector.admin import enabled_options
from connector.client import JiraConnector, find_field
from connector.errors import JiraError, JiraForbiddenError
from connector.field_admin import ADMINISTER, FieldAdmin, FieldContext, FieldOption, Screen
from impact.model import ImpactConfig
from jira_setup.check import (
    connection_finding,
    connection_line,
    display_name,
    project_findings,
    quoted,
    redact_url,
)
from jira_setup.credential import credential_findings
from jira_setup.findings import Finding
from jira_setup.setup_plan import (
    CONTEXT_DESCRIPTION,
    JIRA_ADMIN,
    OPTION_FIELD_TYPES,
    AddOptions,
    AddToScreen,
    AssignProjects,
    Change,
    CreateContext,
    CreateField,
    FoundField,
    Item,
    ProjectFacts,
    RegisterWebhook,
    SetupPlan,
    SiteFacts,
    Status,
    plan_setup,
    ready,
)
from jira_setup.webhook import (
    by_hand,
    delivery_url,
    filter_problem,
    projects_jql,
    with_url_variables,
)
from service.settings import Settings

ROUNDS = 3
FIELD_DESCRIPTION = "How this issue touches paying customers (read by jira-customer-impact)"
NOT_ADMIN = (
    "{who} does not hold Administer Jira, the global permission that setup needs to read and "
    "create custom fields, their contexts, options and screens, and admin webhooks"
)
ADMIN_FIX = (
    "grant it (Jira administration: System > Global permissions), or run setup once with a Jira "
    "administrator's credentials, or follow the manual steps in the README (Connecting your Jira)"
)


class SetupError(Exception):
    """Setup cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Done:
    item: Item  # the planned change
    made: str  # what Jira now has, e.g. "created 'External customer impact' as customfield_1"


@dataclass(frozen=True)
class SetupReport:
    connection: str  # "Jira Cloud at https://…, as Impact Bot, with JIRA_AUTH=basic: …"
    plan: SetupPlan  # the plan from what Jira had
    done: tuple[Done, ...] = ()
    final: SetupPlan | None = None  # after applying: the plan from what Jira has now
    failed: str | None = None  # why applying stopped early
    credential: tuple[Finding, ...] = ()  # its expiry, the scopes each feature lacks

    @property
    def left(self) -> SetupPlan:
        return self.final or self.plan


def plan_site(
    settings: Settings, config: ImpactConfig, jira: JiraConnector, *, url: str | None
) -> SetupReport:
    """The plan to set ``jira`` up for ``config`` (and the webhook to ``url``, the receiver's
    public address, when given), from GET requests only. Raises ``SetupError`` when Jira cannot
    be read or the account is not a Jira administrator."""
    admin = FieldAdmin(jira)
    try:
        me = jira.service_account()
        cloud = admin.is_cloud()
        if not admin.holds_global(ADMINISTER):
            who = f"the account {display_name(me)}"
            raise SetupError(f"{NOT_ADMIN.format(who=who)}. Fix: {ADMIN_FIX}")
    except JiraError as exc:
        finding = connection_finding(settings, exc)
        raise SetupError(f"{finding.message}. Fix: {finding.fix}") from exc
    credential = credential_findings(settings, jira)
    return SetupReport(
        connection_line(settings, me, cloud=cloud),
        _plan(admin, jira, config, settings, url),
        credential=tuple(credential),
    )


def apply_plan(
    report: SetupReport,
    settings: Settings,
    config: ImpactConfig,
    jira: JiraConnector,
    *,
    url: str | None,
    on_done: Callable[[Done], None] = lambda done: None,
) -> SetupReport:
    """Make the planned changes that are ready, read and plan again, and so on while changes
    wait for what was just made (at most ``ROUNDS`` times). The report says what was done and
    what is left; a refused change stops the run (``failed``)."""
    admin = FieldAdmin(jira)
    done: list[Done] = []
    held: list[Item] = []  # steps by hand that only the changes showed (a filter Jira dropped)
    current = report.plan
    for _ in range(ROUNDS):
        changes = [item for item in current.items if item.change and ready(item.change)]
        if not changes:
            break
        try:
            for item in changes:
                assert item.change is not None
                if isinstance(item.change, RegisterWebhook):
                    made, left = _register(admin, item.change, settings)
                    held += [left] if left else []
                else:
                    made = _make(admin, item.change, settings)
                done.append(Done(item, made))
                on_done(done[-1])
        except JiraError as exc:
            final = _with(current, held)
            return replace(report, done=tuple(done), final=final, failed=_refused(exc))
        current = _plan(admin, jira, config, settings, url)  # what is left, and what waited
    return replace(report, done=tuple(done), final=_with(current, held))


def _with(plan: SetupPlan, items: list[Item]) -> SetupPlan:
    return replace(plan, items=plan.items + tuple(items)) if items else plan


def _plan(
    admin: FieldAdmin,
    jira: JiraConnector,
    config: ImpactConfig,
    settings: Settings,
    url: str | None,
) -> SetupPlan:
    try:
        facts = read_site(admin, jira, config, settings, url)
    except JiraError as exc:
        raise SetupError(_refused(exc)) from exc
    return plan_setup(facts, config, settings)


def _refused(exc: JiraError) -> str:
    if isinstance(exc, JiraForbiddenError):
        return f"Jira refused: {exc}. This needs Administer Jira. Fix: {ADMIN_FIX}"
    return f"Jira failed: {exc}"


# ---------------------------------------------------------------------------------------------
# Reading


def read_site(
    admin: FieldAdmin,
    jira: JiraConnector,
    config: ImpactConfig,
    settings: Settings,
    url: str | None,
) -> SiteFacts:
    """What the plan needs of the site, read with GET requests only."""
    cloud = admin.is_cloud()
    fields = jira.fields()
    try:
        found = find_field(fields, config.field)
    except JiraError as exc:
        if exc.status is not None:
            raise
        raise SetupError(
            f'{exc}. Fix: in {config.source}, [field] id = "customfield_NNNNN"'
        ) from exc
    field = None
    if found is not None:
        raw = next(f for f in fields if f.get("id") == found.id)
        schema = raw.get("schema")
        custom = schema.get("custom") if isinstance(schema, Mapping) else None
        field = FoundField(found.id, str(raw.get("name") or ""), str(custom or ""))
    usable = field if field is not None and field.type in OPTION_FIELD_TYPES else None
    projects = tuple(
        _project_facts(admin, p.key, usable.id if usable else None, cloud=cloud)
        for p in config.projects
    )
    contexts: tuple[FieldContext, ...] = ()
    options: tuple[tuple[str, tuple[FieldOption, ...]], ...] = ()
    screens: tuple[Screen, ...] = ()
    if cloud:
        if usable is not None:
            contexts = admin.contexts(usable.id)
            options = tuple((c.id, admin.options(usable.id, c.id)) for c in contexts)
        ids = list(dict.fromkeys(u.screen_id for p in projects for u in p.screen_uses))
        names = admin.screen_names(ids) if ids else {}
        screens = tuple(admin.screen(i, names.get(i, "")) for i in ids)
    keys = [p.key for p in config.projects]
    checks = project_findings(admin, jira, config)
    api = admin.webhook_api()
    return SiteFacts(
        cloud=cloud,
        field=field,
        projects=projects,
        contexts=contexts,
        options=options,
        screens=screens,
        webhooks=() if jira.credential.gateway else admin.webhooks(),
        webhooks_readable=not jira.credential.gateway,
        checks=tuple(checks),
        url=with_url_variables(delivery_url(url, settings), api) if url else None,
        jql=projects_jql(keys),
        webhook_api=api,
    )


def _project_facts(
    admin: FieldAdmin, key: str, field_id: str | None, *, cloud: bool
) -> ProjectFacts:
    raw = admin.project(key)
    if raw is None or not str(raw.get("id") or "").isdigit():
        return ProjectFacts(key, None)
    project_id = str(raw["id"])
    types = raw.get("issueTypes")
    issue_types = tuple(
        (str(t["id"]), str(t.get("name") or t["id"]))
        for t in (types if isinstance(types, list) else [])
        if isinstance(t, Mapping) and t.get("id")
    )
    if cloud:
        found = admin.screen_uses(project_id)
        scheme, uses = found if found is not None else (None, ())
        return ProjectFacts(key, project_id, issue_types, scheme=scheme, screen_uses=uses)
    if field_id is None:
        return ProjectFacts(key, project_id, issue_types)
    entries = admin.createmeta_entries(field_id, key)
    offered: dict[str, None] = {}
    for entry in entries.values():
        allowed = entry.get("allowedValues") if entry else None
        offered.update(dict.fromkeys(enabled_options(allowed if isinstance(allowed, list) else [])))
    return ProjectFacts(
        key,
        project_id,
        issue_types,
        create_screens_showing=tuple(t for t, entry in entries.items() if entry is not None),
        create_screen_options=tuple(offered),
    )


# ---------------------------------------------------------------------------------------------
# Writing


def _make(admin: FieldAdmin, change: Change, settings: Settings) -> str:
    """Make one change; what Jira has now, in words."""
    if isinstance(change, CreateField):
        field_id = admin.create_field(change.name, FIELD_DESCRIPTION)
        return f"created {change.name!r} as {field_id}"
    if isinstance(change, CreateContext):
        made = admin.create_context(
            change.field_id, change.name, CONTEXT_DESCRIPTION, change.project_ids
        )
        return f"created context {change.name!r} ({made.id})"
    if isinstance(change, AssignProjects):
        admin.assign_projects(change.field_id, change.context_id, change.project_ids)
        return f"context {change.context_id} now covers projects {', '.join(change.project_ids)}"
    if isinstance(change, AddOptions):
        assert change.field_id is not None and change.context_id is not None
        added = admin.add_options(change.field_id, change.context_id, change.values)
        return f"added {quoted([o.value for o in added])} to context {change.context_id}"
    if isinstance(change, AddToScreen):
        assert change.field_id is not None
        admin.add_to_tab(change.screen_id, change.tab_id, change.field_id)
        return f"added {change.field_id} to its tab {change.tab_id}"
    raise TypeError(f"not a change _make makes: {change!r}")


def _register(
    admin: FieldAdmin, change: RegisterWebhook, settings: Settings
) -> tuple[str, Item | None]:
    """Register the webhook and read it back: what was done, and the step by hand when Jira
    does not show the JQL filter it was sent (or cannot be read)."""
    registered = admin.register_webhook(
        name=change.name, url=change.url, jql=change.jql, secret=settings.webhook_secret
    )
    made = registered.made
    said = f"registered {made.name!r} -> {redact_url(made.url)} for {change.jql!r}"
    problem = filter_problem(registered, change.jql)
    if problem is None:
        return f"{said}; Jira shows that filter when read back", None
    fix = by_hand(change.name, change.url, change.jql)
    return said, Item(Status.MANUAL, "webhook", f"{change.name!r} {problem}", fix, JIRA_ADMIN)
