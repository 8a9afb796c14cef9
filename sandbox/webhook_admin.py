"""Admin webhooks (``/rest/webhooks/1.0/webhook``): register, list, update and delete. Cloud and
Data Center before 10; Data Center 10 moved them (``sandbox.jira_webhooks``) and answers here as
Jira answers a path it does not serve."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.hooks import is_loopback_url
from sandbox.state import JiraApiError, JiraState, Webhook
from sandbox.web import actor, json_body, state

bp = Blueprint("webhook_admin", __name__, url_prefix="/rest/webhooks/1.0")

JQL_SECTION = "issue-related-events-section"
BODY_KEYS = {"name", "url", "events", "filters", "excludeBody", "secret", "enabled", "description"}


def _webhook_json(s: JiraState, hook: Webhook) -> dict[str, Any]:
    owner = s.accounts.get(hook.updated_by)
    return {
        "self": f"{s.base_url}/rest/webhooks/1.0/webhook/{hook.id}",
        "name": hook.name,
        "url": hook.url,
        "events": list(hook.events),
        "filters": {JQL_SECTION: hook.jql},
        "excludeBody": hook.exclude_body,
        "enabled": True,
        "lastUpdatedUser": (owner.account_id if s.flavour == "cloud" else owner.key)
        if owner
        else None,
        "lastUpdatedDisplayName": owner.display_name if owner else None,
        "lastUpdated": hook.updated_ms,
        "isSigned": bool(hook.secret),
    }


def _admin() -> None:
    if not actor().can("ADMINISTER"):
        raise JiraApiError(403, "Only Jira administrators can manage webhooks.")


@bp.before_request
def _served() -> None:
    if state().dc10:  # the resource is gone (JRASERVER-78733): the path is not found
        raise JiraApiError(404, f"null for uri: {request.path}")


def read_common(body: Any, keys: set[str]) -> dict[str, str]:
    """Check what either API's body has alike: a JSON object of ``keys``, whose name, URL and
    events are refused (400) at once or returned as field errors."""
    if not isinstance(body, Mapping):
        raise JiraApiError(400, "The request body must be a JSON object.")
    unknown = sorted(set(body) - keys)
    if unknown:
        raise JiraApiError(400, f'Unrecognized field "{unknown[0]}"')
    errors: dict[str, str] = {}
    name, url = body.get("name"), body.get("url")
    if not isinstance(name, str) or not name.strip():
        errors["name"] = "The name is required."
    if not isinstance(url, str) or not is_loopback_url(url):
        errors["url"] = "The sandbox delivers only to http(s) URLs on loopback (127.0.0.1)."
    events = body.get("events", [])
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        errors["events"] = "Events must be a list of event names."
    return errors


def _read(s: JiraState, body: Any, hook_id: int) -> Webhook:
    errors = read_common(body, BODY_KEYS)
    name, url, events = body.get("name"), body.get("url"), body.get("events", [])
    filters = body.get("filters") or {}
    jql = filters.get(JQL_SECTION, "") if isinstance(filters, Mapping) else None
    if not isinstance(jql, str):
        errors["filters"] = f"filters.{JQL_SECTION} must be a JQL string."
    secret = body.get("secret")
    if secret is not None and not isinstance(secret, str):
        errors["secret"] = "The secret must be a string."
    if errors:
        raise JiraApiError(400, errors=errors)
    query = s.parse_jql(str(jql)) if str(jql).strip() else None
    return Webhook(
        id=hook_id,
        name=str(name),
        url=str(url),
        events=list(events),
        jql=str(jql),
        exclude_body=bool(body.get("excludeBody", False)),
        secret=secret or None,
        updated_by=actor().name,
        updated_ms=s.now_ms(),
        query=query,
    )


def find_webhook(s: JiraState, hook_id: str) -> Webhook:
    """The webhook of that id (either API's), or Jira's 404."""
    found = s.webhooks.get(int(hook_id)) if hook_id.isdigit() else None
    if found is None:
        raise JiraApiError(404, f"Webhook with id {hook_id} does not exist.")
    return found


@bp.get("/webhook")
def list_webhooks() -> Any:
    s = state()
    with s.lock:
        _admin()
        return jsonify([_webhook_json(s, h) for h in s.webhooks.values()])


@bp.post("/webhook")
def register() -> Any:
    s = state()
    with s.lock:
        _admin()
        hook = _read(s, json_body(), s.next_id())
        s.webhooks[hook.id] = hook
        return _webhook_json(s, hook), 201


@bp.get("/webhook/<hook_id>")
def get_webhook(hook_id: str) -> Any:
    s = state()
    with s.lock:
        _admin()
        return _webhook_json(s, find_webhook(s, hook_id))


@bp.put("/webhook/<hook_id>")
def update_webhook(hook_id: str) -> Any:
    s = state()
    with s.lock:
        _admin()
        old = find_webhook(s, hook_id)
        hook = _read(s, json_body(), old.id)
        s.webhooks[hook.id] = hook
        return _webhook_json(s, hook)


@bp.delete("/webhook/<hook_id>")
def delete_webhook(hook_id: str) -> Any:
    s = state()
    with s.lock:
        _admin()
        del s.webhooks[find_webhook(s, hook_id).id]
    return Response(status=204)
