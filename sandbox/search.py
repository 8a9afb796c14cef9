"""Issue search: Cloud's ``/search/jql`` (``nextPageToken``; the old ``/search`` is gone: 410)
and Data Center's ``/search`` (``startAt``/``total``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, request

from sandbox import shapes
from sandbox.state import Flavour, JiraApiError, JiraState
from sandbox.web import actor, json_body, state

bp = Blueprint("search", __name__, url_prefix="/rest/api/<any('2','3'):v>")

REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at "
    "https://developer.atlassian.com/changelog/#CHANGE-2046"
)
UNBOUNDED = (
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
)
BAD_TOKEN = "The provided next page token is invalid or expired."
MAX_PAGE_IDS = 5000  # when only ids are asked for
MAX_PAGE = 100


def _params() -> Mapping[str, Any]:
    """GET query or POST body, as one mapping of parameter -> value."""
    if request.method == "POST":
        body = json_body()
        if not isinstance(body, Mapping):
            raise JiraApiError(400, "The request body must be a JSON object.")
        return body
    args: dict[str, Any] = {k: request.args.get(k) for k in request.args}
    args["fields"] = request.args.getlist("fields")
    return args


def _int(params: Mapping[str, Any], name: str, default: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        return max(0, min(high, int(raw)))
    except (TypeError, ValueError):
        raise JiraApiError(400, f"The '{name}' parameter must be a whole number.") from None


def _matching(s: JiraState, jql: str) -> list[dict[str, Any]]:
    query = s.parse_jql(jql)
    found = [i for i in s.visible_issues(actor()) if query.matches(i)]
    found.sort(key=_key_order)  # Jira's order when the query has no ORDER BY
    return [dict(i) for i in query.sort(found)]


def _key_order(issue: Mapping[str, Any]) -> tuple[str, int]:
    project, _, number = issue["key"].rpartition("-")
    return project, int(number)


def _fields(params: Mapping[str, Any], default: str) -> list[str]:
    raw = params.get("fields")
    values = raw if isinstance(raw, list) else [raw] if raw else []
    return shapes.parse_fields_param(values, default)


@bp.route("/search", methods=["GET", "POST"])
def search(v: str) -> Any:
    s = state()
    if s.flavour is Flavour.CLOUD:
        raise JiraApiError(410, REMOVED)
    params = _params()
    start = _int(params, "startAt", 0, 1_000_000)
    size = _int(params, "maxResults", 50, 1000)
    wanted = _fields(params, shapes.NAVIGABLE)
    with s.lock:
        found = _matching(s, str(params.get("jql") or ""))
        chosen = [shapes.issue_view(i, wanted, version=v) for i in found[start : start + size]]
    return {
        "expand": "schema,names",
        "startAt": start,
        "maxResults": size,
        "total": len(found),
        "issues": chosen,
    }


@bp.route("/search/jql", methods=["GET", "POST"])
def search_jql(v: str) -> Any:
    s = state()
    if s.flavour is not Flavour.CLOUD:
        raise JiraApiError(404, "null for uri: /rest/api/2/search/jql")
    params = _params()
    jql = str(params.get("jql") or "")
    wanted = _fields(params, "id")
    only_ids = set(wanted) <= {"id", "key"}
    size = _int(params, "maxResults", 50, MAX_PAGE_IDS if only_ids else MAX_PAGE) or 50
    with s.lock:
        if not s.parse_jql(jql).is_bounded:
            raise JiraApiError(400, UNBOUNDED)
        start = _read_token(params.get("nextPageToken"), jql)
        found = _matching(s, jql)
        chosen = [
            shapes.issue_view(i, wanted, version=v, id_only_ok=True)
            for i in found[start : start + size]
        ]
    result: dict[str, Any] = {"issues": chosen, "isLast": start + size >= len(found)}
    if not result["isLast"]:
        result["nextPageToken"] = _make_token(start + size, jql)
    return result


def _make_token(offset: int, jql: str) -> str:
    digest = hashlib.sha256(jql.encode()).hexdigest()[:12]
    return base64.urlsafe_b64encode(f"{offset}:{digest}".encode()).decode()


def _read_token(token: Any, jql: str) -> int:
    if token in (None, ""):
        return 0
    try:
        offset, _, digest = base64.urlsafe_b64decode(str(token)).decode().partition(":")
        if digest != hashlib.sha256(jql.encode()).hexdigest()[:12]:
            raise ValueError(digest)
        return int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise JiraApiError(400, BAD_TOKEN) from None
