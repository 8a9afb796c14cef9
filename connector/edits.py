"""The request bodies that carry a ``Plan`` out, built here and sent by ``connector.client``.

Pure: a plan in, plain JSON-ready data out. Jira's shapes (v2 REST): labels change through
``update`` operations so labels set by people survive; priority and the impact field are set
through ``fields``.
"""

from __future__ import annotations

from typing import Any

from impact.model import Plan


def edit_body(
    plan: Plan, *, field_id: str | None = None, multi_select: bool = False
) -> dict[str, Any] | None:
    """The body of ``PUT /rest/api/2/issue/{key}`` for ``plan``; ``None`` when it edits nothing.

    The inferred option is written only when ``field_id`` is known; ``multi_select`` fields take a
    list of options.
    """
    label_ops = [{"add": label} for label in plan.add_labels]
    label_ops += [{"remove": label} for label in plan.remove_labels]
    fields: dict[str, Any] = {}
    if plan.priority:
        fields["priority"] = {"name": plan.priority}
    if plan.field_value and field_id:
        option = {"value": plan.field_value}
        fields[field_id] = [option] if multi_select else option

    body: dict[str, Any] = {}
    if label_ops:
        body["update"] = {"labels": label_ops}
    if fields:
        body["fields"] = fields
    return body or None


def edit_params(*, notify_users: bool) -> dict[str, str]:
    """Query parameters of the edit. Jira notifies watchers by default; ``notifyUsers=false`` needs
    admin rights and is silently ignored without them."""
    return {} if notify_users else {"notifyUsers": "false"}
