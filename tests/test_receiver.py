"""The receiver through Flask's test client, with the recording FakeJira behind it."""

import json
from dataclasses import replace

import pytest

from connector.errors import JiraServerError
from impact.model import Person, Source
from tests.conftest import BOT, FakeJira, issue_payload, load_payload, post_signed
from webhooks import create_app
from webhooks.signature import sign

BLOCKING = "Blocks paying customers"


def other_managed(config, label):
    """The managed labels an edit adding ``label`` takes off: all the others."""
    return tuple(sorted(config.for_project("SHOP").managed_labels - {label}))


def test_signed_issue_created_without_impact_is_labelled_and_asked_once(
    client, jira, impact_config
):
    r = post_signed(
        client, issue_payload(labels=("checkout", "safari"), components=[], summary="Fix it")
    )
    assert r.status_code == 202
    assert r.json["status"] == "done"
    [plan] = jira.applied
    assert plan.source is Source.MISSING
    assert plan.add_labels == ("needs-customer-impact",)
    assert plan.remove_labels == other_managed(impact_config, "needs-customer-impact")
    assert plan.comment and "Blocks paying customers" in plan.comment
    assert jira.requests == ["POST comment/SHOP-311", "PUT issue/SHOP-311"]


def test_person_set_blocking_gives_label_and_priority_no_comment(client, jira):
    r = post_signed(client, issue_payload(impact=BLOCKING, priority={"name": "Medium"}))
    assert r.status_code == 202
    [plan] = jira.applied
    assert plan.source is Source.FIELD
    assert plan.add_labels == ("customer-impact-blocking",)
    assert plan.priority == "Highest"
    assert plan.comment is None
    assert jira.requests == ["PUT issue/SHOP-311"]


def test_rule_match_adds_level_and_inferred_label_leaves_field(client, jira):
    payload = issue_payload(
        issuetype={"name": "Bug"}, components=[{"name": "Checkout"}], summary="Coupon field"
    )
    r = post_signed(client, payload)
    assert r.status_code == 202
    [plan] = jira.applied
    assert plan.source is Source.RULE
    assert plan.rule == "checkout or billing bug"
    assert set(plan.add_labels) == {"customer-impact-degraded", "customer-impact-inferred"}
    assert plan.field_value is None


def test_bot_update_is_ignored_without_writes(app, client, jira):
    payload = issue_payload(event="jira:issue_updated", actor=BOT)
    r = post_signed(client, payload)
    assert r.status_code == 202
    assert r.json["status"] == "ignored"
    [outcome] = app.extensions["impact.receiver"].dispatcher.outcomes
    assert "service account" in outcome.reason
    assert jira.applied == []


def test_bot_created_issue_is_still_triaged(client, jira):
    r = post_signed(client, issue_payload(actor=BOT))
    assert r.json["status"] == "done"
    assert len(jira.applied) == 1


def test_update_by_person_setting_field_relabels(client, jira, impact_config):
    payload = issue_payload(
        event="jira:issue_updated",
        impact="None: internal preference",
        labels=("needs-customer-impact", "pens"),
        actor=Person(account_id="557058:ana", display_name="Ana"),
    )
    post_signed(client, payload)
    [plan] = jira.applied
    assert plan.add_labels == ("internal-preference",)
    assert plan.remove_labels == other_managed(impact_config, "internal-preference")


def test_redelivery_of_labelled_issue_writes_nothing(client, jira):
    payload = issue_payload(labels=("needs-customer-impact",), components=[], summary="Pens")
    r = post_signed(client, payload)
    assert r.json["status"] == "done"
    assert jira.requests == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (load_payload("cloud_comment_created.json"), "not triaged"),
        (issue_payload(project={"key": "OPS", "id": "1"}, key="OPS-1"), "not configured"),
    ],
)
def test_other_events_and_projects_are_acknowledged_and_ignored(client, jira, payload, reason):
    r = post_signed(client, payload)
    assert r.status_code == 202
    assert r.json["status"] == "ignored"
    assert reason in r.json["reason"]
    assert jira.applied == []


def test_bad_signature_is_401_and_nothing_happens(client, jira):
    body = json.dumps(issue_payload()).encode()
    r = client.post(
        "/webhooks/jira", data=body, headers={"X-Hub-Signature": sign(body, secret="wrong")}
    )
    assert r.status_code == 401
    assert r.json["error"] == "unauthenticated"
    assert "does not match" in r.json["message"]
    assert jira.applied == []


def test_missing_signature_is_401(client):
    r = client.post("/webhooks/jira", json=issue_payload())
    assert r.status_code == 401
    assert "missing X-Hub-Signature" in r.json["message"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"", 400, "empty"),
        (b"{not json", 400, "not JSON"),
        (b'{"webhookEvent": "jira:issue_created", "x": "\xff"}', 400, "UTF-8"),
        (b"[1, 2]", 422, ""),
        (b'{"webhookEvent": 42}', 422, ""),
        (b'{"webhookEvent": "jira:issue_created", "issue": {"fields": {}}}', 422, ""),
    ],
)
def test_bad_bodies_get_4xx_naming_the_problem(client, jira, body, status, message):
    r = post_signed(client, body)
    assert r.status_code == status, r.json
    assert message in r.json["message"]
    assert jira.applied == []


def test_wrong_shape_lists_field_errors(client):
    r = post_signed(
        client, {"webhookEvent": "jira:issue_created", "issue": {"fields": {"project": {}}}}
    )
    assert r.status_code == 422
    assert any("issue.key" in path for path in r.json["errors"])


def test_body_over_limit_is_413(settings, impact_config, jira):
    app = create_app(
        {"SETTINGS": replace(settings, max_body_bytes=2048), "IMPACT": impact_config, "JIRA": jira}
    )
    payload = issue_payload(description="x" * 4096)
    r = post_signed(app.test_client(), payload)
    assert r.status_code == 413
    assert "MAX_WEBHOOK_BYTES" in r.json["message"]


def test_non_json_content_type_is_415(client):
    body = json.dumps(issue_payload()).encode()
    r = post_signed(client, body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415


def test_token_auth_for_installs_that_cannot_sign(settings, impact_config, jira):
    s = replace(settings, webhook_secret=None, webhook_token="url-token")
    client = create_app({"SETTINGS": s, "IMPACT": impact_config, "JIRA": jira}).test_client()
    body = json.dumps(issue_payload())
    assert (
        client.post(
            "/webhooks/jira?token=url-token", data=body, content_type="application/json"
        ).status_code
        == 202
    )
    assert (
        client.post(
            "/webhooks/jira?token=nope", data=body, content_type="application/json"
        ).status_code
        == 401
    )
    assert (
        client.post("/webhooks/jira", data=body, content_type="application/json").status_code == 401
    )
    signed = client.post(
        "/webhooks/jira",
        data=body,
        content_type="application/json",
        headers={"X-Hub-Signature": "sha256=00"},
    )
    assert signed.status_code == 401
    assert "JIRA_WEBHOOK_SECRET is not set" in signed.json["message"]


def test_unsigned_accepted_only_when_allowed(settings, impact_config, jira):
    s = replace(settings, webhook_secret=None, allow_unsigned=True)
    client = create_app({"SETTINGS": s, "IMPACT": impact_config, "JIRA": jira}).test_client()
    assert client.post("/webhooks/jira", json=issue_payload()).status_code == 202


def test_jira_failure_is_not_the_clients_fault(client, jira):
    jira.fail_with = JiraServerError("boom", status=502)
    r = post_signed(client, issue_payload())
    assert r.status_code == 202
    assert r.json["status"] == "failed"


def test_unknown_route_and_method_are_json(client):
    assert client.get("/webhooks/jira").status_code == 405
    r = client.get("/nope")
    assert r.status_code == 404
    assert r.json["status"] == "rejected"


@pytest.mark.parametrize("name", ["server_issue_created.json", "cloud_issue_updated_labels.json"])
def test_server_and_cloud_fixtures_are_accepted(client, name):
    payload = load_payload(name)
    payload["issue"]["fields"]["project"]["key"] = "SHOP"
    r = post_signed(client, payload)
    assert r.status_code == 202, r.json


def test_a_retry_from_jira_is_triaged_from_its_body(client, jira):
    """Jira retries a delivery it could not hand over: the body is the one it meant to send."""
    payload = issue_payload(key="SHOP-9")
    jira.issues["SHOP-9"] = payload["issue"]
    post_signed(client, payload, headers={"X-Atlassian-Webhook-Retry": "1"})
    assert "GET issue/SHOP-9" not in jira.requests and len(jira.applied) == 1


def test_missing_field_in_jira_counts_as_missing(settings, impact_config):
    jira = FakeJira(field_id=None)
    client = create_app({"SETTINGS": settings, "IMPACT": impact_config, "JIRA": jira}).test_client()
    post_signed(client, issue_payload(impact=BLOCKING, components=[], summary="x"))
    assert jira.applied[0].source is Source.MISSING


def test_a_delivery_older_than_the_window_is_refused_naming_the_setting(client, jira):
    payload = issue_payload()
    payload["timestamp"] -= 3 * 3600 * 1000  # three hours: Jira stopped retrying long ago
    r = post_signed(client, payload)
    assert r.status_code == 422
    assert r.json["error"] == "stale_delivery"
    assert "WEBHOOK_MAX_AGE_SECONDS" in r.json["message"]
    assert jira.applied == []


def test_a_delivery_without_a_timestamp_is_taken(client, jira):
    payload = issue_payload()
    del payload["timestamp"]
    assert post_signed(client, payload).status_code == 202
    assert len(jira.applied) == 1
