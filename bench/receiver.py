"""``make bench``: how fast the receiver takes deliveries, next to a bare Flask endpoint.

    .venv/bin/python bench/receiver.py [--seconds 10] [--backends sqlite,redis,redis+postgresql]

Everything runs on this machine, on 127.0.0.1: the Jira sandbox, the Procfile's web process
(gunicorn on ``webhooks:create_app()``) with its worker running, and a bare Flask endpoint that
only reads the body and answers 202, started with the same gunicorn command. ``wrk`` sends
signed, real-size deliveries over 16 connections, each a distinct event (its own
X-Atlassian-Webhook-Identifier and changelog id, so its own body: the receiver takes a body
already accepted for a replay, and would answer it without queuing anything); the two endpoints
take turns (``--turns``), the bare one only once the worker has caught up (so that it does not
share the CPU with our backlog). Both run from the project's folder, so both get its
``gunicorn.conf.py`` (JSON access lines, metrics).

Printed: accepted deliveries per second, p50 / p99 time to the 202, the ratio to the bare
endpoint, and the worker's CPU per delivery; the ratio turn by turn; the CPU each process group
spent per delivery during the loads (web processes, worker, Redis/PostgreSQL servers, wrk), ours
beside the bare endpoint's, read from /proc; then, with the worker idle, the time from a
delivery's POST to the issue's edit arriving at the sandbox. Needs ``wrk`` (apt-get install
wrk); the Redis and PostgreSQL rows need ``redis-server`` and PostgreSQL's ``initdb``/``pg_ctl``.

During the load the worker triages every delivery it is handed: they are updates to issues that
already carry their label, so triage (parse, decide, record) makes no Jira call and the figures
measure our own processes, not the sandbox's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.stack import Process, free_port, procfile_command, start_sandbox, wait_until

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECRET = "bench-secret"
BOT_AUTH = ("impact-bot@example.com", "sandbox-token")
POOL = 64  # issues the load's deliveries are about
HALVES = ("read", "take")  # --split: the receiver's endpoint doing one half of its work
WEB_PATH = "/webhooks/jira"


def bare_app() -> Any:
    """The bare endpoint: reads the body, answers 202. Started by gunicorn from this file."""
    from flask import Flask, request

    app = Flask("bare")

    @app.post(WEB_PATH)
    def receive() -> Any:
        request.get_data()
        return {"status": "queued"}, 202

    return app


def half_app(half: str) -> Any:
    """Diagnosis (``--split``): the receiver's endpoint doing one half of its work, ``read``
    (authenticate and parse the delivery) or ``take`` (accept it into the queue's store, which
    the worker then drains, without parsing it). Started by gunicorn from this file."""
    from flask import Flask, request

    from pipeline.delivery import Delivery
    from webhooks import create_app

    receiver = create_app().extensions["impact.receiver"]
    app = Flask(half)

    @app.post(WEB_PATH)
    def receive() -> Any:
        body = request.get_data()
        if half == "read":
            receiver.read(body, request.headers, request.args, request.mimetype)
        else:
            identifier = request.headers["X-Atlassian-Webhook-Identifier"]
            delivery = Delivery(
                identifier, "jira:issue_updated", None, body.decode(), received_at=time.time()
            )
            receiver.dispatcher.submit(delivery)
        return {"status": "queued"}, 202

    return app


# --------------------------------------------------------------------------------------------
# Processes


def listening(port: int) -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


# --------------------------------------------------------------------------------------------
# Jira (the sandbox)


class Sandbox:
    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        import requests

        self.http = requests.Session()
        self.process, self.url = start_sandbox(folder / "sandbox.log", env=env, cwd=folder)

    def create_issue(self, **fields: Any) -> str:
        r = self.http.post(f"{self.url}/_sandbox/issues", json={"project": "SHOP", **fields})
        r.raise_for_status()
        return str(r.json()["key"])

    def issue(self, key: str) -> dict[str, Any]:
        r = self.http.get(f"{self.url}/rest/api/2/issue/{key}", auth=BOT_AUTH)
        r.raise_for_status()
        return dict(r.json())

    def calls_since(self, seq: int) -> tuple[list[dict[str, Any]], int]:
        body = self.http.get(f"{self.url}/_sandbox/calls", params={"since": seq}).json()
        return body["calls"], int(body["last"])


def delivery(
    event: str, issue: dict[str, Any], *, by: str = "ana", change: int = 1, at: int | None = None
) -> bytes:
    """A delivery's body, on one line; ``change`` is its changelog's id (one per event), ``at``
    its timestamp (epoch ms; now by default)."""
    return json.dumps(
        {
            "timestamp": int(time.time() * 1000) if at is None else at,
            "webhookEvent": event,
            "issue_event_type_name": "issue_updated" if event.endswith("updated") else None,
            "user": {"accountId": by, "displayName": by.title(), "accountType": "atlassian"},
            "issue": issue,
            "changelog": {
                "id": str(change),
                "items": [{"field": "description", "fieldtype": "jira"}],
            },
        }
    ).encode()


class Events:
    """Update deliveries for the bench's issues, each a new event: their changelog ids never
    repeat within a run. The ``count`` taken at once share one timestamp, so none is older than
    another for its issue (an older one would make the worker read the issue again, as it must,
    and the figures would measure Jira's rate limit, not our processes)."""

    def __init__(self, issues: list[dict[str, Any]]) -> None:
        self.issues = issues
        self.change = 0

    def take(self, count: int) -> list[bytes]:
        at = int(time.time() * 1000)
        bodies = []
        for _ in range(count):
            self.change += 1
            issue = self.issues[self.change % len(self.issues)]
            bodies.append(delivery("jira:issue_updated", issue, change=self.change, at=at))
        return bodies


# --------------------------------------------------------------------------------------------
# Load (wrk)

WRK_SCRIPT = """
local bodies, signatures, n = {}, {}, 0
for line in io.lines({BODIES}) do bodies[#bodies + 1] = line end
for line in io.lines({SIGNATURES}) do signatures[#signatures + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local i = (n % #bodies) + 1
  wrk.headers["X-Hub-Signature"] = signatures[i]
  wrk.headers["X-Atlassian-Webhook-Identifier"] = "{PREFIX}-" .. n
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


@dataclass
class Load:
    accepted_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    refused: int
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU per request, by process group
    repeated: int = 0  # requests past the run's distinct deliveries (replays, answered as such)


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if found is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}[unit]


def run_wrk(
    url: str,
    script: Path,
    seconds: int,
    connections: int,
    groups: dict[str, list[int]] | None = None,
) -> Load:
    """One load run; with ``groups`` (name → process ids), the CPU each group and wrk spent."""
    groups = {
        name: [p for pid in pids for p in process_tree(pid)]
        for name, pids in (groups or {}).items()
    }
    before = {name: cpu_seconds(pids) for name, pids in groups.items()}
    wrk_before = _children_cpu()
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    spent = {name: cpu_seconds(pids) - before[name] for name, pids in groups.items()}
    spent["wrk"] = _children_cpu() - wrk_before
    if "requests in" not in out or "50%" not in out:
        raise SystemExit(f"wrk said:\n{out}")
    total, took = re.search(r"(\d+) requests in (\S+),", out).groups()  # type: ignore[union-attr]
    duration = _ms(took) / 1000
    refused = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors:
        refused += sum(int(n) for n in errors.groups())
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)\s*$", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)\s*$", out, re.M).group(1))  # type: ignore[union-attr]
    cpu = {name: 1000 * seconds / max(1, int(total)) for name, seconds in spent.items()}
    return Load((int(total) - refused) / duration, p50, p99, int(total), refused, cpu)


# --------------------------------------------------------------------------------------------
# CPU accounting (Linux /proc): where each delivery's CPU goes, ours beside the bare endpoint's


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (gunicorn's workers, PostgreSQL's backends)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        stat = _stat(entry.name) if entry.name.isdigit() else None
        if stat is not None:
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(current := todo.pop())
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the processes still running (a process that ended counts 0)."""
    ticks = sum(int(s[11]) + int(s[12]) for s in map(_stat, map(str, pids)) if s is not None)
    return ticks / os.sysconf("SC_CLK_TCK")


def _stat(pid: str) -> list[str] | None:
    """/proc/PID/stat's fields after the command name: [state, ppid, …, utime at 11, stime]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the wrk runs, once they have ended
    return usage.ru_utime + usage.ru_stime


def store_pids(env: dict[str, str]) -> list[int]:
    """The Redis and PostgreSQL servers the bench started (found by the port they listen on)."""
    ports = [
        found[1]
        for key in ("REDIS_URL", "DATABASE_URL")
        if (found := re.search(r"127\.0\.0\.1:(\d+)", env.get(key, "")))
    ]
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        for port in ports:
            redis = "redis-server" in line and f"127.0.0.1:{port}" in line
            if redis or ("postgres" in line and f" -p {port} " in line):
                pids.append(int(entry.name))
    return pids


def write_script(folder: Path, bodies: list[bytes], prefix: str) -> Path:
    """A wrk script sending ``bodies`` in turn (from the first again once all are sent), each
    signed, under identifiers of its own; the bodies and signatures go in files, one a line."""
    from webhooks.signature import sign

    body_file = folder / f"bodies-{prefix}.jsonl"
    body_file.write_bytes(b"".join(body + b"\n" for body in bodies))
    signature_file = folder / f"signatures-{prefix}.txt"
    signature_file.write_text("".join(sign(body, secret=SECRET) + "\n" for body in bodies))
    script = folder / f"load-{prefix}.lua"
    script.write_text(
        WRK_SCRIPT.replace("{BODIES}", json.dumps(str(body_file)))
        .replace("{SIGNATURES}", json.dumps(str(signature_file)))
        .replace("{PREFIX}", prefix)
    )
    return script


# --------------------------------------------------------------------------------------------
# The receiver under test


@contextlib.contextmanager
def backend_env(name: str, folder: Path) -> Iterator[dict[str, str]]:
    sys.path.insert(0, str(ROOT))
    from tests.servers import postgres_server, redis_server

    env = {
        "DATABASE_URL": f"sqlite:///{folder}/var/impact.db",
        "QUEUE_PATH": str(folder / "var" / "queue.db"),
    }
    with contextlib.ExitStack() as stack:
        if "redis" in name:
            env["REDIS_URL"] = stack.enter_context(redis_server())
        if "postgresql" in name:
            env["DATABASE_URL"] = stack.enter_context(postgres_server())
        yield env


def start_web(
    name: str, folder: Path, env: dict[str, str], app: str | None = None
) -> tuple[Process, str]:
    """The Procfile's web command, from the project's folder as the Procfile runs it, so that
    gunicorn reads its gunicorn.conf.py there; with ``app`` (``"receiver:bare_app()"``), on that
    app of this file instead of the receiver, under the same settings."""
    port = free_port()
    command = procfile_command("web")
    if app is not None:
        command = command.replace("'webhooks:create_app()'", shlex.quote(app))
        command += f" --pythonpath {shlex.quote(str(ROOT / 'bench'))}"
    process = Process(
        name,
        command,
        env=env | {"PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics")},
        cwd=ROOT,
        log=folder / f"{name}.log",
    )
    wait_until(f"the {name} process", lambda: listening(port))
    return process, f"http://127.0.0.1:{port}{WEB_PATH}"


def start_receiver(
    folder: Path, env: dict[str, str], *, worker: bool = True
) -> tuple[list[Process], str]:
    """The Procfile's release step, then its web process and (with ``worker``) its worker."""
    env = env | {"PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics")}
    subprocess.run([str(BIN / "jira-impact"), "db", "upgrade"], env=env, cwd=folder, check=True,
                   capture_output=True)  # fmt: skip
    web, url = start_web("web", folder, env)
    processes = [web]
    if worker:
        command = procfile_command("worker")
        processes.append(Process("worker", command, env=env, cwd=folder, log=folder / "worker.log"))
    return processes, url


def stores(env: dict[str, str]) -> tuple[Any, Any]:
    """The delivery log and the queue's inbox the receiver under test writes to."""
    from pipeline.delivery_log import DeliveryLog
    from pipeline.queue import Inbox, make_huey
    from service.settings import Settings

    settings = Settings.from_env(env)
    return DeliveryLog.from_url(settings.database_url), Inbox(make_huey(settings))


def worker_done(log: Any, inbox: Any) -> dict[str, int] | None:
    """The log's counts once the worker has taken every delivery and finished them, else None."""
    counts: dict[str, int] = log.counts()
    busy = inbox.size() + counts.get("queued", 0) + counts.get("running", 0)
    return None if busy else counts


def end_to_end(sandbox: Sandbox, url: str, samples: int) -> list[float]:
    """Milliseconds from sending a delivery to the sandbox receiving the issue's edit."""
    import requests

    from webhooks.signature import sign

    seq = sandbox.calls_since(10**11)[1]
    took = []
    for n in range(samples):
        key = sandbox.create_issue(summary=f"Latency probe {n}")
        body = delivery("jira:issue_created", sandbox.issue(key))
        _, seq = sandbox.calls_since(seq)
        time.sleep(0.3)  # the worker is idle: its pollers have backed off
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature": sign(body, secret=SECRET),
            "X-Atlassian-Webhook-Identifier": f"e2e-{uuid.uuid4()}",
        }
        started = time.perf_counter()
        r = requests.post(url, data=body, headers=headers, timeout=10)
        assert r.status_code == 202, r.text

        def edited(key: str = key) -> bool:
            nonlocal seq
            calls, seq = sandbox.calls_since(seq)
            return any(c["method"] == "PUT" and c["path"].endswith(f"/{key}") for c in calls)

        deadline = time.monotonic() + 30
        while not edited():
            if time.monotonic() > deadline:
                raise SystemExit(f"{key} was never edited")
            time.sleep(0.002)
        took.append((time.perf_counter() - started) * 1000)
    return took


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="per load run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--turns", type=int, default=3, help="load runs of each endpoint")
    parser.add_argument("--backends", default="sqlite,redis,redis+postgresql")
    parser.add_argument("--e2e-samples", type=int, default=40)
    parser.add_argument(
        "--pool-rate",
        type=int,
        default=3000,
        help="distinct deliveries made ready per second of a load run (a faster run sends some "
        "twice, and says so)",
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="diagnosis: also load the endpoint doing only its read half, then only its take half",
    )
    parser.add_argument(
        "--no-worker", action="store_true", help="diagnosis only: the web process alone"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    sys.path.insert(0, str(ROOT))

    folder = Path(tempfile.mkdtemp(prefix="impact-bench-"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("JIRA_", "REDIS"))}
    base_env.pop("DATABASE_URL", None)
    base_env["PATH"] = f"{BIN}{os.pathsep}{base_env.get('PATH', '')}"
    base_env["PYTHONPATH"] = str(ROOT)
    base_env["HOST"] = "127.0.0.1"  # the Procfile's bind address: loopback only
    processes: list[Process] = []
    try:
        sandbox = Sandbox(folder, base_env)
        processes.append(sandbox.process)
        env = base_env | {
            "JIRA_URL": sandbox.url,
            "JIRA_EMAIL": BOT_AUTH[0],
            "JIRA_API_TOKEN": BOT_AUTH[1],
            "JIRA_WEBHOOK_SECRET": SECRET,
            "IMPACT_CONFIG": str(ROOT / "config" / "impact.toml"),
        }
        bare, bare_url = start_web("bare", folder, env, app="receiver:bare_app()")
        processes.append(bare)

        labelled = [
            sandbox.create_issue(summary=f"Labelled {n}", labels=["needs-customer-impact"])
            for n in range(POOL)
        ]
        events = Events([sandbox.issue(key) for key in labelled])
        pool = args.seconds * args.pool_rate  # distinct deliveries ready for each load run

        def load(url: str, sub: Path, prefix: str, groups: dict[str, list[int]]) -> Load:
            """A load run of new events; its script and bodies go once it has run."""
            script = write_script(sub, events.take(pool), prefix)
            try:
                done = run_wrk(url, script, args.seconds, args.connections, groups)
            finally:
                for path in sub.glob(f"*-{prefix}.*"):
                    path.unlink()
            done.repeated = max(0, done.requests - pool)
            return done

        print(f"payload: {len(events.take(1)[0])} bytes, signed, {pool} distinct per run; "
              f"{args.connections} connections; gunicorn: {procfile_command('web')}",
              flush=True)  # fmt: skip

        rows = []
        e2e: list[float] = []
        for backend in args.backends.split(","):
            sub = folder / backend.replace("+", "-")
            sub.mkdir()
            with backend_env(backend, sub) as store_env:
                receiver, url = start_receiver(sub, env | store_env, worker=not args.no_worker)
                processes.extend(receiver)
                halves = {}
                for half in HALVES if args.split else ():
                    process, half_url = start_web(
                        half, sub, env | store_env, app=f'receiver:half_app("{half}")'
                    )
                    processes.append(process)
                    halves[half] = (process, half_url, [])
                if not e2e and not args.no_worker:
                    e2e = end_to_end(sandbox, url, args.e2e_samples)
                log, inbox = stores(env | store_env)

                def settled(log: Any = log, inbox: Any = inbox) -> dict[str, int]:
                    """The log's counts once the worker is idle (at once without a worker)."""
                    if args.no_worker:
                        return log.counts() | {"in the inbox": inbox.size()}
                    return wait_until(  # type: ignore[no-any-return]
                        "the worker to finish the queue", lambda: worker_done(log, inbox), 600
                    )

                bare_groups = {"web": [bare.popen.pid]}
                our_groups = {
                    "web": [receiver[0].popen.pid],
                    "worker": [p.popen.pid for p in receiver[1:]],
                    "stores": store_pids(store_env),
                }
                worker_pids = [p for pid in our_groups["worker"] for p in process_tree(pid)]
                worker_started = cpu_seconds(worker_pids)
                warm = write_script(sub, events.take(POOL), f"warm-{backend}")
                run_wrk(bare_url, warm, 2, args.connections)
                run_wrk(url, warm, 2, args.connections)
                bare_script = write_script(sub, events.take(POOL), f"bare-{backend}")
                ours, theirs = [], []
                for turn in range(args.turns):
                    settled()  # the bare endpoint does not share the CPU with our backlog
                    theirs.append(
                        run_wrk(bare_url, bare_script, args.seconds, args.connections, bare_groups)
                    )
                    ours.append(load(url, sub, f"{backend}-{turn}", our_groups))
                    for half, (process, half_url, loads) in halves.items():
                        settled()
                        groups = our_groups | {"web": [process.popen.pid]}
                        loads.append(load(half_url, sub, f"{backend}-{turn}-{half}", groups))
                accepted = sum(o.requests - o.refused for o in ours)
                stored = settled()
                # the worker's whole cost per delivery it ran (the log's duplicates it never
                # saw): during the loads and after them
                per_delivery = cpu_seconds(worker_pids) - worker_started
                stored["worker ms each"] = round(
                    1000 * per_delivery / max(1, stored.get("done", 0)), 2
                )
                split = {f"  {half} only": loads for half, (_, _, loads) in halves.items()}
                rows.append((backend, ours, theirs, accepted, stored, split))
                for p in receiver + [process for process, _, _ in halves.values()]:
                    p.stop()

        print()
        print(f"{'backend':<18} {'accepted/s':>10} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'bare/s':>8} {'ratio':>6}  refused  worker results")  # fmt: skip
        for backend, ours, theirs, _accepted, stored, _split in rows:
            rate = statistics.mean(o.accepted_per_s for o in ours)
            bare_rate = statistics.mean(t.accepted_per_s for t in theirs)
            p50 = statistics.mean(o.p50_ms for o in ours)
            p99 = max(o.p99_ms for o in ours)
            refused = sum(o.refused for o in ours)
            ratio = rate / bare_rate
            if repeated := sum(o.repeated for o in ours):
                print(f"{backend}: {repeated} requests repeated a delivery: raise --pool-rate")
            print(
                f"{backend:<18} {rate:>10.0f} {p50:>7.2f} {p99:>7.2f} {bare_rate:>8.0f} "
                f"{ratio:>6.2f}  {refused:>7}  {dict(sorted(stored.items()))}"
            )
        print("\nturn by turn (each run beside the bare run just before it): ratio, p99 ms")
        for backend, ours, theirs, _accepted, _stored, _split in rows:
            turns = [
                f"{o.accepted_per_s / t.accepted_per_s:.2f}, {o.p99_ms:.0f}"
                for o, t in zip(ours, theirs, strict=True)
            ]
            print(f"{backend:<18} " + " | ".join(turns))
        print("\nCPU per delivery, ms (mean over the turns), ours beside the bare endpoint's")
        print(f"{'':<18} {'web':>6} {'worker':>7} {'stores':>7} {'wrk':>6} {'total':>6}")
        for backend, ours, theirs, _accepted, _stored, split in rows:
            for name, loads in ((backend, ours), ("  bare", theirs), *split.items()):
                cpu = {k: statistics.mean(load.cpu_ms.get(k, 0.0) for load in loads)
                       for k in ("web", "worker", "stores", "wrk")}  # fmt: skip
                print(f"{name:<18} " + " ".join(f"{cpu[k]:>{w}.2f}" for k, w in
                      (("web", 6), ("worker", 7), ("stores", 7), ("wrk", 6))) +
                      f" {sum(cpu.values()):>6.2f}")  # fmt: skip
        print()
        if e2e:
            print(
                f"end to end, idle worker ({len(e2e)} deliveries, POST sent → edit at Jira): "
                f"p50 {percentile(e2e, 0.5):.0f} ms, p90 {percentile(e2e, 0.9):.0f} ms, "
                f"max {max(e2e):.0f} ms"
            )
    finally:
        for p in reversed(processes):
            p.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
