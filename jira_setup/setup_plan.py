"""What ``jira-impact setup`` would do to a Jira site: a pure function of what Jira answered
(``SiteFacts``) and the config.

``plan_setup`` returns one ``Item`` per thing looked at, in the order an admin would do them by
hand: the field, its context, its options, the screens of each project, the webhook, then the
boards and the service account's permissions (judged by ``jira_setup.check``). An item is
``ok`` (already as it should be), a ``change`` the command can make (it carries the write), a
``manual`` step it cannot make (what to do, and who can), or a ``note``.

A change may name something that does not exist yet (the field it creates, the context it
creates): its id is then None and it is not ``ready``; ``jira_setup.setup`` carries out the
ready changes, reads Jira again and plans again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from connector.admin import AdminWebhook, WebhookApi
from connector.field_admin import (
    CREATE,
    CUSTOM,
    DEFAULT_TYPES,
    EDIT,
    FieldContext,
    FieldOption,
    Screen,
    ScreenUse,
)
from impact.model import ImpactConfig
from jira_setup.check import (
    RECEIVER_PATH,
    REGISTER_HINT,
    Finding,
    covers,
    delivery_problem,
    one_line,
    quoted,
    redact_url,
    webhook_findings,
)
from jira_setup.credential import WEBHOOK_NOTE
from jira_setup.webhook import DEFAULT_WEBHOOK_NAME, same_target
from service.settings import Settings

# Custom field types whose value is one or more options: the product reads them all.
OPTION_FIELD_TYPES = frozenset(CUSTOM + t for t in ("select", "multiselect", "radiobuttons"))
JIRA_ADMIN = "a Jira administrator"
FIELD_PAGE = "Settings > Issues > Custom fields > {0} > Contexts and default value"
DC_FIELD_PAGE = "Administration > Issues > Custom fields, the field's menu > {0}"
CONTEXT_DESCRIPTION = "Made by jira-impact setup for the projects in its config"
SETUP_HINT = (
    f"register it: run jira-impact setup --url https://<this service>{RECEIVER_PATH} --apply"
)
HOOK_FIX = (
    "edit it in Jira (Settings > System > WebHooks): enable it, tick Issue created and updated, "
    "and name every configured project in its JQL filter"
)


class Status(StrEnum):
    OK = "ok"
    CHANGE = "change"
    MANUAL = "manual"
    NOTE = "note"


# ---------------------------------------------------------------------------------------------
# The changes setup makes


@dataclass(frozen=True)
class CreateField:
    name: str


@dataclass(frozen=True)
class CreateContext:
    field_id: str
    name: str
    project_ids: tuple[str, ...]


@dataclass(frozen=True)
class AssignProjects:
    field_id: str
    context_id: str
    project_ids: tuple[str, ...]


@dataclass(frozen=True)
class AddOptions:
    field_id: str | None  # None: the field this run creates
    context_id: str | None  # None: the context this run creates, or Jira gives the new field
    values: tuple[str, ...]


@dataclass(frozen=True)
class AddToScreen:
    field_id: str | None  # None: the field this run creates
    screen_id: str
    tab_id: str


@dataclass(frozen=True)
class RegisterWebhook:
    name: str
    url: str  # may carry ?token=…: shown only through redact_url
    jql: str


Change = CreateField | CreateContext | AssignProjects | AddOptions | AddToScreen | RegisterWebhook


def ready(change: Change) -> bool:
    """Whether everything the change names exists, so that it can be made now."""
    if isinstance(change, AddOptions):
        return change.field_id is not None and change.context_id is not None
    if isinstance(change, AddToScreen):
        return change.field_id is not None
    return True


@dataclass(frozen=True)
class Item:
    status: Status
    subject: str  # "field", "field options", "screen 10000", "webhook", "project SHOP"
    message: str
    fix: str | None = None  # a manual step: what to do
    who: str | None = None  # a manual step: who can do it
    change: Change | None = None

    def line(self) -> str:
        tag = {
            Status.OK: "ok",
            Status.CHANGE: "to do",
            Status.MANUAL: "by hand",
            Status.NOTE: "note",
        }[self.status]
        text = f"{tag:<8}{self.subject}: {self.message}"
        if self.fix:
            text += f" — {self.fix}"
        if self.who:
            text += f" ({self.who} can)"
        return one_line(text)


@dataclass(frozen=True)
class SetupPlan:
    items: tuple[Item, ...]

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(item.change for item in self.items if item.change is not None)

    def of(self, status: Status) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.status is status)


# ---------------------------------------------------------------------------------------------
# What Jira answered


@dataclass(frozen=True)
class FoundField:
    id: str
    name: str
    type: str  # the custom type key (schema.custom); "" for a system field


@dataclass(frozen=True)
class ProjectFacts:
    key: str
    id: str | None  # None: no such project, or the account may not browse it
    issue_types: tuple[tuple[str, str], ...] = ()  # (id, name)
    # Cloud: the issue type screen scheme's name (None: Jira lists none) and its screens
    scheme: str | None = None
    screen_uses: tuple[ScreenUse, ...] = ()
    # Data Center: the ids of the issue types whose create screen shows the field, and the
    # options it offers there
    create_screens_showing: tuple[str, ...] = ()
    create_screen_options: tuple[str, ...] = ()

    def type_name(self, type_id: str) -> str:
        return dict(self.issue_types).get(type_id, type_id)


@dataclass(frozen=True)
class SiteFacts:
    cloud: bool
    field: FoundField | None  # None: no field has the configured name (or id)
    projects: tuple[ProjectFacts, ...]
    contexts: tuple[FieldContext, ...] = ()  # Cloud
    options: tuple[tuple[str, tuple[FieldOption, ...]], ...] = ()  # Cloud: by context id
    screens: tuple[Screen, ...] = ()  # Cloud: the projects' create and edit screens
    webhooks: tuple[AdminWebhook, ...] = ()
    # False with a scoped token or OAuth: the admin webhook API is not offered to them
    webhooks_readable: bool = True
    checks: tuple[Finding, ...] = ()  # boards and permissions (jira_setup.check)
    url: str | None = None  # the receiver URL to register (with ?token= where needed)
    jql: str = ""
    webhook_api: WebhookApi = WebhookApi.LEGACY  # Data Center 10 moved the webhook API


# ---------------------------------------------------------------------------------------------
# The plan


def plan_setup(facts: SiteFacts, config: ImpactConfig, settings: Settings) -> SetupPlan:
    items: list[Item] = []
    projects = [p for p in facts.projects if p.id is not None]
    items += [
        Item(
            Status.MANUAL,
            f"project {p.key}",
            "not found, or the service account may not browse it",
            f"correct the key in {config.source}, or grant the account Browse projects",
            JIRA_ADMIN,
        )
        for p in facts.projects
        if p.id is None
    ]
    field_items, field_id = _field_items(facts, config)
    items += field_items
    if field_items[-1].status is not Status.MANUAL:
        values = tuple(v for level in config.levels for v in level.values)
        if facts.cloud:
            context_items, context_ids = _context_items(facts, field_id, projects, config)
            items += context_items
            items += _option_items(facts, field_id, context_ids, values, config)
            items += _screen_items(facts, field_id, projects)
        else:
            items += _dc_items(facts, projects, values, config)
    items += _webhook_items(facts, settings)
    items += [_checked(finding) for finding in facts.checks]
    return SetupPlan(tuple(items))


def _field_items(facts: SiteFacts, config: ImpactConfig) -> tuple[list[Item], str | None]:
    """The field's item(s), and its id (None when this run creates it)."""
    wanted = config.field
    found = facts.field
    if found is None and wanted.id:
        return [
            Item(
                Status.MANUAL,
                "field",
                f"Jira has no field {wanted.id}, and setup creates fields by name only",
                f'correct [field] id in {config.source}, or give name = "…" instead',
            )
        ], None
    if found is None:
        return [
            Item(
                Status.CHANGE,
                "field",
                f"create {wanted.name!r}, a select list (single choice): no Jira field has that "
                "name (Jira gives a new field a global context, which covers every project)",
                change=CreateField(str(wanted.name)),
            )
        ], None
    if found.type not in OPTION_FIELD_TYPES:
        return [
            Item(
                Status.MANUAL,
                "field",
                f"{found.name!r} is {found.id}, {_type_name(found.type)} field, not a select list",
                f"name a select list in [field] of {config.source}, or rename that field in Jira "
                "so that setup can create the select list",
                JIRA_ADMIN,
            )
        ], None
    return [Item(Status.OK, "field", f"{found.name!r} is {found.id}")], found.id


def _type_name(type_key: str) -> str:
    name = type_key.rsplit(":", 1)[-1] if type_key else "system"
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def _context_items(
    facts: SiteFacts, field_id: str | None, projects: Sequence[ProjectFacts], config: ImpactConfig
) -> tuple[list[Item], list[str | None]]:
    """Whether the field's contexts cover the projects; and the ids of the contexts whose
    options matter (None: one this run creates, or Jira gives the new field)."""
    if field_id is None:
        return [], [None]
    covering = _covering(facts.contexts, projects)
    uncovered = [p for p in projects if p.key not in covering]
    used = {c.id: c for c in covering.values()}
    items = [
        Item(Status.OK, "field context", f"{_describe_context(c)} covers {_keys(projects, c)}")
        for c in used.values()
    ]
    if not uncovered:
        return items, list(used)
    ids = tuple(str(p.id) for p in uncovered)
    keys = ", ".join(p.key for p in uncovered)
    if used:  # widen a context that already serves a configured project: same options there
        context = next(iter(used.values()))
        items.append(
            Item(
                Status.CHANGE,
                "field context",
                f"add {keys} to {_describe_context(context)}: the field shows in no context of "
                f"{'that project' if len(uncovered) == 1 else 'those projects'}",
                change=AssignProjects(field_id, context.id, ids),
            )
        )
        return items, list(used)
    name = f"{config.field.name or field_id}: {keys}"
    items.append(
        Item(
            Status.CHANGE,
            "field context",
            f"create context {name!r} for {keys}: the field shows in none of their contexts",
            change=CreateContext(field_id, name, ids),
        )
    )
    return items, [None]


def _covering(
    contexts: Iterable[FieldContext], projects: Iterable[ProjectFacts]
) -> dict[str, FieldContext]:
    """The context that applies in each project: its own, else the global one."""
    found: dict[str, FieldContext] = {}
    everywhere = [c for c in contexts if c.is_global]
    for project in projects:
        applying = [c for c in contexts if project.id in c.project_ids] + everywhere
        if applying:
            found[project.key] = applying[0]
    return found


def _describe_context(context: FieldContext) -> str:
    kind = "global" if context.is_global else "projects only"
    return f"context {context.name!r} ({context.id}, {kind})"


def _keys(projects: Sequence[ProjectFacts], context: FieldContext) -> str:
    if context.is_global:
        return "every project"
    return ", ".join(p.key for p in projects if p.id in context.project_ids)


def _option_items(
    facts: SiteFacts,
    field_id: str | None,
    context_ids: Sequence[str | None],
    values: Sequence[str],
    config: ImpactConfig,
) -> list[Item]:
    items: list[Item] = []
    options = dict(facts.options)
    for context_id in context_ids:
        present = options.get(context_id, ()) if context_id else ()
        if context_id is not None:
            where = f"context {context_id}"
        else:
            where = "the new field's context" if field_id is None else "the new context"
        enabled = {o.value for o in present if not o.disabled}
        disabled = [v for v in values if v in {o.value for o in present if o.disabled}]
        missing = tuple(v for v in values if v not in enabled and v not in disabled)
        if missing:
            items.append(
                Item(
                    Status.CHANGE,
                    "field options",
                    f"add {quoted(missing)} to {where}: {_levels_of(missing, config)}",
                    change=AddOptions(field_id, context_id, missing),
                )
            )
        if disabled:
            them = "it" if len(disabled) == 1 else "them"
            items.append(
                Item(
                    Status.MANUAL,
                    "field options",
                    f"{quoted(disabled)} {_is(disabled)} disabled in {where}, so nobody can "
                    f"pick {them}",
                    f"enable {them} ({FIELD_PAGE.format(config.field.describe())} > Edit options)",
                    JIRA_ADMIN,
                )
            )
        unmapped = [o.value for o in present if not o.disabled and o.value not in values]
        if unmapped:
            items.append(_unmapped_note(unmapped, where, config))
        if not missing and not disabled:
            items.append(
                Item(Status.OK, "field options", f"{where} has an option for every level's values")
            )
    return items


def _levels_of(values: Sequence[str], config: ImpactConfig) -> str:
    names = [level.name for level in config.levels if set(level.values) & set(values)]
    plural = "s" if len(names) > 1 else ""
    return f"the config lists {'it' if len(values) == 1 else 'them'} for level{plural} " + (
        ", ".join(names)
    )


def _unmapped_note(unmapped: Sequence[str], where: str, config: ImpactConfig) -> Item:
    one = len(unmapped) == 1
    it = "it" if one else "them"
    return Item(
        Status.NOTE,
        "field options",
        f"{quoted(unmapped)} in {where} map{'s' if one else ''} to no level, so issues with "
        f"{it} count as missing; left as {'it is' if one else 'they are'} (add {it} to a level's "
        f"values in {config.source}, or disable {it} in Jira)",
    )


def _screen_items(
    facts: SiteFacts, field_id: str | None, projects: Sequence[ProjectFacts]
) -> list[Item]:
    items: list[Item] = []
    uses: dict[str, list[tuple[ProjectFacts, ScreenUse]]] = {}
    for project in projects:
        if project.scheme is None:
            items.append(
                Item(
                    Status.MANUAL,
                    f"screens of {project.key}",
                    "Jira lists no issue type screen scheme for it (a team-managed project?)",
                    "add the field to each issue type's layout (Project settings > Issue types)",
                    f"{project.key}'s project administrators",
                )
            )
        for use in project.screen_uses:
            uses.setdefault(use.screen_id, []).append((project, use))
    screens = {s.id: s for s in facts.screens}
    for screen_id, used_by in uses.items():
        screen = screens.get(screen_id, Screen(screen_id, "", ()))
        subject = f"screen {screen.name!r} ({screen_id})" if screen.name else f"screen {screen_id}"
        purpose = _purpose(used_by)
        if field_id is not None and screen.shows(field_id):
            items.append(Item(Status.OK, subject, f"shows the field; {purpose}"))
        elif not screen.tabs:
            items.append(
                Item(
                    Status.MANUAL,
                    subject,
                    f"it has no tab to put the field on; {purpose}",
                    "add the field to it (Settings > Issues > Screens)",
                    JIRA_ADMIN,
                )
            )
        else:
            tab = screen.tabs[0]
            items.append(
                Item(
                    Status.CHANGE,
                    subject,
                    f"add the field to its tab {tab.name!r}; {purpose}",
                    change=AddToScreen(field_id, screen_id, tab.id),
                )
            )
    return items


def _purpose(used_by: Sequence[tuple[ProjectFacts, ScreenUse]]) -> str:
    """What a screen is for: "SHOP creates and edits issues with it", with the issue types
    where the scheme uses it for some types only."""
    parts = []
    for project in dict.fromkeys(p for p, _ in used_by):
        mine = [use for p, use in used_by if p == project]
        verbs = []
        for operation, verb in ((CREATE, "creates"), (EDIT, "edits")):
            types = [t for use in mine if use.operation == operation for t in use.issue_types]
            if DEFAULT_TYPES in types:
                verbs.append(verb)
            elif types:
                verbs.append(f"{verb} {', '.join(project.type_name(t) for t in types)}")
        parts.append(f"{project.key} {' and '.join(verbs)} issues with it")
    return "; ".join(parts)


def _dc_items(
    facts: SiteFacts, projects: Sequence[ProjectFacts], values: Sequence[str], config: ImpactConfig
) -> list[Item]:
    """Data Center has no REST for contexts, options or screen schemes: what its create
    metadata shows is checked, and the rest is left to the admin, step by step."""
    items: list[Item] = []
    for project in projects:
        every = {t for t, _ in project.issue_types}
        showing = set(project.create_screens_showing)
        subject = f"screens of {project.key}"
        if facts.field is not None and showing and showing >= every:
            items.append(
                Item(
                    Status.OK,
                    subject,
                    "every create screen shows the field, so its context covers the project "
                    "(Data Center lists no edit screens through REST: set the field on an issue "
                    "to check those)",
                )
            )
            continue
        lacking = ", ".join(project.type_name(t) for t in sorted(every - showing))
        which = (
            f"the create screens of {lacking} do not show the field"
            if showing
            else "no create screen shows the field"
        )
        items.append(
            Item(
                Status.MANUAL,
                subject,
                f"{which} (Data Center has no REST API to put it there)",
                f"put it on {project.key}'s create and edit screens "
                f"({DC_FIELD_PAGE.format('Associate to screens')}) and make sure its context "
                f"includes {project.key} (… > Configure)",
                JIRA_ADMIN,
            )
        )
    offered = list(dict.fromkeys(o for p in projects for o in p.create_screen_options))
    seen = any(p.create_screens_showing for p in projects) and facts.field is not None
    missing = tuple(v for v in values if v not in offered) if seen else tuple(values)
    if missing:
        unknown = "" if seen else "; it may have them, but no create screen shows it yet"
        items.append(
            Item(
                Status.MANUAL,
                "field options",
                f"the field needs {quoted(missing)}: {_levels_of(missing, config)} (Data Center "
                f"has no REST API to add options{unknown})",
                f"add them ({DC_FIELD_PAGE.format('Configure > Edit Options')})",
                JIRA_ADMIN,
            )
        )
    elif seen:
        items.append(
            Item(Status.OK, "field options", "there is an option for every level's values")
        )
    unmapped = [v for v in offered if v not in values]
    if unmapped:
        items.append(_unmapped_note(unmapped, "the create screens", config))
    return items


def _webhook_items(facts: SiteFacts, settings: Settings) -> list[Item]:
    if not facts.webhooks_readable:  # by a Jira administrator (jira_setup.credential)
        status = Status.NOTE if facts.url is None else Status.MANUAL
        return [Item(status, "webhook", WEBHOOK_NOTE, None, JIRA_ADMIN)]
    keys = [p.key for p in facts.projects if p.id is not None]
    if facts.url is None:
        # without --url there is nothing to register here: the missing webhook is the next step
        return [
            Item(Status.NOTE, f.subject, f.message, SETUP_HINT)
            if f.fix == REGISTER_HINT
            else _checked(f)
            for f in webhook_findings(facts.webhooks, keys, settings)
        ]
    same = [hook for hook in facts.webhooks if same_target(hook.url, facts.url)]
    if not same:
        how = "signed" if settings.webhook_secret else "unsigned"
        if not settings.webhook_secret and settings.webhook_token:
            how = "its URL carrying the token"
        if facts.webhook_api is WebhookApi.DC10:
            how += ", through Data Center 10's webhook API (then read back to confirm the filter)"
        return [
            Item(
                Status.CHANGE,
                "webhook",
                f"register {DEFAULT_WEBHOOK_NAME!r} -> {redact_url(facts.url)} for issue created "
                f"and updated events of {facts.jql!r}, {how}",
                change=RegisterWebhook(DEFAULT_WEBHOOK_NAME, facts.url, facts.jql),
            )
        ]
    hook = same[0]
    items = [Item(Status.OK, "webhook", f"{hook.name!r} sends to {redact_url(hook.url)} already")]
    left_out = [key for key in keys if not covers(hook, key)]
    if left_out:
        why = (
            "is disabled"
            if not hook.enabled
            else (f"does not send the issue created and updated events of {', '.join(left_out)}")
        )
        items.append(Item(Status.MANUAL, "webhook", f"{hook.name!r} {why}", HOOK_FIX, JIRA_ADMIN))
    problem = delivery_problem(hook, settings)
    if problem is not None:
        said, fix = problem
        items.append(Item(Status.MANUAL, "webhook", f"{hook.name!r}: {said}", fix))
    return items


# Who can put right what jira_setup.check finds, by the subject's first word.
_WHO = {
    "project": "a Jira administrator, or the project's administrators",
    "board": "the board's administrators, or the owner of its filter",
    "webhook": JIRA_ADMIN,
}


def _checked(finding: Finding) -> Item:
    if finding.ok:
        return Item(Status.OK, finding.subject, finding.message)
    who = _WHO.get(finding.subject.split()[0], JIRA_ADMIN)
    return Item(Status.MANUAL, finding.subject, finding.message, finding.fix, who)


def _is(values: Sequence[str]) -> str:
    return "is" if len(values) == 1 else "are"
