"""The Jira calls of ``jira-impact setup``: make the impact field, its context and options, and
put it on the projects' screens. All of them need Administer Jira.

``FieldAdmin`` is a ``JiraAdmin`` (projects, permissions, webhooks, create metadata) with these
endpoints on top, every one sent through the connector's ``request``:

- ``GET /rest/api/2/mypermissions?permissions=ADMINISTER``: is the account a Jira admin
- ``POST /rest/api/2/field``: a select-list custom field (Cloud and Data Center)
- Cloud only: ``GET``/``POST /rest/api/2/field/{id}/context``, ``GET …/context/projectmapping``,
  ``PUT …/context/{contextId}/project``, ``GET``/``POST …/context/{contextId}/option``
- Cloud only: a project's screens, ``GET /rest/api/2/issuetypescreenscheme/project?projectId=``
  then ``…/issuetypescreenscheme/mapping``, ``GET /rest/api/2/screenscheme?id=`` and
  ``GET /rest/api/2/screens?id=`` (their names)
- ``GET /rest/api/2/screens/{id}/tabs``, ``GET``/``POST …/tabs/{tabId}/fields``

Data Center has no REST for contexts, options or screen schemes: there ``jira_setup.setup``
reads what the create metadata shows and leaves the rest to the admin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from connector.admin import JiraAdmin
from connector.errors import JiraError
from connector.protocol import API

ADMINISTER = "ADMINISTER"
CUSTOM = "com.atlassian.jira.plugin.system.customfieldtypes:"
SELECT_TYPE = CUSTOM + "select"
SELECT_SEARCHER = CUSTOM + "multiselectsearcher"
CREATE, EDIT = "create", "edit"
DEFAULT_TYPES = "default"  # an issue type screen scheme's entry for every other issue type
_ID_BATCH = 50  # ids asked for in one paged request


@dataclass(frozen=True)
class FieldContext:
    """A context of a custom field: the projects that see it (every one when global)."""

    id: str
    name: str
    is_global: bool
    project_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldOption:
    id: str
    value: str
    disabled: bool = False


@dataclass(frozen=True)
class ScreenTab:
    id: str
    name: str
    fields: tuple[str, ...]  # the ids of the fields on it


@dataclass(frozen=True)
class Screen:
    id: str
    name: str
    tabs: tuple[ScreenTab, ...]

    def shows(self, field_id: str) -> bool:
        return any(field_id in tab.fields for tab in self.tabs)


@dataclass(frozen=True)
class ScreenUse:
    """A screen that a project shows to create or to edit issues of some of its types."""

    screen_id: str
    operation: str  # CREATE or EDIT
    issue_types: tuple[str, ...]  # issue type ids; DEFAULT_TYPES for those the scheme leaves


# ---------------------------------------------------------------------------------------------
# Request bodies (pure, checked against Atlassian's spec in tests/test_requests_match_spec.py)


def field_body(name: str, description: str) -> dict[str, Any]:
    """A select list (single choice), searchable like Jira's own select lists."""
    return {
        "name": name,
        "description": description,
        "type": SELECT_TYPE,
        "searcherKey": SELECT_SEARCHER,
    }


def context_body(name: str, description: str, project_ids: Sequence[str]) -> dict[str, Any]:
    """A context for these projects and every issue type."""
    return {
        "name": name,
        "description": description,
        "projectIds": list(project_ids),
        "issueTypeIds": [],
    }


def projects_body(project_ids: Sequence[str]) -> dict[str, Any]:
    return {"projectIds": list(project_ids)}


def options_body(values: Sequence[str]) -> dict[str, Any]:
    return {"options": [{"value": value, "disabled": False} for value in values]}


def tab_field_body(field_id: str) -> dict[str, Any]:
    return {"fieldId": field_id}


def context_options(values: Sequence[Any]) -> tuple[FieldOption, ...]:
    """A context's options, top-level ones only (a cascading child names its parent)."""
    return tuple(
        FieldOption(str(o["id"]), o["value"], o.get("disabled") is True)
        for o in values
        if isinstance(o, Mapping)
        and o.get("id")
        and isinstance(o.get("value"), str)
        and not o.get("optionId")
    )


def screen_uses(
    mapping: Sequence[Mapping[str, Any]], schemes: Mapping[str, Mapping[str, Any]]
) -> tuple[ScreenUse, ...]:
    """The create and edit screens an issue type screen scheme's items lead to: each item names
    a screen scheme, whose ``create``/``edit`` screen (else its ``default``) is used."""
    found: dict[tuple[str, str], list[str]] = {}
    for item in mapping:
        screens = schemes.get(str(item.get("screenSchemeId")), {}).get("screens")
        if not isinstance(screens, Mapping) or screens.get("default") is None:
            continue
        for operation in (CREATE, EDIT):
            screen = screens.get(operation) or screens["default"]
            found.setdefault((str(screen), operation), []).append(str(item.get("issueTypeId")))
    return tuple(ScreenUse(s, op, tuple(types)) for (s, op), types in found.items())


class FieldAdmin(JiraAdmin):
    """``JiraAdmin`` plus the calls that set the impact field up."""

    def holds_global(self, permission: str) -> bool:
        """Whether the account holds a global permission (``ADMINISTER``, say)."""
        answer = self.jira.request(
            "GET", f"{API}/mypermissions", params={"permissions": permission}
        )
        held = answer.get("permissions") if isinstance(answer, Mapping) else None
        found = held.get(permission) if isinstance(held, Mapping) else None
        return isinstance(found, Mapping) and found.get("havePermission") is True

    # ---- the field

    def create_field(self, name: str, description: str) -> str:
        """Create a select-list custom field; its id. Running connectors see it within a
        minute (their field list's time to live); this one at once."""
        made = self.jira.request("POST", f"{API}/field", body=field_body(name, description))
        self.jira.forget_fields()
        field_id = made.get("id") if isinstance(made, Mapping) else None
        if not isinstance(field_id, str) or not field_id:
            raise JiraError("Jira created the field but did not say its id", path=f"{API}/field")
        return field_id

    def contexts(self, field_id: str) -> tuple[FieldContext, ...]:
        """The field's contexts, each with the projects it names (Cloud)."""
        base = _context_path(field_id)
        listed = list(self._pages(base, "values", size=50))
        projects: dict[str, list[str]] = {}
        for row in self._pages(f"{base}/projectmapping", "values", size=50):
            if row.get("projectId"):
                projects.setdefault(str(row.get("contextId")), []).append(str(row["projectId"]))
        return tuple(
            FieldContext(
                str(c["id"]),
                str(c.get("name") or ""),
                c.get("isGlobalContext") is True,
                tuple(projects.get(str(c["id"]), ())),
            )
            for c in listed
            if c.get("id")
        )

    def options(self, field_id: str, context_id: str) -> tuple[FieldOption, ...]:
        path = f"{_context_path(field_id)}/{_number(context_id)}/option"
        return context_options(list(self._pages(path, "values", size=100)))

    def create_context(
        self, field_id: str, name: str, description: str, project_ids: Sequence[str]
    ) -> FieldContext:
        made = self.jira.request(
            "POST",
            _context_path(field_id),
            body=context_body(name, description, project_ids),
        )
        context_id = made.get("id") if isinstance(made, Mapping) else None
        if not context_id:
            raise JiraError("Jira created the context but did not say its id")
        return FieldContext(str(context_id), name, False, tuple(project_ids))

    def assign_projects(self, field_id: str, context_id: str, project_ids: Sequence[str]) -> None:
        path = f"{_context_path(field_id)}/{_number(context_id)}/project"
        self.jira.request("PUT", path, body=projects_body(project_ids))

    def add_options(
        self, field_id: str, context_id: str, values: Sequence[str]
    ) -> tuple[FieldOption, ...]:
        path = f"{_context_path(field_id)}/{_number(context_id)}/option"
        made = self.jira.request("POST", path, body=options_body(values))
        listed = made.get("options") if isinstance(made, Mapping) else None
        return context_options(listed if isinstance(listed, list) else [])

    # ---- screens

    def screen_uses(self, project_id: str) -> tuple[str, tuple[ScreenUse, ...]] | None:
        """The project's issue type screen scheme's name and the screens it leads to (Cloud);
        None when Jira lists no scheme for the project (a team-managed project)."""
        rows = list(
            self._pages(
                f"{API}/issuetypescreenscheme/project",
                "values",
                size=50,
                params={"projectId": _number(project_id)},
            )
        )
        scheme = next(
            (r.get("issueTypeScreenScheme") for r in rows if project_id in r.get("projectIds", [])),
            None,
        )
        if not isinstance(scheme, Mapping) or not scheme.get("id"):
            return None
        mapping = list(
            self._pages(
                f"{API}/issuetypescreenscheme/mapping",
                "values",
                size=50,
                params={"issueTypeScreenSchemeId": _number(str(scheme["id"]))},
            )
        )
        wanted = sorted({_number(str(m.get("screenSchemeId"))) for m in mapping})
        schemes = {str(s.get("id")): s for s in self._by_ids(f"{API}/screenscheme", wanted)}
        return str(scheme.get("name") or scheme["id"]), screen_uses(mapping, schemes)

    def screen_names(self, screen_ids: Sequence[str]) -> dict[str, str]:
        found = self._by_ids(f"{API}/screens", sorted({_number(i) for i in screen_ids}))
        return {str(s.get("id")): str(s.get("name") or "") for s in found}

    def screen(self, screen_id: str, name: str) -> Screen:
        """The screen's tabs, each with the fields on it."""
        base = f"{API}/screens/{_number(screen_id)}/tabs"
        listed = self.jira.request("GET", base)
        tabs = []
        for tab in listed if isinstance(listed, list) else []:
            if not isinstance(tab, Mapping) or tab.get("id") is None:
                continue
            fields = self.jira.request("GET", f"{base}/{_number(str(tab['id']))}/fields")
            ids = tuple(
                str(f["id"]) for f in fields or [] if isinstance(f, Mapping) and f.get("id")
            )
            tabs.append(ScreenTab(str(tab["id"]), str(tab.get("name") or ""), ids))
        return Screen(screen_id, name, tuple(tabs))

    def add_to_tab(self, screen_id: str, tab_id: str, field_id: str) -> None:
        path = f"{API}/screens/{_number(screen_id)}/tabs/{_number(tab_id)}/fields"
        self.jira.request("POST", path, body=tab_field_body(field_id))

    def _by_ids(self, path: str, ids: Sequence[str]) -> list[Mapping[str, Any]]:
        """The items of a paged list filtered by repeated ``id`` parameters."""
        found: list[Mapping[str, Any]] = []
        for start in range(0, len(ids), _ID_BATCH):
            batch = list(ids[start : start + _ID_BATCH])
            found += self._pages(path, "values", size=_ID_BATCH, params={"id": batch})
        return found


def _context_path(field_id: str) -> str:
    return f"{API}/field/{quote(field_id, safe='')}/context"


def _number(value: str) -> str:
    """An id that goes into a path or a query: digits only, so it cannot bend the URL."""
    if not value.isdigit():
        raise JiraError(f"{value!r} is not a Jira id")
    return value
