"""The Jira calls of the admin's commands (``jira-impact check``, ``backfill``, ``webhook``).

``JiraAdmin`` wraps a ``JiraConnector`` and sends everything through its ``request``, so every
call is recorded and every failure is a ``connector.errors`` type. Endpoints:

- the impact field's options: on Cloud ``GET /rest/api/2/field/{id}/context`` then
  ``…/context/{contextId}/option`` (needs Administer Jira); Data Center has no such API, so there
  (and on Cloud when those are refused) the ``allowedValues`` of the field in the create
  metadata, ``GET /rest/api/2/issue/createmeta/{projectKey}/issuetypes[/{issueTypeId}]``
- a project: ``GET /rest/api/2/project/{key}``
- permissions: ``GET /rest/api/2/mypermissions?projectKey=…&permissions=…``
- admin webhooks: ``GET`` and ``POST /rest/webhooks/1.0/webhook``
- search: the connector's (``connector.search``)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
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

WEBHOOKS = "/rest/webhooks/1.0/webhook"
WEBHOOK_EVENTS = ("jira:issue_created", "jira:issue_updated")
JQL_SECTION = "issue-related-events-section"
KEYS_PAGE = 1_000  # keys only: Jira may send fewer, paging follows what it sends
ISSUES_PAGE = 50


@dataclass(frozen=True)
class AdminWebhook:
    """An admin webhook as ``GET /rest/webhooks/1.0/webhook`` lists it."""

    name: str
    url: str
    events: tuple[str, ...]
    jql: str  # the issue-related events filter; "" for every issue
    enabled: bool = True
    signed: bool | None = None  # ``isSigned``; None when Jira does not say (Data Center)
    self_url: str | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> AdminWebhook:
        filters = raw.get("filters")
        jql = filters.get(JQL_SECTION) if isinstance(filters, Mapping) else None
        events = raw.get("events")
        signed = raw.get("isSigned")
        return cls(
            name=str(raw.get("name") or ""),
            url=str(raw.get("url") or ""),
            events=tuple(str(e) for e in events) if isinstance(events, list) else (),
            jql=jql if isinstance(jql, str) else "",
            enabled=raw.get("enabled") is not False,
            signed=signed if isinstance(signed, bool) else None,
            self_url=str(raw["self"]) if raw.get("self") else None,
        )


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

    def webhooks(self) -> tuple[AdminWebhook, ...]:
        listed = self.jira.request("GET", WEBHOOKS)
        items = listed if isinstance(listed, list) else []
        return tuple(AdminWebhook.from_json(raw) for raw in items if isinstance(raw, Mapping))

    def register_webhook(
        self, *, name: str, url: str, jql: str, secret: str | None
    ) -> AdminWebhook:
        body = webhook_body(name=name, url=url, jql=jql, secret=secret)
        made = self.jira.request("POST", WEBHOOKS, body=body)
        return AdminWebhook.from_json(made if isinstance(made, Mapping) else body)

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
