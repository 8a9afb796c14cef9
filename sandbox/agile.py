"""Jira Software REST (``/rest/agile/1.0``): boards, their configuration and issues, ranking."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from sandbox import catalog, ranking, shapes
from sandbox.state import Board, JiraState
from sandbox.web import actor, int_arg, json_body, state

bp = Blueprint("agile", __name__, url_prefix="/rest/agile/1.0")


def _board_json(s: JiraState, board: Board) -> dict[str, Any]:
    project = s.projects[board.project]
    return {
        "id": board.id,
        "self": f"{s.base_url}/rest/agile/1.0/board/{board.id}",
        "name": board.name,
        "type": board.type,
        "location": {
            "projectId": int(project.id),
            "displayName": f"{project.name} ({project.key})",
            "projectName": project.name,
            "projectKey": project.key,
            "projectTypeKey": "software",
            "avatarURI": f"/secure/projectavatar?size=small&pid={project.id}",
            "name": f"{project.name} ({project.key})",
        },
    }


@bp.get("/board")
def boards() -> Any:
    s = state()
    start = int_arg("startAt", 0)
    size = int_arg("maxResults", 50, low=1, high=50)
    project_ref = request.args.get("projectKeyOrId")
    kind = request.args.get("type")
    name = request.args.get("name", "").lower()
    with s.lock:
        found = [
            b
            for b in sorted(s.boards.values(), key=lambda b: b.id)
            if (not project_ref or project_ref in (b.project, s.projects[b.project].id))
            and (not kind or b.type in kind.split(","))
            and name in b.name.lower()
        ]
        values = [_board_json(s, b) for b in found[start : start + size]]
    return {
        "maxResults": size,
        "startAt": start,
        "total": len(found),
        "isLast": start + size >= len(found),
        "values": values,
    }


@bp.get("/board/<board_id>")
def board(board_id: str) -> Any:
    s = state()
    with s.lock:
        return _board_json(s, s.board(board_id))


@bp.get("/board/<board_id>/configuration")
def configuration(board_id: str) -> Any:
    s = state()
    base = s.base_url
    with s.lock:
        found = s.board(board_id)
        project = s.projects[found.project]
    columns = [
        {
            "name": name,
            "statuses": [{"id": status_id, "self": f"{base}/rest/api/2/status/{status_id}"}],
        }
        for status_id, name, _ in catalog.STATUSES
    ]
    return {
        "id": found.id,
        "name": found.name,
        "type": found.type,
        "self": f"{base}/rest/agile/1.0/board/{found.id}/configuration",
        "location": {"type": "project", "projectKeyOrId": project.key},
        "filter": {
            "id": str(found.filter_id),
            "self": f"{base}/rest/api/2/filter/{found.filter_id}",
        },
        "subQuery": {"query": ""},
        "columnConfig": {"columns": columns, "constraintType": "none"},
        "ranking": {"rankCustomFieldId": catalog.RANK_FIELD_NUMBER},
    }


@bp.get("/board/<board_id>/issue")
def board_issues(board_id: str) -> Any:
    """The board filter's issues (ANDed with ``jql``), in the filter's order: by rank."""
    s = state()
    start = int_arg("startAt", 0)
    size = int_arg("maxResults", 50, low=1, high=1000)
    wanted = shapes.parse_fields_param(request.args.getlist("fields"), shapes.ALL_FIELDS)
    with s.lock:
        found = s.board(board_id)
        board_query = s.parse_jql(s.board_filter(found).jql)
        extra = request.args.get("jql", "").strip()
        extra_query = s.parse_jql(extra) if extra else None
        matching = [
            i
            for i in s.visible_issues(actor())
            if board_query.matches(i) and (extra_query is None or extra_query.matches(i))
        ]
        # A jql with its own ORDER BY sorts the page, as Jira does; otherwise the board's order.
        by = extra_query if extra_query is not None and extra_query.order_by else board_query
        ordered = by.sort(matching)
        chosen = [shapes.issue_view(i, wanted) for i in ordered[start : start + size]]
    return {
        "expand": "schema,names",
        "startAt": start,
        "maxResults": size,
        "total": len(ordered),
        "issues": chosen,
    }


@bp.put("/issue/rank")
def rank() -> Any:
    s = state()
    with s.lock:
        entries = ranking.rank_issues(s, actor(), json_body())
    if entries is None:
        return Response(status=204)
    return {"entries": entries}, 207
