"""The sandbox's state: accounts, projects, issues, boards, webhooks, custom fields and screens,
and the request log.

One re-entrant lock guards everything; views take it for the whole of an operation, so each
request sees and leaves a consistent state. Issues are stored in the JSON shape
``GET /rest/api/2/issue/{key}`` returns, so JQL and webhooks read them directly.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sandbox import catalog, jql
from sandbox.faults import Faults
from sandbox.limits import Limits

MAX_CALLS = 10_000  # the request log keeps this many, oldest dropped first
NOT_FOUND = "Issue does not exist or you do not have permission to see it."


def jira_time(stamp: datetime) -> str:
    """A timestamp as Jira writes it in issue JSON: ``2024-03-01T10:00:00.000+0000`` (UTC)."""
    stamp = stamp.astimezone(UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}+0000"


class Flavour(StrEnum):
    CLOUD = "cloud"
    DC = "dc"


CLOUD_VERSION = (1001, 0, 0)
DC_VERSION = (9, 12, 15)  # a Data Center 9 LTS; ``--jira-version 10.3.6`` plays Data Center 10
DC10 = 10  # Data Center 10 moved the admin webhooks to /rest/jira-webhook/1.0 (webhook_admin)


def parse_version(text: str) -> tuple[int, int, int]:
    """``"10.3.6"`` -> ``(10, 3, 6)``; ``ValueError`` for anything else."""
    parts = text.strip().split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"a Jira version is like 10.3.6, not {text!r}")
    numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
    return numbers[0], numbers[1], numbers[2]


class JiraApiError(Exception):
    """An answer in Jira's error shape: ``{"errorMessages": [...], "errors": {...}}``."""

    def __init__(
        self,
        status: int,
        *messages: str,
        errors: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status}: {'; '.join(messages) or errors}")
        self.status = status
        self.messages = list(messages)
        self.errors = dict(errors or {})
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"errorMessages": self.messages, "errors": self.errors}


@dataclass
class Account:
    name: str  # username on Data Center
    display_name: str
    email: str
    api_token: str
    pat: str
    groups: list[str]
    permissions: set[str]
    key: str = ""  # Data Center user key
    account_id: str = ""  # Cloud account id
    time_zone: str = "Europe/Lisbon"
    # A service account's credentials for the API gateway (sandbox/gateway.py): a scoped API
    # token and an OAuth client, both holding ``scopes``.
    scoped_token: str = ""
    client_id: str = ""
    client_secret: str = ""
    scopes: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        digest = hashlib.sha1(self.name.encode()).hexdigest()
        self.account_id = self.account_id or "5f" + digest[:22]

    def can(self, permission: str) -> bool:
        return permission in self.permissions


@dataclass
class Project:
    id: str
    key: str
    name: str
    components: list[tuple[str, str]]  # (id, name)
    next_number: int = 1


@dataclass
class FieldOption:
    id: str
    value: str
    disabled: bool = False


@dataclass
class FieldContext:
    """Which projects see a custom field, and the options it offers there."""

    id: str
    name: str
    project_ids: list[str]  # empty: a global context, for every project
    options: list[FieldOption] = field(default_factory=list)
    description: str = ""

    @property
    def is_global(self) -> bool:
        return not self.project_ids


@dataclass
class CustomField:
    id: str  # customfield_N
    name: str
    type: str  # its type key, e.g. catalog.SELECT_TYPE
    searcher: str | None
    description: str = ""
    contexts: list[FieldContext] = field(default_factory=list)


@dataclass
class ScreenTab:
    id: int
    name: str
    fields: list[str]  # field ids, in screen order


@dataclass
class Screen:
    id: int
    name: str
    tabs: list[ScreenTab]
    description: str = ""


@dataclass
class ScreenScheme:
    """The screens of the create, edit and view operations; ``default`` for those not set."""

    id: int
    name: str
    default: int
    create: int | None = None
    edit: int | None = None


@dataclass
class IssueTypeScreenScheme:
    """Which screen scheme each issue type of its projects uses."""

    id: int
    name: str
    items: dict[str, int]  # issue type id, or "default" for the others -> screen scheme id
    project_ids: list[str]


@dataclass
class Filter:
    id: int
    name: str
    jql: str
    owner: str  # account name


@dataclass
class Board:
    id: int
    name: str
    type: str  # "kanban" | "scrum"
    project: str  # project key
    filter_id: int


@dataclass
class Webhook:
    id: int
    name: str
    url: str
    events: list[str]
    jql: str  # "" when the webhook has no filter
    exclude_body: bool
    secret: str | None
    updated_by: str  # account name
    updated_ms: int
    query: Any = None  # the parsed jql, or None
    active: bool = True  # Data Center 10's ``active`` (sends nothing when False)
    description: str = ""
    created_ms: int = 0
    ssl_verification: bool = True


class JiraState:
    """Everything the fake Jira knows; build one per server (or per test). Bare, it starts
    empty: ``sandbox.seed.SandboxState`` starts from a seed's accounts, projects and issues."""

    def __init__(
        self,
        *,
        flavour: Flavour | str = Flavour.CLOUD,
        seed: str = "demo",
        base_url: str = "http://127.0.0.1",
        emit: Callable[[JiraState, dict[str, Any]], None] | None = None,
        with_field: bool = True,
        version: str | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.flavour = Flavour(flavour)
        if version is not None and self.flavour is Flavour.CLOUD:
            raise ValueError("a version is played on Data Center only; Cloud has none")
        self.version = parse_version(version) if version else self.default_version()
        self.seed_name = seed
        self.with_field = with_field  # whether the seed has the impact field
        self.base_url = base_url.rstrip("/")
        self.faults = Faults()
        self.limits = Limits()
        self._emit = emit  # set by the webhook dispatcher
        self._calls: list[dict[str, Any]] = []
        self._call_seq = 0
        self.reset()

    def default_version(self) -> tuple[int, int, int]:
        return CLOUD_VERSION if self.flavour is Flavour.CLOUD else DC_VERSION

    @property
    def dc10(self) -> bool:
        """Data Center 10 or later: the new webhook API, URL variables without ``$``."""
        return self.flavour is Flavour.DC and self.version[0] >= DC10

    # ---------------------------------------------------------------- lifecycle

    def reset(self, seed: str | None = None, *, with_field: bool | None = None) -> None:
        """Forget everything, then start again from ``seed`` (by default the same one), with or
        without the impact field (by default as before)."""
        with self.lock:
            self.seed_name = seed or self.seed_name
            self.with_field = self.with_field if with_field is None else with_field
            self._next_id = 10200
            self._next_admin_id = {"field": 10042, "context": 10142, "option": 10100}
            self.accounts: dict[str, Account] = {}
            self.projects: dict[str, Project] = {}
            self.issues: dict[str, dict[str, Any]] = {}  # key -> issue JSON
            self.comments: dict[str, list[dict[str, Any]]] = {}
            self.properties: dict[str, dict[str, Any]] = {}
            self.filters: dict[int, Filter] = {}
            self.boards: dict[int, Board] = {}
            self.webhooks: dict[int, Webhook] = {}
            # False: the new webhook API drops the JQL filter it is sent (control API), as Jira
            # 10 does with a 9.x body, to show what the product does when it cannot confirm it
            self.webhook_filters_kept = True
            self.custom_fields: dict[str, CustomField] = {}
            self.screens: dict[int, Screen] = {}
            self.screen_schemes: dict[int, ScreenScheme] = {}
            self.type_screen_schemes: dict[int, IssueTypeScreenScheme] = {}
            self._calls.clear()
            self.faults.clear()
            self.limits.clear()
            self.oauth_tokens: dict[str, tuple[str, float]] = {}  # token -> (account, expiry)
            self.token_seconds = 3600.0  # the lifetime of an OAuth token issued now
            self.populate(self.seed_name)

    def populate(self, seed: str) -> None:
        """Fill the state after a reset; a bare state stays empty."""

    def set_base_url(self, url: str) -> None:
        """Serve under ``url``; the stored ``self`` links change, so this re-seeds."""
        with self.lock:
            if url.rstrip("/") != self.base_url:
                self.base_url = url.rstrip("/")
                self.reset()

    # ---------------------------------------------------------------- ids and time

    def next_id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id

    def next_admin_id(self, kind: str) -> int:
        """The next id of a custom field ("field"), a context or an option: numbered apart from
        issues, so that a site set up at run time gets the ids a seeded one has."""
        with self.lock:
            found = self._next_admin_id[kind]
            self._next_admin_id[kind] = found + 1
            return found

    @staticmethod
    def now() -> str:
        return jira_time(datetime.now(UTC))

    @staticmethod
    def now_ms() -> int:
        return int(datetime.now(UTC).timestamp() * 1000)

    # ---------------------------------------------------------------- accounts

    def add_account(self, account: Account) -> Account:
        account.key = account.key or f"JIRAUSER{10100 + len(self.accounts)}"
        self.accounts[account.name] = account
        return account

    def authenticate_basic(self, user: str, secret: str) -> Account | None:
        for account in self.accounts.values():
            if user in (account.email, account.name) and secret == account.api_token:
                return account
        return None

    @property
    def cloud_id(self) -> str:
        """The site's cloud id, as ``/_edge/tenant_info`` gives it."""
        digest = hashlib.sha1(self.base_url.encode()).hexdigest()
        return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-a{digest[17:20]}-{digest[20:32]}"

    def authenticate_scoped(self, user: str, secret: str) -> Account | None:
        """A scoped API token through the gateway (Basic e-mail + token)."""
        for account in self.accounts.values():
            if account.scoped_token and user == account.email and secret == account.scoped_token:
                return account
        return None

    def authenticate_client(self, client_id: str, secret: str) -> Account | None:
        for account in self.accounts.values():
            if account.client_id and (client_id, secret) == (
                account.client_id,
                account.client_secret,
            ):
                return account
        return None

    def issue_oauth_token(self, token: str, account: Account) -> None:
        self.oauth_tokens[token] = (account.name, time.time() + self.token_seconds)

    def authenticate_oauth(self, token: str) -> Account | None:
        """An OAuth access token through the gateway, while it has not expired."""
        found = self.oauth_tokens.get(token)
        if found is None or time.time() >= found[1]:
            return None
        return self.accounts.get(found[0])

    def authenticate_bearer(self, token: str) -> Account | None:
        for account in self.accounts.values():
            if token == account.pat:
                return account
        return None

    def account(self, name: str) -> Account:
        """An account by name, key, account id or e-mail; 404 when there is none."""
        for account in self.accounts.values():
            if name in (account.name, account.key, account.account_id, account.email):
                return account
        raise JiraApiError(
            404, "Specified user does not exist or you do not have required permissions"
        )

    def user_json(self, account: Account, *, email: bool = False) -> dict[str, Any]:
        """A user as Jira shows it: accountId on Cloud, name and key on Data Center."""
        avatar = f"{self.base_url}/secure/useravatar?ownerId={account.key}"
        user: dict[str, Any] = {}
        if self.flavour is Flavour.CLOUD:
            user["self"] = f"{self.base_url}/rest/api/2/user?accountId={account.account_id}"
            user["accountId"] = account.account_id
            user["accountType"] = "atlassian"
        else:
            user["self"] = f"{self.base_url}/rest/api/2/user?username={account.name}"
            user["name"] = account.name
            user["key"] = account.key
        if email or self.flavour is Flavour.DC:
            user["emailAddress"] = account.email
        user["avatarUrls"] = {
            size: f"{avatar}&size={size}" for size in ("48x48", "24x24", "16x16", "32x32")
        }
        user["displayName"] = account.display_name
        user["active"] = True
        user["timeZone"] = account.time_zone
        return user

    def group_json(self, name: str) -> dict[str, Any]:
        group: dict[str, Any] = {
            "name": name,
            "self": f"{self.base_url}/rest/api/2/group?groupname={name}",
        }
        if self.flavour is Flavour.CLOUD:
            group["groupId"] = (
                hashlib.sha1(name.encode()).hexdigest()[:8] + "-0000-4000-8000-000000000000"
            )
        return group

    # ---------------------------------------------------------------- issues

    def issue(self, key_or_id: str, viewer: Account | None = None) -> dict[str, Any]:
        """The stored issue (not a copy); 404 in Jira's words when it is missing or hidden."""
        wanted = str(key_or_id).upper()
        issue = self.issues.get(wanted)
        if issue is None:
            issue = next((i for i in self.issues.values() if i["id"] == wanted), None)
        if issue is None or (viewer is not None and not viewer.can("BROWSE_PROJECTS")):
            raise JiraApiError(404, NOT_FOUND)
        return issue

    def project(self, key_or_id: str) -> Project:
        for project in self.projects.values():
            if str(key_or_id) in (project.key, project.id):
                return project
        raise JiraApiError(404, f"No project could be found with key '{key_or_id}'.")

    def visible_issues(self, viewer: Account) -> list[dict[str, Any]]:
        return list(self.issues.values()) if viewer.can("BROWSE_PROJECTS") else []

    def snapshot(self, issue: Mapping[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(dict(issue))

    # ---------------------------------------------------------------- JQL

    def parse_jql(self, text: str) -> jql.Query:
        names = catalog.jql_field_names()
        for custom in self.custom_fields.values():
            number = custom.id.removeprefix("customfield_")
            names |= {custom.name: custom.id, f"cf[{number}]": custom.id}
        try:
            return jql.parse(text, fields=names)
        except jql.JqlError as exc:
            raise JiraApiError(400, str(exc)) from exc

    def board_filter(self, board: Board) -> Filter:
        return self.filters[board.filter_id]

    def board(self, board_id: int | str) -> Board:
        try:
            return self.boards[int(board_id)]
        except (KeyError, ValueError):
            raise JiraApiError(
                404, "Board does not exist or you do not have permission to see it."
            ) from None

    # ---------------------------------------------------------------- events and the log

    def emit(self, event: dict[str, Any]) -> None:
        """Hand an event (see ``sandbox.hooks``) to the webhook dispatcher, if one listens."""
        if self._emit is not None:
            self._emit(self, event)

    def set_emitter(self, emit: Callable[[JiraState, dict[str, Any]], None] | None) -> None:
        self._emit = emit

    def record_call(self, call: dict[str, Any]) -> None:
        with self.lock:
            self._call_seq += 1
            self._calls.append({"seq": self._call_seq, **call})
            del self._calls[:-MAX_CALLS]

    def calls_since(self, seq: int) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(c) for c in self._calls if c["seq"] > seq]

    @property
    def last_call(self) -> int:
        return self._call_seq
