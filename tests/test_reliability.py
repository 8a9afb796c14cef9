"""Real processes on loopback: the Procfile's web (gunicorn) and worker, the Jira sandbox as
Jira, and the delivery log and queue on disk (or on real Redis and PostgreSQL servers).

Every wait is a bounded poll that fails naming what it waited for; nothing asserts a duration
except the waits Jira asked for with Retry-After, which must be at least that long.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import sqlalchemy

from impact.config import load_config, pattern_warnings
from impact.decide import decide
from impact.model import Issue, Plan, Rule
from impact.patterns import TIMEOUT_SECONDS, compile_pattern
from pipeline.delivery_log import DeliveryLog, Entry, make_engine
from pipeline.queue import Inbox, make_huey
from sandbox.stack import (
    Process,
    Stack,
    listening_port,
    procfile_command,
    start_sandbox,
    wait_until,
)
from service.settings import Settings
from tests.conftest import ROOT
from tests.servers import postgres_server, redis_server
from webhooks.signature import sign

pytestmark = pytest.mark.e2e

SECRET = "reliability-secret"
BOT_AUTH = ("impact-bot@example.com", "sandbox-token")
NEEDS = "needs-customer-impact"
BLOCKING_LABEL = "customer-impact-blocking"
BIN = Path(sys.executable).parent
WAIT = 60.0  # the most any single wait below may take


@dataclass
class System:
    folder: Path
    env: dict[str, str]
    sandbox_url: str
    web_url: str
    processes: dict[str, Process] = field(default_factory=dict)

    # ---- processes

    def start(self, name: str) -> Process:
        """The Procfile's ``name``, started in the project's root as a platform starts it (so
        gunicorn reads gunicorn.conf.py); every path it writes is in ``env``, under ``folder``."""
        process = Process(
            name,
            procfile_command(name),
            env=self.env,
            cwd=ROOT,
            log=self.folder / f"{name}.log",
        )
        self.processes[name] = process
        return process

    def kill_worker(self) -> None:
        self.processes["worker"].kill(signal.SIGKILL)

    # ---- Jira (the sandbox)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        r = requests.request(method, self.sandbox_url + "/_sandbox" + path, json=body, timeout=10)
        assert r.status_code < 300, r.text
        return r.json() if r.content else None

    def create_issue(self, **fields: Any) -> str:
        return str(self.control("POST", "/issues", {"project": "SHOP", **fields})["key"])

    def issue(self, key: str) -> dict[str, Any]:
        r = requests.get(f"{self.sandbox_url}/rest/api/2/issue/{key}", auth=BOT_AUTH, timeout=10)
        r.raise_for_status()
        return dict(r.json())

    def comments(self, key: str) -> list[str]:
        r = requests.get(
            f"{self.sandbox_url}/rest/api/2/issue/{key}/comment", auth=BOT_AUTH, timeout=10
        )
        r.raise_for_status()
        return [c["body"] for c in r.json()["comments"]]

    def jira_calls(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "/calls")["calls"])

    def fault(self, **spec: Any) -> None:
        self.control("POST", "/faults", spec)

    def register_webhook(self) -> None:
        r = requests.post(
            f"{self.sandbox_url}/rest/webhooks/1.0/webhook",
            auth=BOT_AUTH,
            json={
                "name": "customer impact",
                "url": self.web_url,
                "events": ["jira:issue_created", "jira:issue_updated"],
                "secret": SECRET,
            },
            timeout=10,
        )
        assert r.status_code == 201, r.text

    # ---- our side

    def post(self, body: bytes, identifier: str) -> requests.Response:
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature": sign(body, secret=SECRET),
            "X-Atlassian-Webhook-Identifier": identifier,
        }
        return requests.post(self.web_url, data=body, headers=headers, timeout=30)

    def entries(self) -> list[Entry]:
        engine = make_engine(self.env["DATABASE_URL"])
        try:
            return DeliveryLog(engine).entries(limit=10_000)
        finally:
            engine.dispose()

    def waiting(self) -> int:
        """Deliveries the web process accepted that the worker has not taken yet."""
        huey = make_huey(Settings.from_env(self.env))
        try:
            return Inbox(huey).size()
        finally:
            huey.storage.close()

    def finished(self, expected: int) -> list[Entry]:
        """Nothing waiting, every row final, and at least ``expected`` rows for creations."""
        if self.waiting():
            return []
        rows = self.entries()
        created = [e for e in rows if e.event == "jira:issue_created" and e.status != "duplicate"]
        if len(created) < expected or any(e.status in ("queued", "running") for e in rows):
            return []
        return rows

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.processes.values())

    def wait(self, what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
        """``wait_until``, showing the processes' output if it gives up."""
        try:
            return wait_until(what, check, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None


def run(command: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, str]]:
    """Redis and PostgreSQL servers, started once for this module when a test asks."""
    with redis_server() as redis_url, postgres_server() as pg_url:
        yield {"REDIS_URL": redis_url, "DATABASE_URL": pg_url}


def start_system(tmp_path: Path, request: pytest.FixtureRequest, **settings: str) -> System:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JIRA_", "REDIS", "DATABASE"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    env["HOST"] = "127.0.0.1"  # the Procfile's bind address: loopback only
    sandbox, sandbox_url = start_sandbox(tmp_path / "sandbox.log", env=env, cwd=tmp_path)
    env |= {
        "JIRA_URL": sandbox_url,
        "JIRA_EMAIL": BOT_AUTH[0],
        "JIRA_API_TOKEN": BOT_AUTH[1],
        "JIRA_WEBHOOK_SECRET": SECRET,
        "IMPACT_CONFIG": str(ROOT / "config" / "impact.toml"),
        "DATABASE_URL": f"sqlite:///{tmp_path}/var/impact.db",
        "QUEUE_PATH": str(tmp_path / "var" / "queue.db"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "var" / "metrics"),
        "PORT": "0",  # gunicorn binds a free port and logs which
        "WEB_CONCURRENCY": "2",
        "WORKER_THREADS": "4",
        "RETRY_BASE_SECONDS": "0.5",
        "RETRY_MAX_SECONDS": "4",
        "DELIVERY_LEASE_SECONDS": "3",
        **settings,
    }
    system = System(tmp_path, env, sandbox_url, web_url="")
    system.processes["sandbox"] = sandbox
    request.addfinalizer(lambda: [p.stop() for p in system.processes.values()])
    run([str(BIN / "jira-impact"), "db", "upgrade"], env, tmp_path)
    port = listening_port(system.start("web"), since=0)
    system.web_url = f"http://127.0.0.1:{port}/webhooks/jira"
    wait_until("the web process", lambda: answers(f"http://127.0.0.1:{port}/healthz"))
    system.start("worker")
    return system


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def created_payload(system: System, key: str) -> bytes:
    """What Jira sends when ``key`` is created, built from the sandbox's own issue."""
    issue = system.issue(key)
    return json.dumps(
        {
            "timestamp": int(time.time() * 1000),
            "webhookEvent": "jira:issue_created",
            "issue_event_type_name": "issue_created",
            "user": {"accountId": "ana", "displayName": "Ana"},
            "issue": issue,
        }
    ).encode()


def writes(calls: list[dict[str, Any]], key: str) -> tuple[int, int]:
    """(edits, comments) the worker sent to Jira for ``key`` that Jira accepted."""
    edits = [c for c in calls if c["method"] == "PUT" and c["path"].endswith(f"/issue/{key}")]
    posts = [c for c in calls if c["method"] == "POST" and c["path"].endswith(f"/{key}/comment")]
    return (
        sum(1 for c in edits if c["status"] < 300),
        sum(1 for c in posts if c["status"] < 300),
    )


# --------------------------------------------------------------------------------------------


def backend_settings(request: pytest.FixtureRequest, backend: str) -> dict[str, str]:
    """Settings for ``backend``: a fresh PostgreSQL database and an empty Redis for each test."""
    if backend == "sqlite":
        return {}
    servers = request.getfixturevalue("backends")
    redis.Redis.from_url(servers["REDIS_URL"]).flushdb()
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(servers["DATABASE_URL"], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    database = servers["DATABASE_URL"].rsplit("/", 1)[0] + "/" + name
    return {"REDIS_URL": servers["REDIS_URL"], "DATABASE_URL": database}


@pytest.mark.parametrize("backend", ["sqlite", "redis+postgresql"])
def test_same_delivery_five_times_makes_one_edit_and_one_comment(tmp_path, request, backend):
    system = start_system(tmp_path, request, **backend_settings(request, backend))
    sequential, concurrent = system.create_issue(summary="Pens"), system.create_issue(summary="Ink")

    body = created_payload(system, sequential)
    answers = [system.post(body, "delivery-seq").json()["status"] for _ in range(5)]
    assert answers == ["queued"] + ["duplicate"] * 4

    body = created_payload(system, concurrent)
    start = threading.Barrier(5)
    statuses: list[str] = []

    def send() -> None:
        start.wait()
        statuses.append(system.post(body, "delivery-con").json()["status"])

    threads = [threading.Thread(target=send) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == ["duplicate"] * 4 + ["queued"]

    rows = system.wait("both deliveries to finish", lambda: system.finished(2))
    calls = system.jira_calls()
    for key in (sequential, concurrent):
        assert writes(calls, key) == (1, 1), system.logs()
        assert NEEDS in system.issue(key)["fields"]["labels"]
        assert len(system.comments(key)) == 1
    assert (
        sorted(e.status for e in rows if e.identifier.startswith("delivery-"))
        == ["done"] * 2 + ["duplicate"] * 8
    )


@pytest.mark.parametrize("backend", ["sqlite", "redis+postgresql"])
def test_worker_killed_mid_flight_then_restarted_loses_and_repeats_nothing(
    tmp_path, request, backend
):
    system = start_system(tmp_path, request, **backend_settings(request, backend))
    system.register_webhook()
    # Jira answers edits slowly, so jobs are in flight when the worker is killed.
    system.fault(method="PUT", path=r"/rest/api/2/issue/SHOP-\d+$", delay_ms=300, times=1000)
    keys = [system.create_issue(summary=f"Request {n}") for n in range(16)]

    system.wait("a job in flight", lambda: any(e.status == "running" for e in system.entries()))
    system.kill_worker()
    in_flight = {e.identifier for e in system.entries() if e.status == "running"}
    assert in_flight

    system.start("worker")
    rows = system.wait("every delivery to finish", lambda: system.finished(len(keys)))
    delivered = [d for d in system.control("GET", "/deliveries?wait=10")["deliveries"]]
    accepted = {d["id"] for d in delivered if d["answer"] == "queued"}
    by_id = {e.identifier: e for e in rows if e.status != "duplicate"}
    assert accepted <= set(by_id), "an accepted delivery is missing from the log"
    assert {by_id[i].status for i in accepted} <= {"done", "ignored"}
    assert sorted(e.issue_key for e in rows if e.event == "jira:issue_created") == sorted(keys)
    # what the killed worker was running was run again, after its lease ran out
    assert all(by_id[i].attempts >= 2 for i in in_flight), [by_id[i] for i in in_flight]

    for key in keys:
        assert NEEDS in system.issue(key)["fields"]["labels"], key
        assert len(system.comments(key)) == 1, key


ATTEMPT = re.compile(r"^attempt (\d+) at (\S+), (\d+) ms:$")


def attempts_of(entry: Entry) -> list[tuple[float, float, list[str]]]:
    """(start, end, calls) for each attempt the log recorded."""
    found: list[tuple[float, float, list[str]]] = []
    for line in (entry.calls or "").splitlines():
        head = ATTEMPT.match(line)
        if head:
            start = datetime.fromisoformat(head.group(2).replace("Z", "+00:00")).timestamp()
            found.append((start, start + int(head.group(3)) / 1000, []))
        elif found:
            found[-1][2].append(line.strip())
    return found


def test_jira_faults_are_waited_out_and_every_delivery_ends_done(tmp_path, request):
    retry_after = 2
    system = start_system(tmp_path, request, DELIVERY_LEASE_SECONDS="30", DELIVERY_ATTEMPTS="8")
    system.register_webhook()
    edit, comment = r"/rest/api/2/issue/SHOP-\d+$", r"/rest/api/2/issue/SHOP-\d+/comment$"
    system.fault(method="PUT", path=edit, status=429, retry_after=retry_after, times=3)
    system.fault(method="PUT", path=edit, status=503, times=2)
    system.fault(method="POST", path=comment, status=500, times=2)
    system.fault(method="POST", path=comment, status=503, retry_after=1, times=1)
    system.fault(method="GET", path=comment, delay_ms=10_500, times=1)  # the client gives up
    keys = [system.create_issue(summary=f"Request {n}") for n in range(6)]

    rows = system.wait("every delivery to finish", lambda: system.finished(len(keys)), 90)
    created = [e for e in rows if e.event == "jira:issue_created"]
    assert {e.status for e in created} == {"done"}, [(e.issue_key, e.error) for e in created]
    for key in keys:
        assert NEEDS in system.issue(key)["fields"]["labels"], key
        assert len(system.comments(key)) == 1, key

    # 5xx and no answer end an attempt, and the queue tries again later
    seen: set[str] = set()
    for entry in created:
        for _start, _end, calls in attempts_of(entry)[:-1]:
            seen.add((calls[-1] if calls else "").rsplit("-> ", 1)[-1])
    assert {"503", "500", "no answer"} <= seen, seen
    # a 429 is waited out in the attempt: the call is sent again after Retry-After
    log = system.control("GET", "/calls")["calls"]  # a fault answers before it authenticates
    limited = [c for c in log if c["status"] == 429]
    assert len(limited) == 3
    for refused in limited:
        again = next(c for c in log if c["seq"] > refused["seq"] and c["path"] == refused["path"])
        waited = again["at"] - refused["at"]
        assert waited >= retry_after, f"{refused['path']} sent again {waited:.2f} s later"


MANAGED = {
    "customer-impact-blocking",
    "customer-impact-degraded",
    "customer-impact-indirect",
    "internal-preference",
    NEEDS,
    "customer-impact-inferred",
}


@pytest.mark.parametrize("backend", ["sqlite", "redis+postgresql"])
def test_a_replayed_or_late_creation_never_undoes_what_a_person_set_since(
    tmp_path, request, backend
):
    system = start_system(tmp_path, request, **backend_settings(request, backend))
    system.register_webhook()
    key = system.create_issue(summary="Black pens for the logistics team")

    def labels() -> set[str]:
        return set(system.issue(key)["fields"]["labels"]) & MANAGED

    system.wait("the new issue to be asked", lambda: labels() == {NEEDS})
    records = system.control("GET", "/deliveries?wait=10")["deliveries"]
    (created,) = [d for d in records if d["event"] == "jira:issue_created" and d["issue"] == key]
    captured = json.dumps(created["payload"]).encode()  # the body Jira signed and sent

    system.control("POST", f"/issues/{key}/edit", {"impact": "Blocks paying customers"})
    system.wait("the person's impact to be labelled", lambda: labels() == {BLOCKING_LABEL})
    system.wait("the worker to finish", lambda: system.finished(1))
    since = system.jira_calls()[-1]["seq"]

    # Fifty replays of the captured creation, each under an identifier of its own: nothing.
    answers = {system.post(captured, f"replay-{n}").json()["status"] for n in range(50)}
    assert answers == {"duplicate"}
    # Jira's late retry of the creation (a body of its own, as old as the creation): taken, and
    # the issue is read again rather than acted on from that body.
    late = json.dumps(created["payload"] | {"late": True}).encode()
    assert system.post(late, "late-retry").json()["status"] == "queued"
    system.wait("the late delivery to finish", lambda: system.finished(1) and (
        any(e.identifier == "late-retry" and e.status == "done" for e in system.entries())
    ))  # fmt: skip

    about = [
        (c["method"], c["path"])
        for c in system.jira_calls()
        if c["seq"] > since and (key in c["path"] or c["path"].endswith("/issue/rank"))
    ]  # (a worker thread's first job also looks up the field list: not about the issue)
    assert about == [("GET", f"/rest/api/2/issue/{key}")]
    assert labels() == {BLOCKING_LABEL}  # never two that contradict each other
    assert len(system.comments(key)) == 1  # asked once, when it was created


# --------------------------------------------------------------------------------------------
# What one rule may cost the worker


def _decide_with_shipped_rules(summary: str, description: str, **issue: Any) -> Plan:
    config = load_config(ROOT / "config" / "impact.toml")
    project = config.for_project("SHOP")
    assert project is not None
    return decide(
        Issue(key="SHOP-1", project="SHOP", summary=summary, description=description, **issue),
        project,
    )


def test_the_shipped_rules_stay_quick_on_the_largest_description_and_still_match():
    """A 32 KB description of one repeated word cost the old 'outage reported' rule 1.6 s of
    worker time on every edit; the rule now reads the text once. Had any pattern run out of
    its time, the plan would carry a note saying so; and `config check` finds no risky shape
    in any shipped pattern."""
    assert pattern_warnings(load_config(ROOT / "config" / "impact.toml")) == []
    hostile = ("down " * 6554)[:32_767]
    plan = _decide_with_shipped_rules("Checkout page", hostile)
    assert plan.notes == ()
    assert plan.level is None  # "down" alone is not an outage reported by customers
    for summary in ("Customers report an outage", "Site down for our customers"):
        assert _decide_with_shipped_rules(summary, hostile).rule == "outage reported"


def test_a_pattern_that_runs_too_long_is_cut_off_and_counts_as_not_matching():
    """Whatever an admin writes, one pattern gets a bounded share of the worker: the regex
    engine stops it (impact.patterns.TIMEOUT_SECONDS) and the decision says so."""
    greedy = Rule("greedy", "blocking", text=(compile_pattern(r"(?i)(a|aa)+$"),))
    config = load_config(ROOT / "config" / "impact.toml")
    project = replace(config, rules=(greedy,)).for_project("SHOP")
    assert project is not None
    # Some seconds of backtracking without the limit (it doubles with every few more a's).
    plan = decide(Issue(key="SHOP-9", project="SHOP", summary="a" * 32 + "!"), project)
    assert plan.level is None and plan.rule is None
    assert plan.notes == (
        f"rule 'greedy': pattern '(?i)(a|aa)+$' took over {TIMEOUT_SECONDS:g} s on SHOP-9; "
        "counted as not matching",
    )


# --------------------------------------------------------------------------------------------
# Slow clients


SLOW_CONNECTIONS = 20  # half trickle their headers, half their body
TRICKLE_EVERY = 0.2  # seconds between two bytes
HEADER_DEADLINE = 5.0  # gunicorn.conf.py's keepalive: the most a request's headers may take


class Trickler(threading.Thread):
    """A client that sends its request a byte at a time, never all of it (slowloris); it ends
    when the server closes the connection or ``stop`` is set, and notes which came first."""

    def __init__(self, port: int, request: bytes, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        self.request, self.stop = request, stop
        self.sent = 0
        self.closed_by_server = threading.Event()

    def run(self) -> None:
        try:
            for byte in self.request[:-1]:  # never the last byte
                if self.stop.wait(TRICKLE_EVERY):
                    return
                self.sock.sendall(bytes([byte]))
                self.sent += 1
                if _closed(self.sock):
                    break
        except OSError:
            pass
        self.closed_by_server.set()


def _closed(sock: socket.socket) -> bool:
    """Whether the server has closed its end (a read finds end of file or a reset)."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def test_slow_clients_do_not_stop_webhooks_or_health_from_answering(tmp_path):
    """Twenty connections that send their headers, or their body, a byte at a time, against
    the Procfile's web process: a webhook and /healthz still answer within a second (beside
    what a bare request takes in this run), and a client that never ends its headers is let go
    once gunicorn's header deadline has passed."""
    with Stack(tmp_path / "stack", processes=("web",)) as stack:
        url, session = stack.app_url, requests.Session()

        def delivery(n: int) -> float:
            body = json.dumps(
                {
                    "webhookEvent": "jira:issue_created",
                    "issue": {"key": f"SHOP-{n}", "fields": {"project": {"key": "SHOP"}}},
                }
            ).encode()
            headers = {
                "Content-Type": "application/json",
                "X-Hub-Signature": sign(body, secret=stack.secret),
                "X-Atlassian-Webhook-Identifier": f"slow-{n}",
            }
            started = time.perf_counter()
            answer = session.post(f"{url}/webhooks/jira", data=body, headers=headers, timeout=10)
            assert answer.status_code == 202, answer.text
            return time.perf_counter() - started

        def health() -> float:
            started = time.perf_counter()
            assert session.get(f"{url}/healthz", timeout=10).status_code == 200
            return time.perf_counter() - started

        baseline = max([health() for _ in range(5)] + [delivery(n) for n in range(5)])

        body = b'{"webhookEvent": "jira:issue_created", "issue": {"key": "SHOP-1"}}' * 50
        head_only = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 200
        body_slowly = (
            b"POST /webhooks/jira HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
            + f"\r\nX-Hub-Signature: {sign(body, secret=stack.secret)}".encode()
            + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        stop = threading.Event()
        heads = [Trickler(stack.port, head_only, stop) for _ in range(SLOW_CONNECTIONS // 2)]
        bodies = []
        for _ in range(SLOW_CONNECTIONS // 2):
            sender = Trickler(stack.port, body, stop)
            sender.sock.sendall(body_slowly)  # the headers at once, then the body a byte a time
            bodies.append(sender)
        try:
            for trickler in heads + bodies:
                trickler.start()
            wait_until(
                "every slow client to be sending",
                lambda: all(t.sent >= 2 for t in heads + bodies),
                timeout=10,
                every=0.05,
            )

            limit = 1.0 + 2 * baseline
            took = [max(health(), delivery(100 + n)) for n in range(5)]
            assert max(took) < limit, f"answers took {took} s under slow clients (bare {baseline})"
            assert not any(t.closed_by_server.is_set() for t in heads + bodies), (
                "a slow client was let go before the answers were timed"
            )
            wait_until(
                "the server to drop the clients whose headers never end",
                lambda: all(t.closed_by_server.is_set() for t in heads),
                timeout=HEADER_DEADLINE + 10,
            )
            assert health() < limit  # and it still answers
        finally:
            stop.set()
            for trickler in heads + bodies:
                trickler.join(timeout=5)
                trickler.sock.close()
