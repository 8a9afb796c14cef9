"""The Jira calls of the admin's commands (``jira-impact check``, ``backfill``, ``webhook``).

``JiraAdmin`` wraps a ``JiraConnector`` and sends everything through its ``request``, so every
call is recorded and every failure is a ``connector.errors`` type. Endpoints:

- the impact field's options: on Cloud ``GET /rest/api/2/field/{id}/context`` then
  ``…/context/{contextId}/option`` (needs Administer Jira); Data Center has no such API, so there
  (and on Cloud when those are refused) the ``allowedValues`` of the field in the create
  metadata, ``GET /rest/api/2/issue/createmeta/{projectKey}/issuetypes[/{issueTypeId}]``
- a project: ``GET /rest/api/2/project/{key}``
- permissions: ``GET /rest/api/2/mypermissions?projectKey=…&permissions=…``
- admin webhooks: on Cloud and Data Center before 10, ``GET`` and ``POST
  /rest/webhooks/1.0/webhook`` and ``GET …/webhook/{id}``; on Data Center 10 and later, which
  moved them, ``GET`` (paged by ``start``/``limit``) and ``POST /rest/jira-webhook/1.0/webhooks``
  and ``GET …/webhooks/{id}``, with their own body (``dc10_webhook_body``). Which one is chosen
  from ``serverInfo`` (``webhook_api``).
- search: the connector's (``connector.search``)

Sources for Data Center 10's webhook API, which Atlassian's REST reference does not describe:
JRASERVER-78733 (https://jira.atlassian.com/browse/JRASERVER-78733, Atlassian's tracker) says
the resource moved from ``/rest/webhooks/1.0/webhook`` (9.x) to ``/rest/jira-webhook/1.0/webhooks``
(10.x), and that Jira 10 ignores the JQL of a body in 9.x's shape, its body having changed to one
whose JQL is ``configuration.FILTERS`` beside ``configuration.EXCLUDE_BODY`` (strings) and
``active``. The answer's fields (``id``, ``name``,
``url``, ``active``, ``events``, ``configuration``, ``createdDate``, ``updatedDate``,
``scopeType``, ``sslVerificationRequired``) and the list's ``start``/``limit``/``event``
parameters are those of Atlassian's Jira Data Center 11.3 REST spec as jira.js documents it
(https://mrrefactoring.github.io/jira.js/api/functions/server.getWebhooks.html). Where the secret
goes in that body is documented nowhere: ``configuration.SECRET`` is sent, and since nothing in
the answer says whether Jira kept it, a registered webhook is read back and what it shows is
believed, not what was sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from connector.client import JiraConnector
from connector.errors import (
    JiraBadRequestError,
    JiraError,
    JiraForbiddenError,
    JiraNotFoundError,
)
from connector.protocol import API, MAX_PAGES
from impact.keys import is_issue_key, is_project_key

WEBHOOKS = "/rest/webhooks/1.0/webhook"  # Cloud, and Data Center before 10
DC10_WEBHOOKS = "/rest/jira-webhook/1.0/webhooks"  # Data Center 10 and later
DC10 = 10  # the first Data Center major version with the new webhook API
WEBHOOK_EVENTS = ("jira:issue_created", "jira:issue_updated")
JQL_SECTION = "issue-related-events-section"
DC10_PAGE = 100  # webhooks a page of DC10_WEBHOOKS asks for
DESCRIPTION = "Issue events for jira-customer-impact (registered by jira-impact)"
KEYS_PAGE = 1_000  # keys only: Jira may send fewer, paging follows what it sends
ISSUES_PAGE = 50


class WebhookApi(StrEnum):
    """Which admin webhook REST API a site has."""

    LEGACY = "webhooks/1.0"  # Cloud, and Data Center before 10
    DC10 = "jira-webhook/1.0"  # Data Center 10 and later

    @property
    def path(self) -> str:
        return DC10_WEBHOOKS if self is WebhookApi.DC10 else WEBHOOKS


def webhook_api(*, cloud: bool, version: Sequence[int]) -> WebhookApi:
    """The admin webhook API of a site: Data Center from version 10 on has the new one."""
    if not cloud and version and version[0] >= DC10:
        return WebhookApi.DC10
    return WebhookApi.LEGACY


@dataclass(frozen=True)
class AdminWebhook:
    """An admin webhook as Jira lists it (either API)."""

    name: str
    url: str
    events: tuple[str, ...]
    jql: str  # the issue-related events filter; "" for every issue
    enabled: bool = True
    signed: bool | None = None  # ``isSigned``; None when Jira does not say (Data Center)
    self_url: str | None = None
    id: str | None = None  # its id, for reading it again
    api: WebhookApi = WebhookApi.LEGACY

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> AdminWebhook:
        """From ``/rest/webhooks/1.0/webhook``'s shape (Cloud, Data Center before 10)."""
        filters = raw.get("filters")
        jql = filters.get(JQL_SECTION) if isinstance(filters, Mapping) else None
        signed = raw.get("isSigned")
        self_url = str(raw["self"]) if raw.get("self") else None
        last = self_url.rstrip("/").rsplit("/", 1)[-1] if self_url else ""
        return cls(
            name=str(raw.get("name") or ""),
            url=str(raw.get("url") or ""),
            events=_events(raw),
            jql=jql if isinstance(jql, str) else "",
            enabled=raw.get("enabled") is not False,
            signed=signed if isinstance(signed, bool) else None,
            self_url=self_url,
            id=last if last.isdigit() else None,
        )

    @classmethod
    def from_dc10_json(cls, raw: Mapping[str, Any]) -> AdminWebhook:
        """From ``/rest/jira-webhook/1.0/webhooks``' shape (Data Center 10 and later): the JQL
        is ``configuration.FILTERS``, ``active`` may be a boolean or its string."""
        config = raw.get("configuration")
        config = config if isinstance(config, Mapping) else {}
        jql = config.get("FILTERS")
        secret = config.get("SECRET")
        hook_id = raw.get("id")
        return cls(
            name=str(raw.get("name") or ""),
            url=str(raw.get("url") or ""),
            events=_events(raw),
            jql=jql if isinstance(jql, str) else "",
            enabled=str(raw.get("active", True)).lower() != "false",
            signed=True if isinstance(secret, str) and secret else None,
            id=str(hook_id) if isinstance(hook_id, int | str) and str(hook_id).isdigit() else None,
            api=WebhookApi.DC10,
        )


def _events(raw: Mapping[str, Any]) -> tuple[str, ...]:
    events = raw.get("events")
    return tuple(str(e) for e in events) if isinstance(events, list) else ()


def webhook_body(*, name: str, url: str, jql: str, secret: str | None) -> dict[str, Any]:
    """The registration body: issue created and updated events, the issue in the body, and the
    secret Jira signs deliveries with (``X-Hub-Signature``) when there is one."""
    body: dict[str, Any] = {
        "name": name,
        "url": url,
        "events": list(WEBHOOK_EVENTS),
        "filters": {JQL_SECTION: jql},
        "excludeBody": False,
    }
    if secret:
        body["secret"] = secret
    return body


def dc10_webhook_body(*, name: str, url: str, jql: str, secret: str | None) -> dict[str, Any]:
    """The same registration for Data Center 10 and later (see the module's sources): the JQL
    and the rest of the settings under ``configuration``, as strings."""
    configuration = {"FILTERS": jql, "EXCLUDE_BODY": "false", "DESCRIPTION": DESCRIPTION}
    if secret:
        configuration["SECRET"] = secret
    return {
        "name": name,
        "url": url,
        "events": list(WEBHOOK_EVENTS),
        "active": True,
        "configuration": configuration,
    }


@dataclass(frozen=True)
class Registered:
    """A webhook just registered: as the registration answered, and as Jira shows it when read
    again (None, with ``unread`` saying why, when it could not be read)."""

    made: AdminWebhook
    read: AdminWebhook | None
    unread: str | None = None


def enabled_options(values: Sequence[Any]) -> tuple[str, ...]:
    """Option values from a context's options or a field's ``allowedValues``: top-level ones
    only (a cascading child names its parent in ``optionId``), not disabled, each once."""
    found: dict[str, None] = {}
    for option in values:
        if not isinstance(option, Mapping) or option.get("disabled") is True:
            continue
        if option.get("optionId"):
            continue
        value = option.get("value")
        if isinstance(value, str) and value:
            found.setdefault(value)
    return tuple(found)


def key_list_jql(keys: Sequence[str]) -> str:
    """JQL matching exactly these issue keys (each checked, so nothing else gets in)."""
    for key in keys:
        if not is_issue_key(key):
            raise ValueError(f"{key[:40]!r} is not an issue key")
    return f"key in ({', '.join(keys)})"


class JiraAdmin:
    """The admin's reads and writes, on top of a ``JiraConnector``."""

    def __init__(self, jira: JiraConnector) -> None:
        self.jira = jira

    def is_cloud(self) -> bool:
        return self.jira.is_cloud()

    # ---- the impact field

    def field_options(self, field_id: str, project_keys: Sequence[str]) -> tuple[str, ...]:
        """The field's selectable option values. On Cloud from its contexts; where those are
        refused (they need Administer Jira) and on Data Center, from the create screens of
        ``project_keys``, so options of a field on none of them are not seen."""
        if self.is_cloud():
            try:
                return self._context_options(field_id)
            except (JiraForbiddenError, JiraNotFoundError):
                pass
        found: dict[str, None] = {}
        for key in project_keys:
            for value in self._createmeta_options(field_id, key):
                found.setdefault(value)
        return tuple(found)

    def _context_options(self, field_id: str) -> tuple[str, ...]:
        base = f"{API}/field/{quote(field_id, safe='')}/context"
        found: dict[str, None] = {}
        for context in self._pages(base, "values", size=50):
            context_id = str(context.get("id") or "")
            if not context_id.isdigit():
                continue
            options = list(self._pages(f"{base}/{context_id}/option", "values", size=100))
            for value in enabled_options(options):
                found.setdefault(value)
        return tuple(found)

    def _createmeta_options(self, field_id: str, project_key: str) -> tuple[str, ...]:
        found: dict[str, None] = {}
        for field in self.createmeta_entries(field_id, project_key).values():
            allowed = field.get("allowedValues") if field else None
            for value in enabled_options(allowed if isinstance(allowed, list) else []):
                found.setdefault(value)
        return tuple(found)

    def createmeta_entries(
        self, field_id: str, project_key: str
    ) -> dict[str, Mapping[str, Any] | None]:
        """The field as the create metadata of each issue type of the project shows it, by issue
        type id; None for the issue types whose create screen does not show it."""
        base = f"{API}/issue/createmeta/{_project_path(project_key)}/issuetypes"
        found: dict[str, Mapping[str, Any] | None] = {}
        for issuetype in list(self._pages(base, "issueTypes", "values", size=50)):
            type_id = str(issuetype.get("id") or "")
            if not type_id.isdigit():
                continue
            found[type_id] = None
            for field in self._pages(f"{base}/{type_id}", "fields", "values", "results", size=50):
                if field.get("fieldId", field.get("key")) == field_id:
                    found[type_id] = field
        return found

    def _pages(
        self,
        path: str,
        *list_keys: str,
        size: int,
        params: Mapping[str, str | Sequence[str]] | None = None,
    ) -> Iterator[Mapping[str, Any]]:
        """Every item of a ``startAt``/``maxResults`` paged list, whichever of ``list_keys``
        holds it; stops on ``isLast``, at ``total`` or on an empty page. ``params``: the
        query's other parameters."""
        start = 0
        for _ in range(MAX_PAGES):
            query = {**(params or {}), "startAt": str(start), "maxResults": str(size)}
            page = self.jira.request("GET", path, params=query)
            items: list[Any] = []
            if isinstance(page, Mapping):
                items = next((page[k] for k in list_keys if isinstance(page.get(k), list)), [])
            yield from (item for item in items if isinstance(item, Mapping))
            start += len(items)
            total = page.get("total") if isinstance(page, Mapping) else None
            last = page.get("isLast") if isinstance(page, Mapping) else None
            if not items or last is True or (isinstance(total, int) and start >= total):
                return
        raise JiraError(f"more than {MAX_PAGES} pages", method="GET", path=path)

    # ---- projects and permissions

    def project(self, key: str) -> Mapping[str, Any] | None:
        """The project, or None when it does not exist or the account cannot browse it."""
        try:
            found = self.jira.request("GET", f"{API}/project/{_project_path(key)}")
        except JiraNotFoundError:
            return None
        return found if isinstance(found, Mapping) else None

    def permissions(self, project_key: str, keys: Sequence[str]) -> dict[str, bool]:
        """Which of the permissions ``keys`` the service account holds in the project."""
        answer = self.jira.request(
            "GET",
            f"{API}/mypermissions",
            params={"projectKey": project_key, "permissions": ",".join(keys)},
        )
        held = answer.get("permissions") if isinstance(answer, Mapping) else None
        held = held if isinstance(held, Mapping) else {}
        return {
            key: isinstance(held.get(key), Mapping) and held[key].get("havePermission") is True
            for key in keys
        }

    # ---- admin webhooks

    def webhook_api(self) -> WebhookApi:
        """The site's admin webhook API, from ``serverInfo`` (read once per connector)."""
        return webhook_api(cloud=self.is_cloud(), version=self.jira.server_version())

    def webhooks(self) -> tuple[AdminWebhook, ...]:
        if self.webhook_api() is WebhookApi.DC10:
            return tuple(self._dc10_webhooks())
        listed = self.jira.request("GET", WEBHOOKS)
        items = listed if isinstance(listed, list) else []
        return tuple(AdminWebhook.from_json(raw) for raw in items if isinstance(raw, Mapping))

    def _dc10_webhooks(self) -> Iterator[AdminWebhook]:
        start = 0
        for _ in range(MAX_PAGES):
            params = {"start": str(start), "limit": str(DC10_PAGE)}
            listed = self.jira.request("GET", DC10_WEBHOOKS, params=params)
            items = [raw for raw in (listed if isinstance(listed, list) else [])]
            yield from (AdminWebhook.from_dc10_json(r) for r in items if isinstance(r, Mapping))
            if len(items) < DC10_PAGE:
                return
            start += len(items)
        raise JiraError(f"more than {MAX_PAGES} pages", method="GET", path=DC10_WEBHOOKS)

    def webhook(self, hook: AdminWebhook) -> AdminWebhook | None:
        """The webhook as Jira shows it now; None when it is gone. One read by its id where it
        has one, else the list, matched by name and URL."""
        api = hook.api
        if hook.id is None:
            return next(
                (h for h in self.webhooks() if (h.name, h.url) == (hook.name, hook.url)), None
            )
        try:
            raw = self.jira.request("GET", f"{api.path}/{hook.id}")
        except JiraNotFoundError:
            return None
        if not isinstance(raw, Mapping):
            return None
        if api is WebhookApi.DC10:
            return AdminWebhook.from_dc10_json(raw)
        return AdminWebhook.from_json(raw)

    def register_webhook(self, *, name: str, url: str, jql: str, secret: str | None) -> Registered:
        """Register the webhook in the site's API, then read it back: Jira may answer 201 and
        keep less than it was sent (Data Center 10 drops a JQL filter sent in 9.x's shape)."""
        api = self.webhook_api()
        if api is WebhookApi.DC10:
            body = dc10_webhook_body(name=name, url=url, jql=jql, secret=secret)
            made_raw = self.jira.request("POST", DC10_WEBHOOKS, body=body)
            made = AdminWebhook.from_dc10_json(made_raw if isinstance(made_raw, Mapping) else {})
        else:
            body = webhook_body(name=name, url=url, jql=jql, secret=secret)
            made_raw = self.jira.request("POST", WEBHOOKS, body=body)
            made = AdminWebhook.from_json(made_raw if isinstance(made_raw, Mapping) else body)
        if not made.name:  # an empty answer: what was sent, to find it by
            made = AdminWebhook(name, url, WEBHOOK_EVENTS, "", api=api)
        try:
            read = self.webhook(made)
        except JiraError as exc:
            return Registered(made, None, f"Jira did not show it again: {exc}")
        if read is None:
            return Registered(made, None, "Jira does not list it")
        return Registered(made, read)

    # ---- search

    def issue_keys(self, jql: str) -> list[str]:
        """The keys of every issue ``jql`` matches, in Jira's order."""
        keys: list[str] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = self.jira.search_page(jql, fields=("key",), cursor=cursor, size=KEYS_PAGE)
            keys += [str(i["key"]) for i in page.issues if i.get("key")]
            cursor = page.cursor
            if cursor is None:
                return list(dict.fromkeys(keys))
        raise JiraError(f"the search {jql!r} has more than {MAX_PAGES} pages of keys")

    def issues(self, keys: Sequence[str], *, fields: Sequence[str]) -> list[Mapping[str, Any]]:
        """The issues with these keys (at most ``ISSUES_PAGE``), with ``fields``; an issue that
        no longer exists is left out."""
        if len(keys) > ISSUES_PAGE:
            raise ValueError(f"at most {ISSUES_PAGE} issues at a time")
        if not keys:
            return []
        try:
            page = self.jira.search_page(key_list_jql(keys), fields=fields, size=ISSUES_PAGE)
        except JiraBadRequestError:
            # Jira refuses ``key in (…)`` naming an issue deleted since: read them one by one
            return [found for key in keys if (found := self._issue(key, fields)) is not None]
        return list(page.issues)

    def _issue(self, key: str, fields: Sequence[str]) -> Mapping[str, Any] | None:
        key_list_jql([key])  # checks the key before it goes into the path
        try:
            found = self.jira.request(
                "GET", f"{API}/issue/{key}", params={"fields": ",".join(fields)}
            )
        except JiraNotFoundError:
            return None
        return found if isinstance(found, Mapping) else None


def _project_path(key: str) -> str:
    if not is_project_key(key):
        raise JiraError(f"{key[:40]!r} is not a project key")
    return key
