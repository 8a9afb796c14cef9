"""The control API (``/_sandbox``, no auth) that tests and the demo use to drive and inspect
the sandbox: act as a person, switch faults and limits on, read the request log and webhook
deliveries, and do what an admin does by hand in Jira's UI (screens, options, permissions)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, request

from sandbox import catalog, fieldconfig, issues
from sandbox.hooks import HookDispatcher
from sandbox.limits import parse_limits
from sandbox.state import JiraApiError, JiraState, jira_time
from sandbox.web import int_arg, json_body, state

bp = Blueprint("control", __name__, url_prefix="/_sandbox")

MAX_WAIT_S = 30.0
MAX_BULK = 1000  # issues one bulk creation makes
SHORTHANDS = ("summary", "description", "labels", "impact", "priority", "components", "links")


def _dispatcher() -> HookDispatcher | None:
    found: HookDispatcher | None = current_app.extensions.get("sandbox.hooks")
    return found


def _body() -> Mapping[str, Any]:
    body = json_body(required=False) or {}
    if not isinstance(body, Mapping):
        raise JiraApiError(400, "The request body must be a JSON object.")
    return body


def _impact_id() -> str:
    """The id of the field named as the seeds name the impact field; 400 while there is none."""
    found = fieldconfig.named(state(), catalog.IMPACT_NAME)
    if found is None:
        raise JiraApiError(400, f"Jira has no field named {catalog.IMPACT_NAME!r} (yet).")
    return found.id


def _fields_from(body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``fields`` and ``update`` from a body using the short keys (impact, links, …) or not."""
    fields = dict(body.get("fields") or {})
    update = dict(body.get("update") or {})
    for key in ("summary", "description", "labels"):
        if key in body:
            fields[key] = body[key]
    if "impact" in body:
        fields[_impact_id()] = None if body["impact"] is None else {"value": body["impact"]}
    if "priority" in body:
        fields["priority"] = {"name": body["priority"]}
    if "components" in body:
        fields["components"] = [{"name": c} for c in body["components"]]
    if "links" in body:
        update["issuelinks"] = [
            {"add": {"type": {"name": "Relates"}, "outwardIssue": {"key": key}}}
            for key in body["links"]
        ]
    return fields, update


@bp.get("/health")
def health() -> Any:
    s = state()
    return {
        "status": "ok",
        "flavour": s.flavour.value,
        "seed": s.seed_name,
        "field": s.with_field,
        "baseUrl": s.base_url,
    }


@bp.post("/issues")
def create_issue() -> Any:
    """An issue, as a person creates it (``as``, default ana), with the short keys; ``created``
    and ``resolved`` (ISO 8601 times) date it back and resolve it, as an import would."""
    s = state()
    with s.lock:
        issue = _create(s, _body())
        return {"id": issue["id"], "key": issue["key"], "self": issue["self"]}, 201


@bp.post("/issues/bulk")
def create_issues() -> Any:
    """``{"issues": [body, …]}``: up to ``MAX_BULK`` issues as ``POST /issues`` makes them."""
    s = state()
    bodies = _body().get("issues")
    if not isinstance(bodies, list) or not 1 <= len(bodies) <= MAX_BULK:
        raise JiraApiError(400, f"issues must be a list of 1 to {MAX_BULK} issue bodies")
    if not all(isinstance(body, Mapping) for body in bodies):
        raise JiraApiError(400, "each issue body must be a JSON object")
    with s.lock:
        return {"keys": [_create(s, body)["key"] for body in bodies]}, 201


def _create(s: JiraState, body: Mapping[str, Any]) -> dict[str, Any]:
    fields, update = _fields_from(body)
    fields.setdefault("project", {"key": body.get("project", "SHOP")})
    fields.setdefault("issuetype", {"name": body.get("issuetype", "Task")})
    created, resolved = _time(body, "created"), _time(body, "resolved")
    issue = issues.create_issue(
        s, s.account(str(body.get("as", "ana"))), {"fields": fields, "update": update}
    )
    if created is not None:
        issue["fields"]["created"] = issue["fields"]["updated"] = created
    if resolved is not None:
        issues.resolve(s, issue, resolved)
    return issue


def _time(body: Mapping[str, Any], key: str) -> str | None:
    """``body[key]``, an ISO 8601 time (UTC when it names no offset), in Jira's form."""
    raw = body.get(key)
    if raw is None:
        return None
    try:
        stamp = datetime.fromisoformat(str(raw))
    except ValueError:
        raise JiraApiError(400, f"{key} must be an ISO 8601 time, not {raw!r}") from None
    return jira_time(stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC))


@bp.get("/issues/<key>")
def show_issue(key: str) -> Any:
    s = state()
    with s.lock:
        return s.snapshot(s.issue(key))


@bp.post("/issues/<key>/edit")
def edit_issue(key: str) -> Any:
    s = state()
    body = _body()
    fields, update = _fields_from(body)
    with s.lock:
        issues.edit_issue(
            s,
            s.account(str(body.get("as", "ana"))),
            key,
            {"fields": fields, "update": update},
            status=body.get("status"),
        )
    return Response(status=204)


@bp.post("/issues/<key>/comment")
def comment(key: str) -> Any:
    s = state()
    body = _body()
    with s.lock:
        return issues.add_comment(s, s.account(str(body.get("as", "ana"))), key, body), 201


@bp.post("/faults")
def add_faults() -> Any:
    s = state()
    body = _body()
    try:
        if "rank_fail" in body:
            keys = body["rank_fail"]
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise ValueError("rank_fail must be a list of issue keys")
            times = body.get("times", 1)
            if not isinstance(times, int) or not 1 <= times <= 1000:
                raise ValueError("times must be a whole number from 1 to 1000")
            s.faults.fail_ranks(keys, times)
        elif "limits" in body:
            limits = body["limits"]
            if not isinstance(limits, Mapping):
                raise ValueError("limits must be an object")
            s.limits.set(parse_limits(limits))
        else:
            for spec in body.get("faults", [body]):
                s.faults.add(spec)
    except ValueError as exc:
        raise JiraApiError(400, str(exc)) from None
    return _faults_now(), 201


@bp.post("/outage")
def start_outage() -> Any:
    """The whole API down for ``seconds``: ``{"mode": "down" | "502" | "503" | "504",
    "seconds": 600, "retry_after": 5}`` (``down``: connections dropped unanswered)."""
    try:
        state().faults.start_outage(_body())
    except ValueError as exc:
        raise JiraApiError(400, str(exc)) from None
    return _faults_now(), 201


@bp.delete("/outage")
def end_outage() -> Any:
    state().faults.end_outage()
    return Response(status=204)


@bp.get("/faults")
def list_faults() -> Any:
    return _faults_now()


@bp.delete("/faults")
def clear_faults() -> Any:
    state().faults.clear()
    state().limits.clear()
    return Response(status=204)


def _faults_now() -> dict[str, Any]:
    s = state()
    return s.faults.describe() | {"limits": s.limits.describe()}


@bp.get("/calls")
def calls() -> Any:
    s = state()
    found = s.calls_since(int_arg("since", 0, high=10**12))
    return {"calls": found, "last": s.last_call}


@bp.get("/deliveries")
def deliveries() -> Any:
    dispatcher = _dispatcher()
    if dispatcher is None:
        return {"deliveries": [], "idle": True}
    wait = request.args.get("wait")
    idle = dispatcher.wait_idle(min(float(wait), MAX_WAIT_S)) if wait else dispatcher.wait_idle(0)
    return {"deliveries": dispatcher.records(int_arg("since", 0, high=10**9)), "idle": idle}


@bp.get("/board/<board_id>")
def board(board_id: str) -> Any:
    s = state()
    with s.lock:
        found = s.board(board_id)
        impact = fieldconfig.named(s, catalog.IMPACT_NAME)
        query = s.parse_jql(s.board_filter(found).jql)
        ordered = query.sort([i for i in s.issues.values() if query.matches(i)])
        rows = [
            {
                "key": i["key"],
                "summary": i["fields"]["summary"],
                "labels": list(i["fields"]["labels"]),
                "impact": (i["fields"].get(impact.id) or {}).get("value") if impact else None,
                "priority": i["fields"]["priority"]["name"],
                "status": i["fields"]["status"]["name"],
                "rank": i["fields"][catalog.RANK_FIELD],
            }
            for i in ordered
        ]
    return {"board": found.id, "name": found.name, "issues": rows}


@bp.post("/reset")
def reset() -> Any:
    s = state()
    body = _body()
    with_field = body.get("field")
    if with_field is not None and not isinstance(with_field, bool):
        raise JiraApiError(400, "field must be true or false")
    try:
        s.reset(body.get("seed"), with_field=with_field)
    except ValueError as exc:
        raise JiraApiError(400, str(exc)) from None
    dispatcher = _dispatcher()
    if dispatcher is not None:
        dispatcher.clear()
    return {"seed": s.seed_name, "flavour": s.flavour.value, "field": s.with_field}


@bp.post("/webhook-filters")
def webhook_filters() -> Any:
    """``{"kept": false}``: Data Center 10's webhook API drops the JQL filter of what it is sent
    from then on (as it does a 9.x body's), to play a Jira whose filter cannot be confirmed."""
    s = state()
    kept = _body().get("kept")
    if not isinstance(kept, bool):
        raise JiraApiError(400, "kept must be true or false")
    with s.lock:
        s.webhook_filters_kept = kept
    return {"kept": kept, "version": ".".join(map(str, s.version))}


@bp.post("/permissions")
def permissions() -> Any:
    s = state()
    body = _body()
    grant, revoke = list(body.get("grant", [])), list(body.get("revoke", []))
    unknown = sorted(set(grant + revoke) - set(catalog.PERMISSIONS))
    if unknown:
        raise JiraApiError(400, f"Unknown permissions: {', '.join(unknown)}")
    with s.lock:
        account = s.account(str(body.get("user", "impact-bot")))
        account.permissions |= set(grant)
        account.permissions -= set(revoke)
        return {"user": account.name, "permissions": sorted(account.permissions)}


_CREDENTIALS = ("api_token", "pat", "scoped_token", "client_secret")


@bp.post("/credentials")
def credentials() -> Any:
    """Change an account's credentials as an admin would (``user``, default the service
    account): a new ``api_token``, ``pat``, ``scoped_token`` or ``client_secret`` (the old one
    is refused from then on: it expired, or was revoked), the ``scopes`` its scoped token and
    OAuth client hold, ``token_seconds`` (the lifetime of OAuth tokens issued from now on), and
    ``expire_oauth_tokens`` (every OAuth token issued so far stops working)."""
    s = state()
    body = _body()
    with s.lock:
        account = s.account(str(body.get("user", "impact-bot")))
        for name in _CREDENTIALS:
            if name in body:
                setattr(account, name, str(body[name]))
        if "scopes" in body:
            account.scopes = {str(scope) for scope in body["scopes"]}
        if "token_seconds" in body:
            s.token_seconds = float(body["token_seconds"])
        if body.get("expire_oauth_tokens"):
            s.oauth_tokens.clear()
        return {
            "user": account.name,
            "scopes": sorted(account.scopes),
            "cloud_id": s.cloud_id,
            "token_seconds": s.token_seconds,
        }


@bp.post("/projects/<key>/screen")
def screen(key: str) -> Any:
    """Take fields off (or put them on) every create and edit screen of a project."""
    s = state()
    body = _body()
    with s.lock:
        project = s.project(key)
        known = set(catalog.SCREEN_OPERATIONS) | set(s.custom_fields)
        screens = fieldconfig.project_screens(s, project)
        for screen in screens:
            on_screen = {f for tab in screen.tabs for f in tab.fields}
            screen.tabs[0].fields += [
                f for f in body.get("add", []) if f in known and f not in on_screen
            ]
            for tab in screen.tabs:
                tab.fields = [f for f in tab.fields if f not in body.get("remove", [])]
        return {
            "project": project.key,
            "screens": {s.name: [f for t in s.tabs for f in t.fields] for s in screens},
        }


@bp.post("/fields/<field_id>/options")
def options(field_id: str) -> Any:
    """Add options to (``add``) or disable options of (``disable``) the field's global context,
    or of the context ``context`` names."""
    s = state()
    body = _body()
    with s.lock:
        found = fieldconfig.custom_field(s, field_id)
        wanted = str(body.get("context", ""))
        context = next(
            (c for c in found.contexts if c.id == wanted or (not wanted and c.is_global)), None
        )
        if context is None:
            raise JiraApiError(404, "The context was not found.")
        taken = {o.value for o in context.options}
        fieldconfig.add_options(s, context, [v for v in body.get("add", []) if v not in taken])
        for option in context.options:
            option.disabled = option.disabled or option.value in body.get("disable", [])
        return {"context": context.id, "options": [vars(o) for o in context.options]}
