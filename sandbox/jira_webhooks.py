"""Data Center 10's admin webhooks (``/rest/jira-webhook/1.0/webhooks``): list (paged by
``start``/``limit``), register, read, update and delete. Served only when the sandbox plays Data
Center 10 or later (``--jira-version 10.3.6``); before, Jira has no such path.

What is played, and from where (``connector.admin`` has the same sources): the path, and that a
9.x body's JQL filter is ignored here, from JRASERVER-78733; the body keeps its JQL in
``configuration.FILTERS`` beside ``EXCLUDE_BODY``, ``DESCRIPTION`` and the secret's ``SECRET``,
as strings, with ``active``; the answer's fields (``id``, ``name``, ``url``, ``active``,
``events``, ``configuration``, ``createdDate``, ``updatedDate``, ``scopeType``,
``sslVerificationRequired``) are those of Atlassian's Data Center REST spec. Assumed, as no
source says: the secret is not shown again; a 9.x body's ``filters``, ``excludeBody`` and
``secret`` are accepted and ignored (so its webhook sends every issue, unsigned).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.state import JiraApiError, JiraState, Webhook
from sandbox.web import actor, int_arg, json_body, state
from sandbox.webhook_admin import find_webhook, read_common

bp = Blueprint("jira_webhooks", __name__, url_prefix="/rest/jira-webhook/1.0")

BODY_KEYS = {"name", "url", "events", "active", "configuration", "sslVerificationRequired"}
IGNORED_KEYS = {"filters", "excludeBody", "secret", "enabled", "description"}  # 9.x's body
CONFIG_KEYS = {"FILTERS", "EXCLUDE_BODY", "DESCRIPTION", "SECRET"}


@bp.before_request
def _served() -> None:
    if not state().dc10:
        raise JiraApiError(404, f"null for uri: {request.path}")
    if not actor().can("ADMINISTER"):
        raise JiraApiError(403, "Only Jira administrators can manage webhooks.")


def _webhook_json(hook: Webhook) -> dict[str, Any]:
    configuration = {
        "EXCLUDE_BODY": str(hook.exclude_body).lower(),
        "DESCRIPTION": hook.description,
    }
    if hook.jql:
        configuration["FILTERS"] = hook.jql
    return {
        "id": hook.id,
        "name": hook.name,
        "url": hook.url,
        "active": hook.active,
        "events": list(hook.events),
        "configuration": configuration,
        "createdDate": hook.created_ms,
        "updatedDate": hook.updated_ms,
        "scopeType": "GLOBAL",
        "sslVerificationRequired": hook.ssl_verification,
    }


def _flag(value: Any, default: bool) -> bool | None:
    """A boolean that Jira takes as JSON or as its string; None when it is neither."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _read(s: JiraState, body: Any, hook_id: int, created_ms: int | None = None) -> Webhook:
    errors = read_common(body, BODY_KEYS | IGNORED_KEYS)
    name, url, events = body.get("name"), body.get("url"), body.get("events", [])
    active = _flag(body.get("active"), True)
    if active is None:
        errors["active"] = "active must be true or false."
    config = body.get("configuration") or {}
    if not isinstance(config, Mapping) or not all(isinstance(v, str) for v in config.values()):
        errors["configuration"] = "configuration must map names to strings."
        config = {}
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        errors["configuration"] = f"Unknown configuration {unknown[0]}."
    exclude = _flag(config.get("EXCLUDE_BODY"), False)
    if exclude is None:
        errors["configuration"] = "EXCLUDE_BODY must be true or false."
    if errors:
        raise JiraApiError(400, errors=errors)
    jql = str(config.get("FILTERS", "")) if s.webhook_filters_kept else ""
    query = s.parse_jql(jql) if jql.strip() else None
    now = s.now_ms()
    return Webhook(
        id=hook_id,
        name=str(name),
        url=str(url),
        events=list(events),
        jql=jql,
        exclude_body=bool(exclude),
        secret=config.get("SECRET") or None,
        updated_by=actor().name,
        updated_ms=now,
        query=query,
        active=bool(active),
        description=str(config.get("DESCRIPTION", "")),
        created_ms=now if created_ms is None else created_ms,
        ssl_verification=body.get("sslVerificationRequired") is not False,
    )


@bp.get("/webhooks")
def list_webhooks() -> Any:
    s = state()
    start, limit = int_arg("start", 0), int_arg("limit", 100, low=1, high=1000)
    event = request.args.get("event")
    with s.lock:
        hooks = [h for h in s.webhooks.values() if not event or event in h.events]
        return jsonify([_webhook_json(h) for h in hooks[start : start + limit]])


@bp.post("/webhooks")
def register() -> Any:
    s = state()
    with s.lock:
        hook = _read(s, json_body(), s.next_id())
        s.webhooks[hook.id] = hook
        return _webhook_json(hook), 201


@bp.get("/webhooks/<hook_id>")
def get_webhook(hook_id: str) -> Any:
    s = state()
    with s.lock:
        return _webhook_json(find_webhook(s, hook_id))


@bp.put("/webhooks/<hook_id>")
def update_webhook(hook_id: str) -> Any:
    s = state()
    with s.lock:
        old = find_webhook(s, hook_id)
        hook = _read(s, json_body(), old.id, created_ms=old.created_ms)
        s.webhooks[hook.id] = hook
        return _webhook_json(hook)


@bp.delete("/webhooks/<hook_id>")
def delete_webhook(hook_id: str) -> Any:
    s = state()
    with s.lock:
        del s.webhooks[find_webhook(s, hook_id).id]
    return Response(status=204)
