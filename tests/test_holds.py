"""Holds on a Jira site and workers' heartbeats, in one process: the breaker and its shared
store (SQLite and a real Redis), the connector that honours it, the worker that parks what
meets a hold and the watch that releases it, the reaping of a dead worker's locks, and what
``/readyz``, ``/metrics`` and the admin pages show. ``tests/test_outage_e2e.py`` runs the real
processes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests
import responses

from connector.breaker import OUTAGE, Hold, SiteBreaker, site_failure
from connector.client import JiraConnector
from connector.errors import (
    JiraBadRequestError,
    JiraHeldError,
    JiraRateLimitError,
    JiraServerError,
    JiraUnavailableError,
)
from impact.model import FieldRef
from pipeline.delivery import Job
from pipeline.heartbeats import MISSED_BEATS, Heartbeat
from pipeline.holds import Holds, HoldWatch, site_state
from pipeline.queue import DeliveryQueue, Inbox, claim_value, make_huey, parse_claim
from sandbox.app import start_in_thread
from service.settings import Settings, SettingsError
from tests.conftest import issue_payload, post_signed
from tests.servers import redis_server
from tests.test_queue import Clock, make_worker, queue_client, run_jobs, webhook_id

SITE = "https://jira.invalid"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def qsettings(store_settings) -> Settings:
    return replace(store_settings, delivery_attempts=3, retry_base_seconds=2.0, lease_seconds=60)


@pytest.fixture(params=["sqlite", "redis"])
def store(request, store_settings):
    """The queue's store (its Huey), on SQLite or a real Redis, emptied."""
    settings = store_settings
    if request.param == "redis":
        settings = replace(store_settings, redis_url=request.getfixturevalue("redis_url"))
    huey = make_huey(settings)
    huey.storage.flush_all()
    return huey


class Ticks:
    """A clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------------------------
# Whose failure it is (pure)


@pytest.mark.parametrize(
    ("error", "site"),
    [
        (JiraUnavailableError("connection refused"), True),
        (JiraServerError("bad gateway", status=502), True),
        (JiraServerError("unavailable", status=503), True),
        (JiraServerError("gateway timeout", status=504), True),
        (JiraServerError("boom", status=500, retry_after=5), True),
        (JiraServerError("boom", status=500), False),  # one request's fault
        (JiraBadRequestError("bad", status=400), False),
        (JiraRateLimitError("slow", status=429, retry_after=1), False),  # the site answered
        (JiraUnavailableError("not sent: no turn", ours=True), False),  # our own time limit
        (RuntimeError("bug"), False),
    ],
)
def test_a_failure_is_the_sites_only_when_the_site_failed(error, site):
    assert site_failure(error) is site


# --------------------------------------------------------------------------------------------
# The breaker and its store


def test_three_site_failures_in_a_row_hold_the_site_for_every_process(store):
    ticks = Ticks()
    one = SiteBreaker(SITE, store.storage, probe_seconds=5, clock=ticks)
    other = SiteBreaker(SITE, store.storage, probe_seconds=5, clock=ticks)
    down = JiraServerError("unavailable", status=503)
    other.check()  # usable: its copy says so for a second
    assert one.failed(down) is None and one.failed(down) is None
    one.failed(JiraServerError("boom", status=500))  # the site answered: the count starts over
    assert one.failed(down) is None and one.failed(down) is None
    hold = one.failed(down)
    assert hold is not None and (hold.cause, hold.since, hold.probe_at) == (
        OUTAGE,
        ticks.now,
        ticks.now + 5,
    )
    assert "503" in hold.reason
    with pytest.raises(JiraHeldError) as held:
        one.check()
    assert held.value.cause == OUTAGE and held.value.since == ticks.now
    other.check()  # its copy is under a second old: it has not looked yet …
    ticks.now += 1.0
    with pytest.raises(JiraHeldError):  # … and then it has
        other.check()
    assert site_state(store.storage, SITE).hold == hold


def test_one_probe_at_a_time_and_retry_after_is_the_least_wait(store):
    ticks = Ticks()
    one = SiteBreaker(SITE, store.storage, probe_seconds=5, clock=ticks)
    other = SiteBreaker(SITE, store.storage, probe_seconds=5, clock=ticks)
    hold = one.open(OUTAGE, "Jira 503", wait=20)  # the site said Retry-After: 20
    assert hold.probe_at == ticks.now + 20
    ticks.now += 19
    assert one.take_probe() is None  # not yet
    ticks.now += 1
    taken = [one.take_probe(), other.take_probe()]
    assert [t is not None for t in taken] == [True, False]  # one process probes
    one.probe_failed(taken[0], JiraServerError("unavailable", status=503, retry_after=30))
    found = site_state(store.storage, SITE).hold
    assert found is not None and found.probe_at == ticks.now + 30 and found.probes == 1
    ticks.now += 5
    assert other.take_probe() is None  # Retry-After is the least wait
    ticks.now += 25
    assert other.take_probe() is not None
    assert other.close() is True
    ticks.now += 1.0
    one.check()  # usable again everywhere
    assert site_state(store.storage, SITE).hold is None


@responses.activate
def test_the_connector_sends_nothing_while_the_site_is_held(huey):
    store = huey.storage
    breaker = SiteBreaker(SITE, store, probe_seconds=5)
    base = "https://jira.example.com"
    responses.get(f"{base}/rest/api/2/serverInfo", json={"versionNumbers": [10, 0, 0]})
    responses.get(f"{base}/rest/api/2/issue/SHOP-1", status=503, headers={"Retry-After": "9"})
    jira = JiraConnector(
        base, field=FieldRef(name="Impact"), email="a@b.c", api_token="t", breaker=breaker
    )
    for _ in range(2):
        with pytest.raises(JiraServerError):
            jira.get_issue("SHOP-1")
    with pytest.raises(JiraServerError):
        jira.get_issue("SHOP-1")  # the third in a row opens the hold
    sent = len(responses.calls)
    with pytest.raises(JiraHeldError):
        jira.get_issue("SHOP-1")
    assert len(responses.calls) == sent  # not sent
    hold = breaker.current()
    assert hold is not None and hold.probe_at >= hold.since + 9  # at least its Retry-After
    jira.probe(5)  # the probe goes while held
    assert len(responses.calls) == sent + 1
    assert responses.calls[-1].request.url.endswith("/serverInfo")


# --------------------------------------------------------------------------------------------
# The worker: held deliveries spend no attempt, and run once the site is usable


def test_a_delivery_held_by_an_outage_spends_no_attempt_and_runs_once_released(
    qsettings, impact_config, dlog, huey, jira
):
    clock = Clock()
    breaker = SiteBreaker(SITE, huey.storage, probe_seconds=1, clock=clock)
    holds = Holds(breaker, huey.storage)
    worker = make_worker(huey, dlog, impact_config, jira, clock)  # 3 attempts
    worker.holds = holds
    queue = DeliveryQueue(huey, handle=worker.handle)
    client = queue_client(qsettings, impact_config, dlog, queue)
    payload = issue_payload(key="SHOP-9")
    jira.issues["SHOP-9"] = payload["issue"]
    hold = breaker.open(OUTAGE, "Jira: no answer from Jira (ConnectionError)")
    post_signed(client, payload, headers=webhook_id(1))
    for run in range(5):  # more runs than it has attempts: the outage spends none
        if run:
            queue.enqueue(Job("wh-1", "SHOP-9"))  # a sweep's recovery finds it parked again
        jira.fail_with = hold.error()  # what the connector raises, sending nothing
        run_jobs(huey)
        entry = dlog.get("wh-1")
        assert (entry.status, entry.attempts) == ("queued", 0), entry
        assert entry.error.startswith("held: Jira not usable (outage)")
        assert huey.pending_count() + huey.scheduled_count() == 0  # parked, not scheduled
        assert site_state(huey.storage, SITE).held == 1
    assert jira.applied == []

    probes: list[str] = []
    released: list[Job] = []
    watch = HoldWatch(
        holds, probes={OUTAGE: lambda: probes.append("probe")}, release=released.extend
    )
    clock.ahead += 2  # the probe is due
    watch.tick()
    assert probes == ["probe"] and released == [Job("wh-1", "SHOP-9")]
    assert breaker.current(fresh=True) is None
    for job in released:
        queue.enqueue(job)
    run_jobs(huey)
    entry = dlog.get("wh-1")
    assert (entry.status, entry.attempts) == ("done", 1)
    assert len(jira.applied) == 1
    # the held runs made no call, so the run that wrote did not look for an earlier ask
    assert not any(r.startswith("GET comments") for r in jira.requests)


def test_a_failed_probe_keeps_the_deliveries_held(huey):
    ticks = Ticks()
    breaker = SiteBreaker(SITE, huey.storage, probe_seconds=1, clock=ticks)
    holds = Holds(breaker, huey.storage)
    breaker.open(OUTAGE, "Jira 503")
    holds.park(Job("wh-1", "SHOP-1"))
    released: list[Job] = []

    def probe() -> None:
        raise JiraServerError("unavailable", status=503, retry_after=7)

    watch = HoldWatch(holds, probes={OUTAGE: probe}, release=released.extend, clock=ticks)
    ticks.now += 1
    watch.tick()
    state = site_state(huey.storage, SITE)
    assert state.hold is not None and state.hold.probes == 1 and state.held == 1
    assert state.hold.probe_at == ticks.now + 7
    assert released == []


# --------------------------------------------------------------------------------------------
# Heartbeats


def test_a_dead_workers_locks_are_let_go_and_its_delivery_queued_again(store, dlog):
    storage = store.storage
    inbox = Inbox(store)
    ttl = 0.4  # Redis lets a beat run out by itself, in real time
    storage.owner = "dead-one"
    storage.beat("dead-one", now=time.time(), ttl=ttl)
    locked, _, _ = inbox.lock("issue.SHOP-1", Job("wh-1", "SHOP-1"), ttl=300)
    assert locked
    board = store.lock_task("board.7", ttl=300)
    board.acquire()  # a placement run's lock names its worker too
    storage.owner = "alive"
    storage.beat("alive", now=time.time(), ttl=ttl)
    assert inbox.lock("issue.SHOP-2", Job("wh-2", "SHOP-2"), ttl=300)[0]
    requeued: list[Job] = []
    rescued: list[bool] = []
    heartbeat = Heartbeat(
        storage,
        "alive",
        every=ttl / MISSED_BEATS,
        log=dlog,
        requeue=requeued.append,
        rescue_boards=lambda: rescued.append(True),
    )
    assert heartbeat.reap() == []  # both beat

    deadline = time.monotonic() + 10
    while not requeued and time.monotonic() < deadline:
        heartbeat.beat()  # alive beats on; dead-one does not
        heartbeat.reap()
        time.sleep(0.05)
    assert requeued == [Job("wh-1", "SHOP-1")] and rescued == [True]
    assert inbox.lock("issue.SHOP-1", Job("wh-1", "SHOP-1"), ttl=300)[0]  # free again
    assert not inbox.lock("issue.SHOP-2", Job("wh-3", "SHOP-2"), ttl=300)[0]  # alive keeps its
    assert store.lock_task("board.7", ttl=300).acquire()
    assert heartbeat.reap() == []  # once


def test_a_lock_names_its_owner_and_job():
    value = claim_value("host:1:ab", "wh-1", "SHOP-1")
    assert parse_claim(value) == ("host:1:ab", "wh-1", "SHOP-1")
    assert parse_claim(b"1") is None


# --------------------------------------------------------------------------------------------
# What the pages show


def test_readyz_metrics_and_the_admin_page_show_the_hold_and_since_when(
    qsettings, impact_config, dlog, huey, jira
):
    settings = replace(qsettings, admin_token="admin-token-123456", metrics_token="m" * 16)
    worker = make_worker(huey, dlog, impact_config, jira, Clock())
    client = queue_client(settings, impact_config, dlog, DeliveryQueue(huey, handle=worker.handle))
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "ready" and ready["jira"] == {"state": "usable", "held_deliveries": 0}

    since = 1_800_000_000.0
    hold = Hold(OUTAGE, "Jira 503: GET /rest/api/2/serverInfo: unavailable", since, since + 5)
    huey.storage.hold_open(settings.jira_url, hold.encode(), hold.probe_at)
    Holds(SiteBreaker(settings.jira_url, huey.storage), huey.storage).park(Job("wh-1", "A-1"))
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "ready"  # deliveries are still taken
    assert ready["jira"] == {
        "state": "held",
        "cause": "outage",
        "since": "2027-01-15T08:00:00Z",
        "next_probe": "2027-01-15T08:00:05Z",
        "probes_failed": 0,
        "held_deliveries": 1,
    }
    token = {"Authorization": "Bearer " + "m" * 16}
    assert "serverInfo" in client.get("/readyz", headers=token).get_json()["jira"]["reason"]

    text = client.get("/metrics", headers=token).get_data(as_text=True)
    assert 'jira_impact_jira_held{cause="outage"} 1.0' in text
    assert "jira_impact_jira_held_since_seconds 1.8e+09" in text
    assert "jira_impact_deliveries_held 1.0" in text

    page = client.get("/admin/", headers={"Authorization": "Bearer admin-token-123456"})
    html = page.get_data(as_text=True)
    assert "Held since 2027-01-15 08:00:00Z" in html
    assert "Deliveries waiting for Jira, their attempts not spent: <strong>1</strong>" in html

    huey.storage.hold_close(settings.jira_url)
    text = client.get("/metrics", headers=token).get_data(as_text=True)
    assert 'jira_impact_jira_held{cause="outage"} 0.0' in text


# --------------------------------------------------------------------------------------------
# Settings and the sandbox's outages


def test_probe_and_heartbeat_settings_have_defaults_and_are_checked():
    base = {"JIRA_URL": SITE, "JIRA_PAT": "pat", "ALLOW_UNSIGNED_WEBHOOKS": "1"}
    settings = Settings.from_env(base)
    assert (settings.probe_seconds, settings.heartbeat_seconds) == (5.0, 2.0)
    with pytest.raises(SettingsError) as error:
        Settings.from_env(base | {"JIRA_PROBE_SECONDS": "0", "WORKER_HEARTBEAT_SECONDS": "x"})
    assert "JIRA_PROBE_SECONDS=0 is out of range (0.5 to 300)" in error.value.problems
    assert "WORKER_HEARTBEAT_SECONDS='x' is not a number" in error.value.problems


def test_the_sandbox_plays_an_outage_and_ends_it_by_itself():
    auth = ("impact-bot@example.com", "sandbox-token")
    with start_in_thread(seed="empty") as sandbox:
        url = sandbox.url
        wrong = requests.post(f"{url}/_sandbox/outage", json={"mode": "down", "seconds": 0})
        assert wrong.status_code == 400 and "seconds" in wrong.text
        requests.post(f"{url}/_sandbox/outage", json={"mode": "down", "seconds": 30})
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url}/rest/api/2/serverInfo", auth=auth, timeout=5)
        spec = {"mode": "503", "seconds": 0.5, "retry_after": 5}
        requests.post(f"{url}/_sandbox/outage", json=spec)  # replaces the one under way
        answer = requests.get(f"{url}/rest/api/2/serverInfo", auth=auth, timeout=5)
        assert (answer.status_code, answer.headers["Retry-After"]) == (503, "5")
        time.sleep(0.6)
        assert requests.get(f"{url}/rest/api/2/serverInfo", auth=auth, timeout=5).ok
        calls = requests.get(f"{url}/_sandbox/calls").json()["calls"]
        assert [c["status"] for c in calls] == [0, 503, 200]  # 0: dropped, no answer
        assert json.loads(json.dumps(calls[0]))["user"] == "impact-bot"
