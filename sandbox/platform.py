"""Jira platform REST (``/rest/api/2`` and ``/3``): server, users, fields, issues, comments."""

from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox import catalog, fieldconfig, issues, shapes
from sandbox.state import Filter, Flavour, JiraApiError, Project
from sandbox.web import actor, int_arg, json_body, state

bp = Blueprint("platform", __name__, url_prefix="/rest/api/<any('2','3'):v>")

CLOUD_BUILD = ("1001.0.0-SNAPSHOT", 100289)


@bp.get("/serverInfo")
def server_info(v: str) -> Any:
    s = state()
    cloud = s.flavour is Flavour.CLOUD
    numbers = list(s.version)
    major, minor, patch = numbers
    version, build = (
        CLOUD_BUILD
        if cloud
        else (f"{major}.{minor}.{patch}", major * 10**6 + minor * 10**4 + patch)
    )
    return {
        "baseUrl": s.base_url,
        "version": version,
        "versionNumbers": numbers,
        "deploymentType": "Cloud" if cloud else "DataCenter",
        "buildNumber": build,
        "buildDate": "2025-12-01T00:00:00.000+0000",
        "serverTime": s.now(),
        "scmInfo": "57a0ca5b4a0bb0ac5f3fee4764acb1c14e4d7e71",
        "serverTitle": "Jira",
    }


@bp.get("/myself")
def myself(v: str) -> Any:
    s = state()
    with s.lock:
        return _user_with_groups(actor().name, expand="groups" in request.args.get("expand", ""))


@bp.get("/user")
def user(v: str) -> Any:
    s = state()
    ref = request.args.get("accountId") if s.flavour is Flavour.CLOUD else None
    ref = ref or request.args.get("username") or request.args.get("key")
    if not ref:
        raise JiraApiError(400, "The user is identified by accountId (Cloud) or username/key.")
    with s.lock:
        return _user_with_groups(ref, expand="groups" in request.args.get("expand", ""))


def _user_with_groups(ref: str, *, expand: bool) -> dict[str, Any]:
    s = state()
    account = s.account(ref)
    user: dict[str, Any] = s.user_json(account, email=True)
    groups = [s.group_json(g) for g in account.groups] if expand else []
    user["locale"] = "en_US"
    user["groups"] = {"size": len(account.groups), "items": groups}
    user["applicationRoles"] = {"size": 1, "items": []}
    user["expand"] = "groups,applicationRoles"
    return user


@bp.get("/user/groups")
def user_groups(v: str) -> Any:
    s = state()
    if s.flavour is not Flavour.CLOUD:
        raise JiraApiError(404, "null for uri: /rest/api/2/user/groups")
    account_id = request.args.get("accountId")
    if not account_id:
        raise JiraApiError(400, "The accountId query parameter needs to be provided")
    with s.lock:
        account = s.account(account_id)
        return jsonify([s.group_json(g) for g in account.groups])


@bp.get("/field")
def fields(v: str) -> Any:
    s = state()
    with s.lock:
        return jsonify(fieldconfig.fields_json(s))


@bp.get("/priority")
def priorities(v: str) -> Any:
    return jsonify(shapes.priority_details(state().base_url))


@bp.get("/mypermissions")
def my_permissions(v: str) -> Any:
    s = state()
    wanted = [k.strip() for k in request.args.get("permissions", "").split(",") if k.strip()]
    if not wanted and s.flavour is Flavour.CLOUD:
        raise JiraApiError(400, "The 'permissions' query parameter is required.")
    unknown = [k for k in wanted if k not in catalog.PERMISSIONS]
    if unknown:
        raise JiraApiError(400, f"Invalid permission key: {unknown[0]}")
    account = actor()
    result = {}
    for key in wanted or list(catalog.PERMISSIONS):
        perm_id, name, kind = catalog.PERMISSIONS[key]
        result[key] = {
            "id": perm_id,
            "key": key,
            "name": name,
            "type": kind,
            "description": f"Ability to {name.lower()}.",
            "havePermission": account.can(key),
        }
    return {"permissions": result}


# ---------------------------------------------------------------- issues


@bp.post("/issue")
def create_issue(v: str) -> Any:
    s = state()
    with s.lock:
        issue = issues.create_issue(s, actor(), json_body(), version=v)
        return {"id": issue["id"], "key": issue["key"], "self": issue["self"]}, 201


@bp.get("/issue/<key>")
def get_issue(v: str, key: str) -> Any:
    s = state()
    wanted = shapes.parse_fields_param(request.args.getlist("fields"), shapes.ALL_FIELDS)
    with s.lock:
        return shapes.issue_view(s.issue(key, actor()), wanted, version=v)


@bp.put("/issue/<key>")
def edit_issue(v: str, key: str) -> Any:
    s = state()
    with s.lock:
        issue = issues.edit_issue(s, actor(), key, json_body(), version=v)
        if request.args.get("returnIssue") == "true" and s.flavour is Flavour.CLOUD:
            return shapes.issue_view(issue, [shapes.ALL_FIELDS], version=v)
    return Response(status=204)


@bp.get("/issue/<key>/editmeta")
def edit_meta(v: str, key: str) -> Any:
    s = state()
    with s.lock:
        issue = s.issue(key, actor())
        project = s.project(issue["fields"]["project"]["key"])
        type_id = issue["fields"]["issuetype"]["id"]
        return {"fields": screen_fields(project, type_id, fieldconfig.EDIT)}


def screen_fields(project: Project, type_id: str, operation: str) -> dict[str, Any]:
    """The fields of the screen ``operation`` shows, as create and edit metadata list them."""
    s = state()
    base = s.base_url
    allowed: dict[str, list[Any]] = {
        "priority": [shapes.priority_json(base, p[0]) for p in catalog.PRIORITIES],
        "components": [shapes.component_json(base, c, n) for c, n in project.components],
    }
    for custom in s.custom_fields.values():
        if custom.type in catalog.WITH_OPTIONS:
            options = fieldconfig.options_in(custom, project)
            allowed[custom.id] = [shapes.option_json(base, o.id, o.value) for o in options]
    by_id = {f["id"]: f for f in fieldconfig.fields_json(s)}
    meta = {}
    on_screen = fieldconfig.screen_operations(s, project, type_id, operation)
    for field_id, operations in on_screen.items():
        field = by_id[field_id]
        entry: dict[str, Any] = {
            "required": field_id == "summary",
            "schema": field["schema"],
            "name": field["name"],
            "key": field_id,
            "operations": list(operations),
        }
        if field_id in allowed:
            entry["allowedValues"] = allowed[field_id]
        if field_id == "labels":
            entry["autoCompleteUrl"] = f"{base}/rest/api/1.0/labels/suggest?query="
        meta[field_id] = entry
    return meta


# ---------------------------------------------------------------- comments


@bp.post("/issue/<key>/comment")
def add_comment(v: str, key: str) -> Any:
    s = state()
    with s.lock:
        comment = issues.add_comment(s, actor(), key, json_body(), version=v)
        return _comment_view(comment, v), 201


@bp.get("/issue/<key>/comment")
def comments(v: str, key: str) -> Any:
    s = state()
    start = int_arg("startAt", 0)
    size = int_arg("maxResults", 100, low=1, high=5000)
    with s.lock:
        issue = s.issue(key, actor())
        found = list(s.comments[issue["key"]])
    if request.args.get("orderBy", "").lstrip("+") == "-created":
        found.reverse()
    return {
        "startAt": start,
        "maxResults": size,
        "total": len(found),
        "comments": [_comment_view(c, v) for c in found[start : start + size]],
    }


def _comment_view(comment: dict[str, Any], version: str) -> dict[str, Any]:
    view = copy.deepcopy(comment)
    if version == "3":
        view["body"] = shapes.text_to_adf(view["body"])
    return view


# ---------------------------------------------------------------- properties


@bp.put("/issue/<key>/properties/<prop>")
def set_property(v: str, key: str, prop: str) -> Any:
    s = state()
    with s.lock:
        issue = s.issue(key, actor())
        value = json_body()
        if not actor().can("EDIT_ISSUES"):
            raise JiraApiError(403, "You do not have permission to edit issues in this project.")
        store = s.properties[issue["key"]]
        created = prop not in store
        store[prop] = value
    return Response(status=201 if created else 200)


@bp.get("/issue/<key>/properties/<prop>")
def get_property(v: str, key: str, prop: str) -> Any:
    s = state()
    with s.lock:
        issue = s.issue(key, actor())
        store = s.properties[issue["key"]]
        if prop not in store:
            raise JiraApiError(404, f"The property with key '{prop}' does not exist.")
        return {"key": prop, "value": store[prop]}


# ---------------------------------------------------------------- filters


def _filter(filter_id: str) -> Filter:
    found = state().filters.get(int(filter_id)) if filter_id.isdigit() else None
    if found is None:
        raise JiraApiError(
            400,
            "The selected filter is not available to you, perhaps it has been deleted or "
            "had its permissions changed.",
        )
    return found


@bp.put("/filter/<filter_id>")
def update_filter(v: str, filter_id: str) -> Any:
    """Change a filter's JQL (what an admin does when a board's filter loses ORDER BY Rank)."""
    s = state()
    body = json_body()
    jql = body.get("jql") if isinstance(body, dict) else None
    with s.lock:
        found = _filter(filter_id)
        if isinstance(jql, str):
            s.parse_jql(jql)  # a JqlError answers 400 like Jira
            found.jql = jql
    return get_filter(v, filter_id)


@bp.get("/filter/<filter_id>")
def get_filter(v: str, filter_id: str) -> Any:
    s = state()
    with s.lock:
        found = _filter(filter_id)
        base = s.base_url
        return {
            "self": f"{base}/rest/api/{v}/filter/{found.id}",
            "id": str(found.id),
            "name": found.name,
            "owner": s.user_json(s.accounts[found.owner]),
            "jql": found.jql,
            "viewUrl": f"{base}/issues/?filter={found.id}",
            "searchUrl": f"{base}/rest/api/{v}/search?jql={found.jql}",
            "favourite": False,
            "favouritedCount": 0,
            "sharePermissions": [],
            "editPermissions": [],
        }
