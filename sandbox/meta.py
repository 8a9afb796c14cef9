"""Project metadata: a project and its create metadata (Cloud and Data Center 8.4+)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from sandbox import catalog, fieldconfig, shapes
from sandbox.platform import screen_fields
from sandbox.state import Flavour, JiraApiError, Project
from sandbox.web import actor, paged, state

bp = Blueprint("meta", __name__, url_prefix="/rest/api/<any('2','3'):v>")


def _visible_project(key: str) -> Project:
    s = state()
    project = s.project(key)
    if not actor().can("BROWSE_PROJECTS"):
        raise JiraApiError(404, f"No project could be found with key '{key}'.")
    return project


@bp.get("/project/<key>")
def project(v: str, key: str) -> Any:
    s = state()
    with s.lock:
        found = _visible_project(key)
        view = shapes.project_json(s.base_url, found)
        view["issueTypes"] = [shapes.issuetype_json(s.base_url, t[0]) for t in catalog.ISSUE_TYPES]
        view["components"] = [shapes.component_json(s.base_url, c, n) for c, n in found.components]
        return view


def _meta_key(cloud_key: str) -> str:
    """Cloud names the list ``issueTypes`` / ``fields``; Data Center calls both ``values``."""
    return cloud_key if state().flavour is Flavour.CLOUD else "values"


@bp.get("/issue/createmeta/<key>/issuetypes")
def createmeta_types(v: str, key: str) -> Any:
    s = state()
    with s.lock:
        _visible_project(key)
        types = [shapes.issuetype_json(s.base_url, t[0]) for t in catalog.ISSUE_TYPES]
    return paged(types, _meta_key("issueTypes"))


@bp.get("/issue/createmeta/<key>/issuetypes/<type_id>")
def createmeta_fields(v: str, key: str, type_id: str) -> Any:
    s = state()
    with s.lock:
        found = _visible_project(key)
        if type_id not in {t[0] for t in catalog.ISSUE_TYPES}:
            raise JiraApiError(404, f"Issue type with id {type_id} does not exist.")
        screen = screen_fields(found, type_id, fieldconfig.CREATE)
        fields = [{**meta, "fieldId": field_id} for field_id, meta in screen.items()]
    return paged(fields, _meta_key("fields"))
