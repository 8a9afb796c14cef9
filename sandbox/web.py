"""Small helpers the sandbox's blueprints share: the state, the caller, bodies and paging."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request

from sandbox.state import Account, JiraApiError, JiraState


def state() -> JiraState:
    found: JiraState = current_app.extensions["sandbox"]
    return found


def actor() -> Account:
    """The authenticated account (set by the app's auth check)."""
    account: Account = g.account
    return account


def json_body(*, required: bool = True) -> Any:
    """The request's JSON, or a 400 in Jira's shape when it is not JSON."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise JiraApiError(400, "No content to map due to end-of-input")
        return None
    body = request.get_json(silent=True, force=True)
    if body is None:
        raise JiraApiError(400, "Unexpected character in the request body: it is not JSON.")
    return body


def int_arg(name: str, default: int, *, low: int = 0, high: int = 10_000) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise JiraApiError(400, f"The '{name}' parameter must be a whole number.") from None
    return max(low, min(high, value))


def page(items: list[Any], start: int, size: int) -> list[Any]:
    return items[start : start + size]


def paged(items: list[Any], key: str = "values", *, is_last: bool = False) -> dict[str, Any]:
    """One page of ``items`` as ``startAt``/``maxResults`` ask, under ``key``; ``is_last`` adds
    the flag Cloud's newer page beans carry."""
    start = int_arg("startAt", 0)
    size = int_arg("maxResults", 50, low=1, high=200)
    found = {"maxResults": size, "startAt": start, "total": len(items)}
    found[key] = page(items, start, size)
    if is_last:
        found["isLast"] = start + size >= len(items)
    return found
