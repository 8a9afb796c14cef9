"""``jira-impact check`` and the admin page: is the live Jira set up the way the config says?

``run_checks`` asks Jira (through ``connector.admin.JiraAdmin``) and returns one ``Finding`` per
thing checked, each failed one saying how to fix it: the connection and the service account, the
impact field and how its options map to levels, each configured project (it exists, the account
holds the permissions it needs), each board (its filter is ordered by Rank) and the admin
webhook. The judgements are pure functions of what Jira answered, tested with plain data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

from connector.admin import WEBHOOK_EVENTS, AdminWebhook, JiraAdmin
from connector.client import JiraConnector
from connector.errors import (
    JiraAuthError,
    JiraError,
    JiraForbiddenError,
    JiraNotFoundError,
    JiraUnavailableError,
)
from connector.protocol import API, BoardSetup
from impact.model import ImpactConfig, Level, Person, ProjectSettings, RankMode
from jira_setup.credential import WEBHOOK_NOTE, credential_findings
from jira_setup.findings import Finding, one_line
from service.settings import Settings

T = TypeVar("T")
RECEIVER_PATH = "/webhooks/jira"
PERMISSION_NAMES = {
    "BROWSE_PROJECTS": "Browse projects",
    "EDIT_ISSUES": "Edit issues",
    "ADD_COMMENTS": "Add comments",
    "SCHEDULE_ISSUES": "Schedule issues",
}
SETUP_APPLY = "jira-impact setup --apply"
REGISTER_HINT = f"jira-impact setup --url https://<this service>{RECEIVER_PATH} --apply"
WEBHOOK_FIX = (
    "in Jira (Settings > System > WebHooks) enable the webhook, tick Issue created and updated, "
    "and name every configured project in its JQL filter; or jira-impact webhook register "
    "--url https://<this service>" + RECEIVER_PATH
)


# ---------------------------------------------------------------------------------------------
# Pure judgements


def unmapped_options(options: Iterable[str], levels: Sequence[Level]) -> tuple[str, ...]:
    """The field's options that no level lists among its ``values``."""
    known = {value for level in levels for value in level.values}
    return tuple(option for option in options if option not in known)


def unreached_levels(options: Iterable[str], levels: Sequence[Level]) -> tuple[Level, ...]:
    """The levels none of whose ``values`` is an option of the field: nobody can pick them."""
    present = set(options)
    return tuple(level for level in levels if not present & set(level.values))


def option_findings(
    options: Sequence[str], levels: Sequence[Level], *, field: str, source: str
) -> list[Finding]:
    """How the field's options map to levels: one finding for the options no level lists, one
    for the levels no option reaches, or one saying all is well."""
    if not options:
        return [
            Finding(
                False,
                "field options",
                f"the field {field} has no options that Jira shows the service account",
                f"run {SETUP_APPLY} (it adds an option per level and puts the field on the "
                "projects' screens), or do it in Jira (Settings > Issues > Custom fields > "
                "Contexts and default value)",
            )
        ]
    found = []
    unmapped = unmapped_options(options, levels)
    if unmapped:
        found.append(
            Finding(
                False,
                "field options",
                f"{quoted(unmapped)} map{'s' if len(unmapped) == 1 else ''} to no level: issues "
                "with it count as missing",
                f"add {'it' if len(unmapped) == 1 else 'each'} to the values of a level in "
                f"{source}, or disable the option in Jira",
            )
        )
    unreached = unreached_levels(options, levels)
    if unreached:
        listed = ", ".join(f"{level.name} ({quoted(level.values)})" for level in unreached)
        found.append(
            Finding(
                False,
                "field options",
                f"no option of the field reaches level{'s' if len(unreached) > 1 else ''} {listed}",
                f"run {SETUP_APPLY} to add the option, or correct the level's values in "
                f"{source} (values must match the option text exactly)",
            )
        )
    if not found:
        found.append(
            Finding(
                True,
                "field options",
                f"each of the {len(options)} options maps to a level, and every level has one",
            )
        )
    return found


def required_permissions(project: ProjectSettings, config: ImpactConfig) -> tuple[str, ...]:
    """What the service account needs in a project: browse and edit always, add comments when
    the missing-impact ask is on, schedule issues when the project's board is ranked."""
    needed = ["BROWSE_PROJECTS", "EDIT_ISSUES"]
    if config.missing.comment:
        needed.append("ADD_COMMENTS")
    if project.rank is not RankMode.OFF and project.board is not None:
        needed.append("SCHEDULE_ISSUES")
    return tuple(needed)


def permission_finding(key: str, held: Mapping[str, bool], needed: Sequence[str]) -> Finding:
    missing = [PERMISSION_NAMES.get(p, p) for p in needed if not held.get(p)]
    if missing:
        return Finding(
            False,
            f"project {key}",
            f"the service account lacks {', '.join(missing)}",
            f"grant it in {key}'s permission scheme (Project settings > Permissions), "
            "e.g. through a project role",
        )
    names = ", ".join(PERMISSION_NAMES.get(p, p) for p in needed)
    return Finding(True, f"project {key}", f"exists; the service account holds {names}")


def board_finding(key: str, setup: BoardSetup) -> Finding:
    subject = f"board {setup.board_id}"
    if not setup.ordered_by_rank:
        return Finding(
            False,
            subject,
            f"{key}'s board filter {setup.filter_id} is not ordered by Rank "
            f"({setup.filter_jql!r}), so it cannot be ranked",
            "end the filter's query with ORDER BY Rank ASC (Board settings > General > "
            "Filter query)",
        )
    return Finding(True, subject, f"{key}'s board; its filter is ordered by Rank")


_PROJECT_CLAUSE = re.compile(
    r"""\bproject\s*(?:=|\bin\b)\s*(\([^)]*\)|"[^"]*"|'[^']*'|[^\s()]+)""", re.IGNORECASE
)


def projects_in_jql(jql: str) -> frozenset[str] | None:
    """The projects a webhook's JQL filter names in ``project = X`` / ``project in (X, Y)``
    clauses, upper-cased; None when it names none (an empty filter sends every issue)."""
    found: set[str] = set()
    for match in _PROJECT_CLAUSE.finditer(jql):
        values = match.group(1).strip("()")
        found |= {v.strip().strip("\"'").upper() for v in values.split(",") if v.strip()}
    return frozenset(found) if found else None


def is_receiver_url(url: str) -> bool:
    return urlsplit(url).path.rstrip("/").endswith(RECEIVER_PATH)


def covers(hook: AdminWebhook, project_key: str) -> bool:
    """Whether the webhook sends issue created and updated events of the project here."""
    named = projects_in_jql(hook.jql)
    return (
        hook.enabled
        and is_receiver_url(hook.url)
        and set(WEBHOOK_EVENTS) <= set(hook.events)
        and (named is None or project_key.upper() in named)
    )


def delivery_problem(hook: AdminWebhook, settings: Settings) -> tuple[str, str] | None:
    """(problem, fix) when the service would refuse this webhook's deliveries (see
    ``Receiver.authenticate``); None when it accepts them or Jira does not say if it signs."""
    has_token = "token" in parse_qs(urlsplit(hook.url).query)
    if has_token:
        if settings.webhook_token:
            return None
        return (
            "its URL carries a token but JIRA_WEBHOOK_TOKEN is not set here",
            "set JIRA_WEBHOOK_TOKEN to the token in the webhook's URL",
        )
    if hook.signed is True and not settings.webhook_secret:
        return (
            "Jira signs its deliveries but JIRA_WEBHOOK_SECRET is not set here",
            "set JIRA_WEBHOOK_SECRET to the webhook's secret",
        )
    if hook.signed is False and settings.webhook_secret:
        return (
            "it is not signed, so every delivery is refused (401)",
            "edit the webhook in Jira and set its secret to JIRA_WEBHOOK_SECRET's value",
        )
    if hook.signed is False and settings.webhook_token:
        return (
            "it is not signed and its URL has no ?token=, so every delivery is refused (401)",
            "add ?token=<JIRA_WEBHOOK_TOKEN> to the webhook's URL",
        )
    return None


def webhook_findings(
    hooks: Sequence[AdminWebhook], projects: Sequence[str], settings: Settings
) -> list[Finding]:
    """One finding per configured project: the webhook that sends its issues here, or why none
    does; plus one per such webhook whose deliveries the service would refuse."""
    ours = [hook for hook in hooks if is_receiver_url(hook.url)]
    if not ours:
        return [
            Finding(
                False,
                "webhook",
                f"no admin webhook sends to …{RECEIVER_PATH}, so nothing is triaged as it happens",
                REGISTER_HINT,
            )
        ]
    found: list[Finding] = []
    used: dict[str, AdminWebhook] = {}
    for key in projects:
        covering = [hook for hook in ours if covers(hook, key)]
        if covering:
            used.setdefault(covering[0].name + covering[0].url, covering[0])
            found.append(
                Finding(True, "webhook", f"{key}: sent by webhook {_describe_hook(covering[0])}")
            )
            continue
        found.append(Finding(False, "webhook", f"{key}: {_why_not(ours, key)}", WEBHOOK_FIX))
    for hook in used.values():
        problem = delivery_problem(hook, settings)
        if problem is not None:
            said, fix = problem
            found.append(Finding(False, "webhook", f"{_describe_hook(hook)}: {said}", fix))
    return found


def _why_not(hooks: Sequence[AdminWebhook], key: str) -> str:
    for hook in hooks:
        if not hook.enabled:
            return f"webhook {_describe_hook(hook)} is disabled"
        missing = [e for e in WEBHOOK_EVENTS if e not in hook.events]
        if missing:
            return f"webhook {_describe_hook(hook)} does not send {', '.join(missing)}"
    jqls = "; ".join(repr(hook.jql) for hook in hooks)
    return f"no webhook to …{RECEIVER_PATH} has a JQL filter that includes {key} ({jqls})"


def _describe_hook(hook: AdminWebhook) -> str:
    return f"{hook.name!r} ({redact_url(hook.url)})"


def redact_url(url: str) -> str:
    """The URL with the value of a ``token`` query parameter hidden."""
    return re.sub(r"([?&]token=)[^&#]*", r"\1***", url)


def quoted(values: Iterable[str]) -> str:
    return ", ".join(repr(v) for v in values)


# ---------------------------------------------------------------------------------------------
# The checks against Jira


def run_checks(settings: Settings, config: ImpactConfig, jira: JiraConnector) -> list[Finding]:
    """Check the live Jira against ``config``; every finding, in the order checked. Stops after
    the first finding when Jira cannot be reached or refuses the credentials."""
    admin = JiraAdmin(jira)
    # A check is of Jira now: nothing a long-lived connector kept (the admin pages' does) may
    # stand in for an answer, or a Jira that is down would still show the earlier reads as ok.
    jira.forget_fields()
    jira.forget_board_setups()
    try:
        jira.request("GET", f"{API}/serverInfo")  # answers now, or the check stops here
        me = jira.service_account()
        admin.is_cloud()
    except JiraError as exc:
        return [connection_finding(settings, exc)]
    found = [Finding(True, "jira", connection_line(settings, me, cloud=admin.is_cloud()))]
    found += credential_findings(settings, jira)
    keys = [p.key for p in config.projects]

    found += _field_findings(jira, admin, config, keys)
    found += project_findings(admin, jira, config)

    if jira.credential.gateway:
        found.append(Finding(True, "webhook", f"not checked: {WEBHOOK_NOTE}"))
        return found
    hooks = _checked(found, "webhook", admin.webhooks)
    if hooks is not None:
        found += webhook_findings(hooks, keys, settings)
    return found


def connection_line(settings: Settings, me: Person, *, cloud: bool) -> str:
    """Which Jira this is, where, as whom the product calls it, and with what credential."""
    from connector.credentials import DESCRIBED

    kind = "Jira Cloud" if cloud else "Jira Data Center"
    auth = settings.jira_auth
    credential = f"JIRA_AUTH={auth}: {DESCRIBED.get(auth, auth)}"
    who = display_name(me)
    if me.email and me.email != who:
        who += f" <{me.email}>"
    return one_line(f"{kind} at {settings.jira_url}, as {who}, with {credential}")


def project_findings(admin: JiraAdmin, jira: JiraConnector, config: ImpactConfig) -> list[Finding]:
    """Each configured project's permissions, then its board's filter, as ``check`` reports
    them (``setup`` reports them too)."""
    found = []
    for project in config.projects:
        found.append(check_project(admin, project, config))
        if project.board is not None:
            found.append(check_board(jira, project))
    return found


def _field_findings(
    jira: JiraConnector, admin: JiraAdmin, config: ImpactConfig, keys: Sequence[str]
) -> list[Finding]:
    field = config.field.describe()
    try:
        field_id = jira.field_id()
    except JiraError as exc:
        if exc.status is not None or exc.retryable:  # Jira failed, or did not answer
            return [_error_finding("field", exc)]
        # several fields share the name
        fix = f'give the field\'s id in {config.source}: [field] id = "customfield_NNNNN"'
        return [Finding(False, "field", str(exc), fix)]
    if field_id is None:
        return [
            Finding(
                False,
                "field",
                f"no Jira field {field}: every issue counts as missing",
                f"run {SETUP_APPLY}: it creates the field, its options, and puts it on the "
                f"projects' screens (or correct [field] in {config.source})",
            )
        ]
    found = [Finding(True, "field", f"{field} is {field_id}")]
    options = _checked(found, "field options", lambda: admin.field_options(field_id, keys))
    if options is not None:
        found += option_findings(options, config.levels, field=field, source=config.source)
    return found


def check_project(admin: JiraAdmin, project: ProjectSettings, config: ImpactConfig) -> Finding:
    """The project exists and the account holds the permissions it needs there."""
    subject = f"project {project.key}"
    try:
        if admin.project(project.key) is None:
            return Finding(
                False,
                subject,
                "not found, or the service account may not browse it",
                f"correct the key in {config.source}, or grant the account Browse projects",
            )
        held = admin.permissions(project.key, list(PERMISSION_NAMES))
    except JiraError as exc:
        return _error_finding(subject, exc)
    return permission_finding(project.key, held, required_permissions(project, config))


def check_board(jira: JiraConnector, project: ProjectSettings) -> Finding:
    """The project's board exists and its filter is ordered by Rank."""
    assert project.board is not None
    subject = f"board {project.board}"
    try:
        setup = jira.board_setup(project.board)
    except JiraNotFoundError:
        return Finding(
            False,
            subject,
            "not found, or the service account may not see it",
            f"set board = to the number in the board's URL for {project.key}, and share the "
            "board's filter with the account",
        )
    except JiraError as exc:
        return _error_finding(subject, exc)
    return board_finding(project.key, setup)


def _checked(found: list[Finding], subject: str, ask: Callable[[], T]) -> T | None:
    """``ask()``; on a Jira failure, None and a finding saying what Jira answered."""
    try:
        return ask()
    except JiraError as exc:
        found.append(_error_finding(subject, exc))
        return None


def _error_finding(subject: str, exc: JiraError) -> Finding:
    if isinstance(exc, JiraForbiddenError):
        fix = (
            "this needs Administer Jira: check it in Jira by hand, or run the check with an "
            "administrator's credentials"
            if subject == "webhook"
            else "grant the service account the permission Jira names"
        )
        return Finding(False, subject, f"Jira refused: {exc}", fix)
    return Finding(False, subject, f"could not check: {exc}", "run the check again")


def connection_finding(settings: Settings, exc: JiraError) -> Finding:
    """Why Jira could not be reached, or refused the credentials, and what to check."""
    if isinstance(exc, JiraAuthError):
        fix = {
            "pat": "check JIRA_PAT (a personal access token of the service account)",
            "scoped": "check JIRA_EMAIL and JIRA_API_TOKEN (a scoped API token of that service "
            "account: it works only through the API gateway, ATLASSIAN_API_URL), and that it "
            "holds read:jira-user; a classic API token needs JIRA_AUTH=basic",
            "oauth": "check JIRA_CLIENT_ID and JIRA_CLIENT_SECRET (the service account's OAuth "
            "2.0 credential) and ATLASSIAN_AUTH_URL",
        }.get(
            settings.jira_auth,
            "check JIRA_EMAIL and JIRA_API_TOKEN (an API token of that account; a service "
            "account's scoped token needs JIRA_AUTH=scoped)",
        )
        return Finding(False, "jira", f"Jira refused the credentials: {exc}", fix)
    if isinstance(exc, JiraUnavailableError):
        return Finding(
            False,
            "jira",
            f"no answer from {settings.jira_url}: {exc}",
            "check that Jira is up and that JIRA_URL is its address; nothing else was checked",
        )
    return Finding(False, "jira", f"{settings.jira_url}: {exc}", "check JIRA_URL")


def display_name(person: Person) -> str:
    return person.display_name or person.name or person.account_id or "the service account"
