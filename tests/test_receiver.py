"""The receiver through Flask's test client, as production runs it: a delivery is answered
``queued``, ``duplicate`` or ``ignored`` and waits in the queue (real SQLite files of the test's
own); the tests run the queue's jobs with the worker in this process (``run_jobs``), against
the recording FakeJira, and read what triage did there and in the delivery log."""

import json
from dataclasses import replace

import pytest

from connector.errors import JiraServerError
from impact.model import Person, Source
from pipeline.queue import DeliveryQueue, QueueDispatcher
from tests.conftest import BOT, FakeJira, issue_payload, load_payload, post_signed
from tests.test_queue import Clock, make_worker, run_jobs
from webhooks import create_app
from webhooks.signature import sign

BLOCKING = "Blocks paying customers"


def production_app(settings, config, dlog, huey, jira):
    """The app as gunicorn serves it (the queue's dispatcher), its worker handling the jobs
    ``run_jobs`` takes off the queue."""
    worker = make_worker(huey, dlog, config, jira, Clock())
    dispatcher = QueueDispatcher(log=dlog, queue=DeliveryQueue(huey, handle=worker.handle))
    return create_app(
        {"SETTINGS": settings, "IMPACT": config, "DISPATCHER": dispatcher, "TESTING": True}
    )


@pytest.fixture
def app(store_settings, impact_config, dlog, huey, jira):
    return production_app(store_settings, impact_config, dlog, huey, jira)


def triaged(huey, dlog, answer) -> str:
    """Run the queue; what the log then says became of the delivery ``answer`` queued."""
    assert answer.status_code == 202, answer.json
    assert answer.json["status"] == "queued"
    run_jobs(huey)
    return dlog.get(answer.json["delivery"]).status


def other_managed(config, label):
    """The managed labels an edit adding ``label`` takes off: all the others."""
    return tuple(sorted(config.for_project("SHOP").managed_labels - {label}))


def test_signed_issue_created_without_impact_is_labelled_and_asked_once(
    client, jira, impact_config, huey, dlog
):
    r = post_signed(
        client, issue_payload(labels=("checkout", "safari"), components=[], summary="Fix it")
    )
    assert r.json == {"status": "queued", "delivery": r.json["delivery"], "issue": "SHOP-311"}
    assert jira.requests == []  # the worker talks to Jira, not the web process
    assert triaged(huey, dlog, r) == "done"
    [plan] = jira.applied
    assert plan.source is Source.MISSING
    assert plan.add_labels == ("needs-customer-impact",)
    assert plan.remove_labels == other_managed(impact_config, "needs-customer-impact")
    assert plan.comment and "Blocks paying customers" in plan.comment
    assert jira.requests == ["POST comment/SHOP-311", "PUT issue/SHOP-311"]


def test_person_set_blocking_gives_label_and_priority_no_comment(client, jira, huey, dlog):
    r = post_signed(client, issue_payload(impact=BLOCKING, priority={"name": "Medium"}))
    assert triaged(huey, dlog, r) == "done"
    [plan] = jira.applied
    assert plan.source is Source.FIELD
    assert plan.add_labels == ("customer-impact-blocking",)
    assert plan.priority == "Highest"
    assert plan.comment is None
    assert jira.requests == ["PUT issue/SHOP-311"]


def test_rule_match_adds_level_and_inferred_label_leaves_field(client, jira, huey, dlog):
    payload = issue_payload(
        issuetype={"name": "Bug"}, components=[{"name": "Checkout"}], summary="Coupon field"
    )
    r = post_signed(client, payload)
    assert triaged(huey, dlog, r) == "done"
    [plan] = jira.applied
    assert plan.source is Source.RULE
    assert plan.rule == "checkout or billing bug"
    assert set(plan.add_labels) == {"customer-impact-degraded", "customer-impact-inferred"}
    assert plan.field_value is None


def test_bot_update_is_ignored_without_writes(client, jira, huey, dlog):
    """The web process does not know the service account (only the worker asks Jira): the
    worker ignores the update."""
    payload = issue_payload(event="jira:issue_updated", actor=BOT)
    r = post_signed(client, payload)
    assert triaged(huey, dlog, r) == "ignored"
    assert "service account" in dlog.get(r.json["delivery"]).plan
    assert jira.applied == []


def test_bot_created_issue_is_still_triaged(client, jira, huey, dlog):
    r = post_signed(client, issue_payload(actor=BOT))
    assert triaged(huey, dlog, r) == "done"
    assert len(jira.applied) == 1


def test_update_by_person_setting_field_relabels(client, jira, impact_config, huey, dlog):
    payload = issue_payload(
        event="jira:issue_updated",
        impact="None: internal preference",
        labels=("needs-customer-impact", "pens"),
        actor=Person(account_id="557058:ana", display_name="Ana"),
    )
    assert triaged(huey, dlog, post_signed(client, payload)) == "done"
    [plan] = jira.applied
    assert plan.add_labels == ("internal-preference",)
    assert plan.remove_labels == other_managed(impact_config, "internal-preference")


def test_redelivery_of_labelled_issue_writes_nothing(client, jira, huey, dlog):
    payload = issue_payload(labels=("needs-customer-impact",), components=[], summary="Pens")
    r = post_signed(client, payload)
    assert triaged(huey, dlog, r) == "done"
    assert jira.requests == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (load_payload("cloud_comment_created.json"), "not triaged"),
        (issue_payload(project={"key": "OPS", "id": "1"}, key="OPS-1"), "not configured"),
    ],
)
def test_other_events_and_projects_are_acknowledged_and_ignored(
    client, jira, huey, dlog, payload, reason
):
    r = post_signed(client, payload)
    assert r.status_code == 202
    assert r.json["status"] == "ignored"
    assert reason in r.json["reason"]
    assert (huey.pending_count(), dlog.counts()) == (0, {})  # nothing kept, nothing to do
    assert jira.applied == []


def test_the_same_delivery_again_is_a_duplicate(client, jira, huey, dlog):
    payload = issue_payload()
    headers = {"X-Atlassian-Webhook-Identifier": "wh-receiver-1"}
    first = post_signed(client, payload, headers=headers)
    assert first.json["status"] == "queued"
    again = post_signed(client, payload, headers=headers)
    assert (again.status_code, again.json["status"]) == (202, "duplicate")
    assert triaged(huey, dlog, first) == "done"
    assert len(jira.applied) == 1


def test_bad_signature_is_401_and_nothing_happens(client, jira, huey):
    body = json.dumps(issue_payload()).encode()
    r = client.post(
        "/webhooks/jira", data=body, headers={"X-Hub-Signature": sign(body, secret="wrong")}
    )
    assert r.status_code == 401
    assert r.json["error"] == "unauthenticated"
    assert "does not match" in r.json["message"]
    assert run_jobs(huey) == 0
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
def test_bad_bodies_get_4xx_naming_the_problem(client, jira, huey, body, status, message):
    r = post_signed(client, body)
    assert r.status_code == status, r.json
    assert message in r.json["message"]
    assert run_jobs(huey) == 0
    assert jira.applied == []


def test_wrong_shape_lists_field_errors(client):
    r = post_signed(
        client, {"webhookEvent": "jira:issue_created", "issue": {"fields": {"project": {}}}}
    )
    assert r.status_code == 422
    assert any("issue.key" in path for path in r.json["errors"])


def test_body_over_limit_is_413(store_settings, impact_config, jira, huey, dlog):
    s = replace(store_settings, max_body_bytes=2048)
    app = production_app(s, impact_config, dlog, huey, jira)
    payload = issue_payload(description="x" * 4096)
    r = post_signed(app.test_client(), payload)
    assert r.status_code == 413
    assert "MAX_WEBHOOK_BYTES" in r.json["message"]


def test_non_json_content_type_is_415(client):
    body = json.dumps(issue_payload()).encode()
    r = post_signed(client, body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415


def test_token_auth_for_installs_that_cannot_sign(store_settings, impact_config, jira, huey, dlog):
    s = replace(store_settings, webhook_secret=None, webhook_token="url-token")
    client = production_app(s, impact_config, dlog, huey, jira).test_client()
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


def test_unsigned_accepted_only_when_allowed(store_settings, impact_config, jira, huey, dlog):
    s = replace(store_settings, webhook_secret=None, allow_unsigned=True)
    client = production_app(s, impact_config, dlog, huey, jira).test_client()
    assert triaged(huey, dlog, client.post("/webhooks/jira", json=issue_payload())) == "done"


def test_jira_failure_is_not_the_clients_fault(client, jira, huey, dlog):
    """Jira failing is the worker's to retry: the client was answered before Jira was asked."""
    jira.fail_with = JiraServerError("boom", status=502)
    r = post_signed(client, issue_payload())
    assert triaged(huey, dlog, r) == "queued"  # to be tried again later
    assert "Jira 502" in dlog.get(r.json["delivery"]).error
    assert huey.scheduled_count() == 1


def test_unknown_route_and_method_are_json(client):
    assert client.get("/webhooks/jira").status_code == 405
    r = client.get("/nope")
    assert r.status_code == 404
    assert r.json["status"] == "rejected"


@pytest.mark.parametrize("name", ["server_issue_created.json", "cloud_issue_updated_labels.json"])
def test_server_and_cloud_fixtures_are_accepted(client, huey, dlog, name):
    payload = load_payload(name)
    payload["issue"]["fields"]["project"]["key"] = "SHOP"
    r = post_signed(client, payload)
    assert r.status_code == 202, r.json
    assert triaged(huey, dlog, r) in ("done", "ignored")


def test_a_retry_from_jira_is_triaged_from_its_body(client, jira, huey, dlog):
    """Jira retries a delivery it could not hand over: the body is the one it meant to send."""
    payload = issue_payload(key="SHOP-9")
    jira.issues["SHOP-9"] = payload["issue"]
    r = post_signed(client, payload, headers={"X-Atlassian-Webhook-Retry": "1"})
    assert triaged(huey, dlog, r) == "done"
    assert "GET issue/SHOP-9" not in jira.requests and len(jira.applied) == 1


def test_missing_field_in_jira_counts_as_missing(store_settings, impact_config, huey, dlog):
    jira = FakeJira(field_id=None)
    client = production_app(store_settings, impact_config, dlog, huey, jira).test_client()
    r = post_signed(client, issue_payload(impact=BLOCKING, components=[], summary="x"))
    assert triaged(huey, dlog, r) == "done"
    assert jira.applied[0].source is Source.MISSING


def test_a_delivery_older_than_the_window_is_refused_naming_the_setting(client, jira, huey):
    payload = issue_payload()
    payload["timestamp"] -= 3 * 3600 * 1000  # three hours: Jira stopped retrying long ago
    r = post_signed(client, payload)
    assert r.status_code == 422
    assert r.json["error"] == "stale_delivery"
    assert "WEBHOOK_MAX_AGE_SECONDS" in r.json["message"]
    assert run_jobs(huey) == 0
    assert jira.applied == []


def test_a_delivery_without_a_timestamp_is_taken(client, jira, huey, dlog):
    payload = issue_payload()
    del payload["timestamp"]
    assert triaged(huey, dlog, post_signed(client, payload)) == "done"
    assert len(jira.applied) == 1
