"""End to end over real HTTP: the Jira sandbox, gunicorn running the app factory and the queue
worker, each its own process on 127.0.0.1, started from the Procfile as a platform would.

Assertions read the sandbox's state (labels, fields, comments, board order) and its request log
(the Jira calls the product made per issue, and their bodies against Atlassian's specs).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest

from sandbox.stack import Stack
from tests.spec_check import find_operation, validate_request
from webhooks.signature import sign

pytestmark = pytest.mark.e2e

BLOCKING = "Blocks paying customers"


def writes_to(calls: list[dict[str, Any]], key: str) -> list[str]:
    """The product's calls about one issue, as "METHOD path" (the sandbox's own log)."""
    return [
        f"{c['method']} {c['path']}"
        for c in calls
        if c["user"] == "impact-bot" and f"/issue/{key}" in c["path"]
    ]


def issue(stack: Stack, key: str) -> dict[str, Any]:
    found: dict[str, Any] = stack.control("GET", f"/issues/{key}")
    return found


@pytest.fixture(scope="module", params=["cloud", "dc"])
def stack(request, tmp_path_factory):
    flavour = request.param
    with Stack(tmp_path_factory.mktemp(f"e2e-{flavour}"), flavour=flavour, seed="empty") as running:
        running.register_webhook()
        yield running


@pytest.fixture(scope="module")
def triaged(stack):
    """Issues filed as people file them, triaged by the running product. Each test reads its
    own: one that changes an issue has it to itself, so the tests hold in any order."""
    keys = {
        "missing": stack.create_issue(
            summary="Black medium-point pens", description="For logistics"
        ),
        "set later": stack.create_issue(summary="Whiteboard markers", description="For the team"),
        "person": stack.create_issue(
            summary="Payments page is blank", impact=BLOCKING, priority="Low"
        ),
        "rule": stack.create_issue(
            summary="Coupon code rejected", issuetype="Bug", components=["Checkout"], labels=["web"]
        ),
    }
    stack.settle()
    return {"keys": keys, "calls": stack.calls()}  # the log before the tests' own reads


def test_issue_without_impact_gets_label_and_one_ask(stack, triaged):
    key = triaged["keys"]["missing"]
    fields = issue(stack, key)["fields"]
    assert fields["labels"] == ["needs-customer-impact"]
    [ask] = stack.comments(key)
    assert "Blocks paying customers" in ask["body"]
    assert "paying customers is done first" in ask["body"]
    # the creation's body is the issue as it is, and nothing can have asked before: no read
    assert Counter(writes_to(triaged["calls"], key)) == {
        f"POST /rest/api/2/issue/{key}/comment": 1,
        f"PUT /rest/api/2/issue/{key}": 1,
    }


def test_person_set_impact_gets_level_label_and_priority_no_comment(stack, triaged):
    key = triaged["keys"]["person"]
    fields = issue(stack, key)["fields"]
    assert fields["labels"] == ["customer-impact-blocking"]
    assert fields["priority"]["name"] == "Highest"
    assert stack.comments(key) == []
    assert writes_to(triaged["calls"], key) == [f"PUT /rest/api/2/issue/{key}"]


def test_rule_match_adds_level_and_inferred_labels_and_keeps_own(stack, triaged):
    key = triaged["keys"]["rule"]
    fields = issue(stack, key)["fields"]
    assert sorted(fields["labels"]) == [
        "customer-impact-degraded",
        "customer-impact-inferred",
        "web",
    ]
    assert fields["customfield_10042"] is None  # write_field = false by default
    assert writes_to(triaged["calls"], key) == [f"PUT /rest/api/2/issue/{key}"]


def test_echoes_of_own_edits_write_nothing_more(stack, triaged):
    seen = stack.last_call()
    echoes = [d for d in stack.control("GET", "/deliveries")["deliveries"] if d.get("status")]
    assert echoes, "the sandbox sent the product's own edits back as webhooks"
    stack.settle(quiet_s=1.0)
    assert stack.calls(since=seen) == []


def test_person_setting_the_field_later_relabels_without_a_second_ask(stack, triaged):
    key = triaged["keys"]["set later"]
    assert issue(stack, key)["fields"]["labels"] == ["needs-customer-impact"]
    assert len(stack.comments(key)) == 1
    stack.control(
        "POST", f"/issues/{key}/edit", json={"as": "ana", "impact": "None: internal preference"}
    )
    stack.settle()
    fields = issue(stack, key)["fields"]
    assert fields["labels"] == ["internal-preference"]
    assert fields["priority"]["name"] == "Low"
    assert len(stack.comments(key)) == 1


def test_every_request_matches_atlassians_spec(stack, triaged):
    checked = 0
    for call in triaged["calls"]:
        if call["user"] != "impact-bot" or call["json"] is None:
            continue
        operation = find_operation(call["method"], call["path"])
        if operation is None:  # admin webhooks: not in the specs, checked by hand-written shape
            continue
        validate_request(operation, call["json"])
        checked += 1
    assert checked >= 4


def test_bad_signature_is_refused_over_http(stack):
    r = stack.http.post(
        f"{stack.app_url}/webhooks/jira",
        data=b'{"webhookEvent": "jira:issue_created"}',
        headers={"Content-Type": "application/json", "X-Hub-Signature": "sha256=00"},
        timeout=10,
    )
    assert r.status_code == 401
    assert r.json()["error"] == "unauthenticated"


def post_event(stack: Stack, event: dict[str, Any], *, secret: str | None = None):
    """``event`` as Jira sends it, signed with ``secret`` (by default the stack's own)."""
    body = json.dumps(event).encode()
    return stack.http.post(
        f"{stack.app_url}/webhooks/jira",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature": sign(body, secret=secret or stack.secret),
        },
        timeout=10,
    )


def issue_event(key: str, *, age_s: float = 0.0) -> dict[str, Any]:
    return {
        "timestamp": int((time.time() - age_s) * 1000),
        "webhookEvent": "jira:issue_created",
        "issue": {"key": key, "fields": {"project": {"key": key.split("-")[0]}}},
    }


def test_failed_webhook_authentications_are_not_throttled(stack):
    """The README: Jira Cloud's deliveries come from addresses every Cloud site shares, so an
    address that sent bad signatures is not held back (the admin pages' throttle shuts an
    address after 10 wrong tokens in 15 minutes)."""
    refused = [
        post_event(stack, issue_event("OPS-1"), secret="not-the-secret").status_code
        for _ in range(15)
    ]
    assert refused == [401] * 15
    taken = post_event(stack, issue_event("OPS-1"))  # a project not configured: acknowledged
    assert (taken.status_code, taken.json()["status"]) == (202, "ignored")


def test_a_stale_delivery_is_422_over_http_naming_the_setting(stack):
    answer = post_event(stack, issue_event("SHOP-999", age_s=3 * 3600))  # the limit is 2 hours
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "stale_delivery"
    assert "WEBHOOK_MAX_AGE_SECONDS" in answer.json()["message"]
