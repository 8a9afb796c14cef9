"""``/healthz``, ``/readyz`` and ``/metrics``: through Flask's test client, in prometheus_client's
multiprocess mode with real processes, and over the real stack (gunicorn + worker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector.protocol import Call
from pipeline.delivery import Delivery
from pipeline.delivery_log import DeliveryLog
from pipeline.queue import DeliveryQueue, QueueDispatcher, make_huey
from sandbox.stack import Stack, wait_until
from service import metrics
from tests.conftest import ROOT, issue_payload, post_signed
from webhooks import create_app
from webhooks.health import bp as health_bp
from webhooks.metrics import bp as metrics_bp

EVENT = "jira:issue_created"


def with_blueprints(app):
    for blueprint in (health_bp, metrics_bp):
        if blueprint.name not in app.blueprints:  # until create_app registers them
            app.register_blueprint(blueprint)
    return app


@pytest.fixture
def queue(store_settings):
    return DeliveryQueue(make_huey(store_settings))


@pytest.fixture
def qapp(store_settings, impact_config, dlog, queue):
    dispatcher = QueueDispatcher(log=dlog, queue=queue)
    return with_blueprints(
        create_app({"SETTINGS": store_settings, "IMPACT": impact_config, "DISPATCHER": dispatcher})
    )


@pytest.fixture(autouse=True)
def single_process(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, from a /metrics answer."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return response.get_data(as_text=True)


# --------------------------------------------------------------------------------------------
# Health


def test_healthz_answers_without_any_store(app):
    response = with_blueprints(app).test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ready_when_config_database_and_queue_answer(qapp):
    response = qapp.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "parts": {"config": "ok", "database": "ok", "queue": "ok"},
        "jira": {"state": "usable", "held_deliveries": 0},
    }


def test_readyz_inline_triage_uses_no_stores(app):
    body = with_blueprints(app).test_client().get("/readyz").get_json()
    assert body["parts"] == {"config": "ok", "database": "not used", "queue": "not used"}


class BrokenQueue:
    def pending(self) -> int:
        raise ConnectionError("redis at 10.0.0.9:6379 refused: password test-webhook-secret")


@pytest.mark.parametrize("broken", ["config", "queue"])
def test_readyz_is_503_naming_the_failing_part(qapp, store_settings, broken):
    if broken == "config":
        del qapp.extensions["impact.config"]
    else:
        qapp.extensions["impact.queue"] = BrokenQueue()
    response = qapp.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["failing"] == [broken]
    assert body["parts"][broken] == "failing"  # what fails is for the token's holder
    assert all(secret not in response.get_data(as_text=True) for secret in store_settings.secrets())


@pytest.mark.parametrize(
    "database_url",
    [
        "sqlite:///{tmp}/empty.db",  # opens, but holds no delivery log
        "postgresql+psycopg://impact:db-password-9@127.0.0.1:1/impact",  # nothing listens
    ],
)
def test_readyz_stays_ready_and_deliveries_are_taken_when_the_database_is_down(
    store_settings, impact_config, queue, tmp_path, database_url
):
    settings = replace(store_settings, database_url=database_url.format(tmp=tmp_path))
    dispatcher = QueueDispatcher(log=DeliveryLog.from_url(settings.database_url), queue=queue)
    client = with_blueprints(
        create_app({"SETTINGS": settings, "IMPACT": impact_config, "DISPATCHER": dispatcher})
    ).test_client()

    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["parts"]["config"] == body["parts"]["queue"] == "ok"
    assert body["parts"]["database"] == "failing"
    assert "db-password-9" not in response.get_data(as_text=True)

    accepted = post_signed(client, issue_payload(key="SHOP-9"))
    assert accepted.status_code == 202
    assert accepted.get_json()["status"] == "queued"
    assert queue.inbox.size() == 1


def test_readyz_names_every_failing_part_but_only_config_and_queue_make_it_503(qapp, tmp_path):
    qapp.extensions["impact.deliveries"] = DeliveryLog.from_url(f"sqlite:///{tmp_path}/x.db")
    qapp.extensions["impact.queue"] = BrokenQueue()
    response = qapp.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["failing"] == ["queue"]
    assert body["parts"]["database"] == "failing"


def test_readyz_shows_hosts_only_to_the_metrics_token_and_metrics_asks_for_it(
    store_settings, impact_config, queue, caplog
):
    """On the public port /readyz says which part fails, not where it lives: the database's
    host and port are for the monitoring that holds METRICS_TOKEN (and for the log)."""
    token = "scrape-token-0123456789"
    settings = replace(
        store_settings,
        database_url="postgresql+psycopg://impact:db-password-9@127.0.0.1:1/impact",
        metrics_token=token,
    )
    dispatcher = QueueDispatcher(log=DeliveryLog.from_url(settings.database_url), queue=queue)
    client = with_blueprints(
        create_app({"SETTINGS": settings, "IMPACT": impact_config, "DISPATCHER": dispatcher})
    ).test_client()
    bearer = {"Authorization": f"Bearer {token}"}

    public = client.get("/readyz")
    assert public.get_json()["parts"]["database"] == "failing"
    assert "127.0.0.1" not in public.get_data(as_text=True)
    shown = client.get("/readyz", headers=bearer).get_json()["parts"]["database"]
    assert shown.startswith("failing: OperationalError") and "127.0.0.1" in shown
    assert "db-password-9" not in shown

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers=bearer).status_code == 200


def test_without_a_metrics_token_the_start_up_warns_that_metrics_are_open(
    settings, impact_config, jira, caplog
):
    create_app({"SETTINGS": settings, "IMPACT": impact_config, "JIRA": jira})
    assert "METRICS_TOKEN is not set: /metrics is open" in caplog.text
    caplog.clear()
    create_app(
        {
            "SETTINGS": replace(settings, metrics_token="scrape-token-0123456789"),
            "IMPACT": impact_config,
            "JIRA": jira,
        }
    )
    assert "METRICS_TOKEN" not in caplog.text


# --------------------------------------------------------------------------------------------
# Metrics in one process


def test_metrics_count_deliveries_retries_time_and_jira_calls(qapp):
    client = qapp.test_client()
    before = scrape(client)
    metrics.webhook_received(EVENT, "queued")
    metrics.webhook_received(None, "rejected")
    metrics.delivery_processed(EVENT, "retry", 0.3)
    metrics.delivery_processed(EVENT, "done", 7.0)
    metrics.jira_calls(
        [
            Call("PUT", "/rest/api/2/issue/SHOP-7", 204, 12.0),
            Call("PUT", "/rest/api/2/issue/SHOP-8", 204, 15.0),
            Call("GET", "/rest/agile/1.0/board/1/issue", None),
        ]
    )
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    received = "jira_impact_webhooks_received_total"
    assert delta(received, event=EVENT, outcome="queued") == 1
    assert delta(received, event="unknown", outcome="rejected") == 1
    processed = "jira_impact_deliveries_processed_total"
    assert delta(processed, event=EVENT, outcome="retry") == 1
    assert delta(processed, event=EVENT, outcome="done") == 1
    assert delta("jira_impact_delivery_retries_total", event=EVENT) == 1
    seconds = "jira_impact_delivery_processing_seconds"
    assert delta(f"{seconds}_count", event=EVENT) == 2
    assert delta(f"{seconds}_bucket", event=EVENT, le="0.5") == 1
    assert delta(f"{seconds}_bucket", event=EVENT, le="10.0") == 2
    calls = "jira_impact_jira_calls_total"
    put = {"method": "PUT", "endpoint": "/rest/api/2/issue/{key}", "status": "204"}
    assert delta(calls, **put) == 2
    get = {"method": "GET", "endpoint": "/rest/agile/1.0/board/{id}/issue", "status": "none"}
    assert delta(calls, **get) == 1
    assert "SHOP-7" not in after  # a label is an endpoint, never an issue


def test_queue_depth_and_deliveries_by_status_come_from_the_log(qapp, dlog, queue):
    for n in range(3):
        delivery = Delivery(f"wh-{n}", EVENT, "SHOP-1", "{}", received_at=1000.0 + n)
        dlog.admit(delivery)
        queue.enqueue(delivery)
    dlog.claim("wh-0", now=2000.0, lease=60)
    dlog.finish("wh-0", "done", now=2001.0)
    text = scrape(qapp.test_client())
    assert value(text, "jira_impact_queue_depth") == 2
    assert value(text, "jira_impact_deliveries", status="queued") == 2
    assert value(text, "jira_impact_deliveries", status="done") == 1
    assert value(text, "jira_impact_deliveries", status="dead") == 0
    assert value(text, "jira_impact_queue_jobs") == 3
    assert value(text, "jira_impact_delivery_log_up") == 1


def test_queue_depth_counts_the_deliveries_waiting_in_the_inbox(qapp, dlog, queue):
    for n in range(3):  # accepted by the web process; no worker has taken them
        body = f'{{"n": {n}}}'
        assert queue.accept(Delivery(f"in-{n}", EVENT, "SHOP-2", body, received_at=1000.0 + n))
    retry = Delivery("wh-retry", EVENT, "SHOP-1", "{}", received_at=900.0)
    dlog.admit(retry)  # in the log, queued: a retry or a replay
    text = scrape(qapp.test_client())
    assert value(text, "jira_impact_queue_depth") == 4
    assert value(text, "jira_impact_deliveries", status="queued") == 1


class BrokenInbox:
    def size(self) -> int:
        raise ConnectionError("redis refused")


def test_no_queue_depth_when_the_inbox_does_not_answer(qapp, queue):
    queue.inbox = BrokenInbox()
    text = scrape(qapp.test_client())
    assert ("jira_impact_queue_depth", ()) not in samples(text)
    assert value(text, "jira_impact_delivery_log_up") == 1


def test_a_failing_delivery_log_shows_as_down_not_as_an_error(qapp, tmp_path):
    qapp.extensions["impact.deliveries"] = DeliveryLog.from_url(f"sqlite:///{tmp_path}/x.db")
    text = scrape(qapp.test_client())
    assert value(text, "jira_impact_delivery_log_up") == 0
    assert ("jira_impact_queue_depth", ()) not in samples(text)


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/rest/api/2/issue/SHOP-1", "/rest/api/2/issue/{key}"),
        ("/rest/api/2/issue/SHOP-1/comment", "/rest/api/2/issue/{key}/comment"),
        ("/rest/api/3/issue/10042", "/rest/api/3/issue/{id}"),
        ("/rest/agile/1.0/board/12/configuration", "/rest/agile/1.0/board/{id}/configuration"),
        ("/rest/agile/1.0/issue/rank", "/rest/agile/1.0/issue/rank"),
        ("/rest/api/2/filter/10000", "/rest/api/2/filter/{id}"),
        ("/rest/api/2/myself", "/rest/api/2/myself"),
        ("/rest/api/2/mypermissions?projectKey=SHOP", "/rest/api/2/mypermissions"),
        ("/rest/api/2/field", "/rest/api/2/field"),
        ("/rest/api/2/project/SHOP", "/rest/api/2/project/{key}"),
        ("/rest/api/2/field/customfield_10042/context", "/rest/api/2/field/{key}/context"),
        ("/rest/api/2/issue/anything-at-all", "/rest/api/2/issue/{key}"),
        ("/somewhere/else/entirely", "other"),
        ("/rest/api/2" + "/issue" * 7, "other"),
    ],
)
def test_jira_endpoints_fold_keys_and_ids(path, endpoint):
    assert metrics.endpoint_of(path) == endpoint


def test_metric_labels_stay_a_known_set_whatever_a_signed_sender_names(qapp):
    """Every label value is a series kept for good: made-up event names and odd Jira paths
    must not each make one."""
    client = qapp.test_client()
    for n in range(30):
        payload = {"webhookEvent": f"made:up_{n}", "issue": {"key": f"SHOP-{n}"}}
        assert post_signed(client, payload).status_code == 202
        metrics.jira_calls([Call("GET", f"/rest/api/2/issue/x{n}/y{n}", 200)])
        metrics.jira_calls([Call("GET", f"/elsewhere/{n}", 200)])
        metrics.delivery_processed(f"made:up_{n}", "done", 0.1)
    text = scrape(client)
    events = {labels.get("event") for (_name, pairs) in samples(text) for labels in [dict(pairs)]}
    endpoints = {dict(pairs).get("endpoint") for (_name, pairs) in samples(text)}
    assert "made:up_7" not in text and "x7" not in text and "elsewhere" not in text
    assert events - {None} <= metrics.KNOWN_EVENTS | {"other", "unknown"}
    assert "other" in events
    assert {"/rest/api/2/issue/{key}/{key}", "other"} <= endpoints


# --------------------------------------------------------------------------------------------
# Multiprocess mode

COUNT_IN_CHILD = """
from connector.protocol import Call
from service import metrics
metrics.delivery_processed("jira:issue_created", "done", 0.2)
metrics.jira_calls([Call("PUT", "/rest/api/2/issue/SHOP-1", 204)])
"""


def test_metrics_of_several_processes_add_up(qapp, tmp_path, monkeypatch):
    folder = tmp_path / "metrics"
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(folder), PYTHONPATH=str(ROOT))
    folder.mkdir()
    for _ in range(3):  # three processes, one after the other, like recycled web workers
        subprocess.run([sys.executable, "-c", COUNT_IN_CHILD], env=env, check=True, timeout=60)
    metrics.delivery_processed(EVENT, "done", 0.2)  # this process writes no file: not counted

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    text = scrape(qapp.test_client())
    processed = "jira_impact_deliveries_processed_total"
    assert value(text, processed, event=EVENT, outcome="done") == 3
    assert value(text, "jira_impact_delivery_processing_seconds_count", event=EVENT) == 3
    calls = {"method": "PUT", "endpoint": "/rest/api/2/issue/{key}", "status": "204"}
    assert value(text, "jira_impact_jira_calls_total", **calls) == 3
    assert value(text, "jira_impact_delivery_log_up") == 1  # read from the log all the same


def test_a_process_creating_its_metrics_file_does_not_fail_the_scrape(qapp, tmp_path, monkeypatch):
    """A process that starts creates its file, then sizes it: a scrape in between read an empty
    file and answered 500 (the stack's wait for the product saw it while the worker started)."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(folder), PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", COUNT_IN_CHILD], env=env, check=True, timeout=60)
    (folder / f"counter_{os.getpid()}.db").touch()  # created, not sized yet
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    text = scrape(qapp.test_client())
    processed = "jira_impact_deliveries_processed_total"
    assert value(text, processed, event=EVENT, outcome="done") == 1


def test_prepare_multiprocess_defaults_the_folder_and_drops_dead_processes(tmp_path):
    env: dict[str, str] = {}
    folder = Path(metrics.prepare_multiprocess(env, default=str(tmp_path / "m")))
    assert env["PROMETHEUS_MULTIPROC_DIR"] == str(folder) and folder.is_dir()
    for name in ("counter_1.db", "counter_2.db", "histogram_2.db", "notes.txt"):
        (folder / name).write_text("")
    dropped = metrics.drop_dead_files(str(folder), alive=lambda pid: pid == 1)
    assert sorted(dropped) == ["counter_2.db", "histogram_2.db"]
    assert sorted(p.name for p in folder.iterdir()) == ["counter_1.db", "notes.txt"]


def test_prepare_multiprocess_keeps_the_given_folder_and_live_processes_files(tmp_path):
    folder = tmp_path / "given"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder)}
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    folder.mkdir()
    (folder / f"counter_{os.getpid()}.db").write_text("")
    (folder / f"counter_{gone.stdout.strip()}.db").write_text("")
    assert metrics.prepare_multiprocess(env, default=str(tmp_path / "other")) == str(folder)
    assert [p.name for p in folder.iterdir()] == [f"counter_{os.getpid()}.db"]


# --------------------------------------------------------------------------------------------
# Over the real stack: gunicorn's workers and the queue's worker, one metrics folder


@pytest.mark.e2e
def test_over_gunicorn_metrics_add_up_web_and_worker_and_health_answers(tmp_path):
    folder = tmp_path / "metrics"
    with Stack(tmp_path / "stack", env={"PROMETHEUS_MULTIPROC_DIR": str(folder)}) as stack:
        stack.register_webhook()
        key = stack.create_issue(project="SHOP", summary="Checkout fails", issuetype="Bug")
        stack.settle()
        assert stack.http.get(f"{stack.app_url}/healthz", timeout=10).status_code == 200
        ready = stack.http.get(f"{stack.app_url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text

        def scraped() -> str:
            response = stack.http.get(f"{stack.app_url}/metrics", timeout=10)
            assert response.status_code == 200
            return response.text

        done = {"event": EVENT, "outcome": "done"}
        text = wait_until(
            "the worker's count in /metrics",
            lambda: (
                (t := scraped())
                and value(t, "jira_impact_deliveries_processed_total", **done) >= 1
                and t
            ),
        )
        # Every gunicorn worker answers with the same sums (4 scrapes over 2 workers).
        counted = [
            "jira_impact_webhooks_received_total",
            "jira_impact_deliveries_processed_total",
            "jira_impact_jira_calls_total",
        ]
        first = {k: v for k, v in samples(text).items() if k[0] in counted}
        assert any(k[0] == "jira_impact_jira_calls_total" for k in first)
        for _ in range(4):
            again = {k: v for k, v in samples(scraped()).items() if k[0] in counted}
            assert again == first
        assert key not in text
        web_log = stack.log("web")
        lines = [json.loads(line) for line in web_log.splitlines() if line.startswith("{")]
        assert lines, "the web process logs JSON lines"
        for secret in (stack.secret, "sandbox-token"):
            assert secret not in web_log and secret not in stack.log("worker")
