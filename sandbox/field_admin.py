"""The admin REST that sets a custom field up (all of it needs Administer Jira).

Both flavours: create a custom field (``POST /field``), a screen's tabs and their fields (read,
and add one). Cloud only, as on a real Data Center, which has no REST for them: a field's
contexts and their projects and options, issue type screen schemes, screen schemes and the list
of screens. Shapes as Atlassian's Cloud platform spec gives them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox import catalog, fieldconfig
from sandbox.state import (
    CustomField,
    FieldContext,
    Flavour,
    JiraApiError,
    JiraState,
    Screen,
    ScreenScheme,
    ScreenTab,
)
from sandbox.web import actor, json_body, paged, state

bp = Blueprint("field_admin", __name__, url_prefix="/rest/api/<any('2','3'):v>")

NOT_ADMIN = "Only Jira administrators can access custom field contexts."
FIELD_KEYS = {"name", "description", "type", "searcherKey"}
CONTEXT_KEYS = {"name", "description", "projectIds", "issueTypeIds"}
MAX_OPTIONS = 1000


def _admin(message: str = NOT_ADMIN, status: int = 403) -> None:
    if not actor().can("ADMINISTER"):
        raise JiraApiError(status, message)


def _cloud_admin() -> None:
    """Data Center has no such resource (Jira answers 404 for the unknown URI); on Cloud it
    needs Administer Jira."""
    if state().flavour is not Flavour.CLOUD:
        raise JiraApiError(404, f"null for uri: {request.path}")
    _admin()


def _object(body: Any, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise JiraApiError(400, "The request body must be a JSON object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise JiraApiError(400, f'Unrecognized field "{unknown[0]}"')
    return body


def _string_list(body: Mapping[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise JiraApiError(400, f"{key} must be a list of strings.")
    if len(set(value)) != len(value):
        raise JiraApiError(400, f"The {key} must not contain duplicates.")
    return value


# ---------------------------------------------------------------- fields


@bp.post("/field")
def create_field(v: str) -> Any:
    s = state()
    with s.lock:
        # Jira answers 400, not 403, to an account that may not create custom fields
        _admin("You do not have permission to create custom fields.", status=400)
        body = _object(json_body(), FIELD_KEYS)
        errors: dict[str, str] = {}
        name, type_key = body.get("name"), body.get("type")
        if not isinstance(name, str) or not name.strip():
            errors["name"] = "The custom field name is required."
        if type_key not in catalog.FIELD_TYPES:
            errors["type"] = f"The custom field type '{type_key}' is not valid."
        elif (
            body.get("searcherKey", catalog.FIELD_TYPES[type_key][0])
            != (catalog.FIELD_TYPES[type_key][0])
        ):
            errors["searcherKey"] = f"The searcher '{body['searcherKey']}' is not valid."
        if errors:
            raise JiraApiError(400, errors=errors)
        made = fieldconfig.create_field(
            s, name=str(name), type_key=str(type_key), description=str(body.get("description", ""))
        )
        return fieldconfig.field_json(made), 201


def _field(field_id: str) -> CustomField:
    _cloud_admin()
    return fieldconfig.custom_field(state(), field_id)


def _context(found: CustomField, context_id: str) -> FieldContext:
    for context in found.contexts:
        if context.id == context_id:
            return context
    raise JiraApiError(404, "The context was not found.")


def _context_json(context: FieldContext) -> dict[str, Any]:
    return {
        "id": context.id,
        "name": context.name,
        "description": context.description,
        "isGlobalContext": context.is_global,
        "isAnyIssueType": True,
    }


def _project_ids(s: JiraState, found: CustomField, wanted: list[str]) -> list[str]:
    """``wanted`` when each is a project that no context of the field names yet."""
    known = {p.id for p in s.projects.values()}
    for project_id in wanted:
        if project_id not in known:
            raise JiraApiError(404, f"The project with ID {project_id} was not found.")
        if any(project_id in c.project_ids for c in found.contexts):
            raise JiraApiError(
                400, f"The project {project_id} is already assigned to a context of the field."
            )
    return wanted


@bp.get("/field/<field_id>/context")
def contexts(v: str, field_id: str) -> Any:
    with state().lock:
        found = _field(field_id)
        return paged([_context_json(c) for c in found.contexts], is_last=True)


@bp.post("/field/<field_id>/context")
def create_context(v: str, field_id: str) -> Any:
    s = state()
    with s.lock:
        found = _field(field_id)
        body = _object(json_body(), CONTEXT_KEYS)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise JiraApiError(400, errors={"name": "The context name is required."})
        if _string_list(body, "issueTypeIds"):
            raise JiraApiError(400, "The sandbox makes contexts for every issue type only.")
        project_ids = _project_ids(s, found, _string_list(body, "projectIds"))
        if not project_ids and any(c.is_global for c in found.contexts):
            raise JiraApiError(400, "The custom field already has a global context.")
        context = FieldContext(
            str(s.next_admin_id("context")),
            name,
            project_ids,
            description=str(body.get("description", "")),
        )
        found.contexts.append(context)
        made = {
            "id": context.id,
            "name": context.name,
            "description": context.description,
            "projectIds": project_ids,
            "issueTypeIds": [],
        }
        return made, 201


@bp.get("/field/<field_id>/context/projectmapping")
def project_mapping(v: str, field_id: str) -> Any:
    with state().lock:
        found = _field(field_id)
        rows: list[dict[str, Any]] = []
        for context in found.contexts:
            if context.is_global:
                rows.append({"contextId": context.id, "isGlobalContext": True})
            rows += [{"contextId": context.id, "projectId": p} for p in context.project_ids]
        return paged(rows, is_last=True)


@bp.put("/field/<field_id>/context/<context_id>/project")
def assign_projects(v: str, field_id: str, context_id: str) -> Any:
    s = state()
    with s.lock:
        found = _field(field_id)
        context = _context(found, context_id)
        body = _object(json_body(), {"projectIds"})
        if "projectIds" not in body:
            raise JiraApiError(400, errors={"projectIds": "The projectIds are required."})
        if context.is_global:
            raise JiraApiError(400, "Projects cannot be added to the global context.")
        context.project_ids += _project_ids(s, found, _string_list(body, "projectIds"))
    return Response(status=204)


@bp.get("/field/<field_id>/context/<context_id>/option")
def options(v: str, field_id: str, context_id: str) -> Any:
    with state().lock:
        context = _context(_field(field_id), context_id)
        rows = [{"id": o.id, "value": o.value, "disabled": o.disabled} for o in context.options]
        return paged(rows, is_last=True)


@bp.post("/field/<field_id>/context/<context_id>/option")
def add_options(v: str, field_id: str, context_id: str) -> Any:
    s = state()
    with s.lock:
        found = _field(field_id)
        if found.type not in catalog.WITH_OPTIONS:
            raise JiraApiError(400, "The custom field doesn't support options.")
        context = _context(found, context_id)
        body = _object(json_body(), {"options"})
        wanted = body.get("options")
        if not isinstance(wanted, list) or not 1 <= len(wanted) <= MAX_OPTIONS:
            raise JiraApiError(400, f"Give from 1 to {MAX_OPTIONS} options.")
        values: list[str] = []
        taken = {o.value for o in context.options}
        for option in wanted:
            option = _object(option, {"value", "disabled", "optionId"})
            value = option.get("value")
            if not isinstance(value, str) or not value.strip():
                raise JiraApiError(400, "An option needs a value.")
            if "optionId" in option:
                raise JiraApiError(400, "The custom field doesn't support cascading options.")
            if value in taken:
                raise JiraApiError(400, f"The option '{value}' already exists in this context.")
            taken.add(value)
            values.append(value)
        made = fieldconfig.add_options(s, context, values)
        return {"options": [{"id": o.id, "value": o.value, "disabled": o.disabled} for o in made]}


# ---------------------------------------------------------------- schemes


def _ids_arg(name: str) -> set[str]:
    return {i for raw in request.args.getlist(name) for i in raw.split(",") if i}


def _listed(id_arg: str, rows: Callable[[JiraState, set[str]], list[dict[str, Any]]]) -> Any:
    """A Cloud admin listing: ``rows`` of the state, narrowed to the ids ``id_arg`` names (all
    when it names none), one page of them."""
    s = state()
    with s.lock:
        _cloud_admin()
        return paged(rows(s, _ids_arg(id_arg)), is_last=True)


def _wanted(wanted: set[str], *ids: object) -> bool:
    return not wanted or bool(wanted & {str(i) for i in ids})


@bp.get("/issuetypescreenscheme/project")
def type_screen_scheme_projects(v: str) -> Any:
    return _listed(
        "projectId",
        lambda s, wanted: [
            {
                "issueTypeScreenScheme": {"id": str(scheme.id), "name": scheme.name},
                "projectIds": list(scheme.project_ids),
            }
            for scheme in s.type_screen_schemes.values()
            if _wanted(wanted, *scheme.project_ids)
        ],
    )


@bp.get("/issuetypescreenscheme/mapping")
def type_screen_scheme_mapping(v: str) -> Any:
    return _listed(
        "issueTypeScreenSchemeId",
        lambda s, wanted: [
            {
                "issueTypeId": type_id,
                "issueTypeScreenSchemeId": str(scheme.id),
                "screenSchemeId": str(screen_scheme),
            }
            for scheme in s.type_screen_schemes.values()
            if _wanted(wanted, scheme.id)
            for type_id, screen_scheme in scheme.items.items()
        ],
    )


def _screen_scheme_json(scheme: ScreenScheme) -> dict[str, Any]:
    screens = {"default": scheme.default}
    screens |= {k: v for k, v in (("create", scheme.create), ("edit", scheme.edit)) if v}
    return {"id": scheme.id, "name": scheme.name, "screens": screens}


@bp.get("/screenscheme")
def screen_schemes(v: str) -> Any:
    return _listed(
        "id",
        lambda s, wanted: [
            _screen_scheme_json(scheme)
            for scheme in s.screen_schemes.values()
            if _wanted(wanted, scheme.id)
        ],
    )


# ---------------------------------------------------------------- screens


@bp.get("/screens")
def screens(v: str) -> Any:
    return _listed(
        "id",
        lambda s, wanted: [
            {"id": screen.id, "name": screen.name, "description": screen.description}
            for screen in s.screens.values()
            if _wanted(wanted, screen.id)
        ],
    )


def _screen(screen_id: str) -> Screen:
    _admin()
    found = state().screens.get(int(screen_id)) if screen_id.isdigit() else None
    if found is None:
        raise JiraApiError(404, f"The screen with id {screen_id} does not exist.")
    return found


def _tab(screen: Screen, tab_id: str) -> ScreenTab:
    for tab in screen.tabs:
        if str(tab.id) == tab_id:
            return tab
    raise JiraApiError(404, f"The screen tab with id {tab_id} does not exist.")


@bp.get("/screens/<screen_id>/tabs")
def tabs(v: str, screen_id: str) -> Any:
    with state().lock:
        return jsonify([{"id": t.id, "name": t.name} for t in _screen(screen_id).tabs])


def _field_name(s: JiraState, field_id: str) -> str:
    named = {f["id"]: f["name"] for f in fieldconfig.fields_json(s)}
    if field_id not in named:
        raise JiraApiError(404, f"The field with id {field_id} does not exist.")
    return named[field_id]


@bp.get("/screens/<screen_id>/tabs/<tab_id>/fields")
def tab_fields(v: str, screen_id: str, tab_id: str) -> Any:
    s = state()
    with s.lock:
        tab = _tab(_screen(screen_id), tab_id)
        return jsonify([{"id": f, "name": _field_name(s, f)} for f in tab.fields])


@bp.post("/screens/<screen_id>/tabs/<tab_id>/fields")
def add_tab_field(v: str, screen_id: str, tab_id: str) -> Any:
    s = state()
    with s.lock:
        screen = _screen(screen_id)
        tab = _tab(screen, tab_id)
        field_id = _object(json_body(), {"fieldId"}).get("fieldId")
        if not isinstance(field_id, str):
            raise JiraApiError(400, errors={"fieldId": "The fieldId is required."})
        name = _field_name(s, field_id)
        if any(field_id in t.fields for t in screen.tabs):
            raise JiraApiError(400, f"The field {field_id} is already on the screen.")
        tab.fields.append(field_id)
        return {"id": field_id, "name": name}
