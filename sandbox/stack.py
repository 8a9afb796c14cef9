"""The whole product on loopback: the Jira sandbox plus the Procfile's own processes.

``Stack`` starts ``python -m sandbox`` and then every Procfile line (``web``, ``worker``) with
``sh -c``, exactly as a Procfile platform would, with settings in the environment pointing at the
sandbox. The end-to-end tests and ``make demo`` both use it. Everything binds to 127.0.0.1, every
wait is bounded, and ``close()`` stops every process it started.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import requests

ROOT = Path(__file__).resolve().parents[1]
BOT_EMAIL = "impact-bot@example.com"
BOT_TOKEN = "sandbox-token"
BOT_PAT = "sandbox-pat"
BOT_SCOPED_TOKEN = "sandbox-scoped-token"
BOT_CLIENT = ("sandbox-client-id", "sandbox-client-secret")
PERSON_BASIC = ("ana@example.com", "ana-token")  # a person of the seed, for reading as people do
PERSON_PAT = "ana-pat"
START_TIMEOUT_S = 60.0
# The product's unfinished work, as /metrics shows it (README): jobs in the queue, scheduled ones
# included; deliveries waiting (the inbox, or queued in the log); deliveries running. A job a
# worker has taken stays a delivery waiting or running until it is done: no gap between them.
BUSY_METRICS = (
    "jira_impact_queue_jobs",
    "jira_impact_queue_depth",
    'jira_impact_deliveries{status="running"}',
)
T = TypeVar("T")


class StackError(RuntimeError):
    pass


def data_paths(folder: Path) -> dict[str, str]:
    """Settings that put every file the product writes in ``folder``: the delivery log, the
    queue, the metrics of its processes (their defaults are under the working folder's var/)."""
    return {
        "DATABASE_URL": f"sqlite:///{folder / 'impact.db'}",
        "QUEUE_PATH": str(folder / "queue.db"),
        "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics"),
    }


def procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """The Procfile's process types and their commands, in file order."""
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            entries[name.strip()] = command.strip()
    return entries


def procfile_command(name: str) -> str:
    """The Procfile's command for ``name`` (``AssertionError`` when it has no such line)."""
    commands = procfile()
    assert name in commands, f"no {name}: line in the Procfile"
    return commands[name]


class Process:
    """A child in its own process group (so a signal reaches gunicorn's workers too), its output
    appended to ``log``."""

    def __init__(
        self, name: str, command: str, *, env: Mapping[str, str], cwd: Path, log: Path
    ) -> None:
        self.name = name
        self.log_path = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                ["sh", "-c", "exec " + command],
                env=dict(env),
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 15.0) -> None:
        """Send ``sig`` to the whole group and wait for the process to end."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
        self.popen.wait(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
        try:
            self.kill(signal.SIGTERM, timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL, 5.0)

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.name} ---\n" + "\n".join(text)


def wait_until(what: str, check: Callable[[], T], timeout: float = 60.0, every: float = 0.2) -> T:
    """``check()``'s first truthy answer, asked every ``every`` seconds; AssertionError naming
    ``what`` once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    """A loopback port free now. Another process may take it before ours binds it: prefer a
    process that binds port 0 and says which it got (the sandbox, gunicorn), and check that what
    answers on it is the process started (``listening_port``, ``tests.servers``)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def printed(process: Process, since: int, pattern: str) -> Callable[[], re.Match[str] | None]:
    """A check for ``wait_until``: the first match of ``pattern`` in what ``process`` wrote to its
    log after byte ``since``, or None; ``StackError`` once the process has exited without it."""

    def check() -> re.Match[str] | None:
        with process.log_path.open("rb") as out:
            out.seek(since)
            found = re.search(pattern, out.read().decode(errors="replace"))
        if found is None and process.popen.poll() is not None:
            code = process.popen.returncode
            raise StackError(f"{process.name} exited with {code}:\n{process.tail()}")
        return found

    return check


GUNICORN_LISTENING = r"Listening at: http://[^\s:]+:(\d+) \((\d+)\)"


def listening_port(process: Process, since: int, timeout: float = START_TIMEOUT_S) -> int:
    """The port a gunicorn started with ``PORT=0`` bound, as its log line "Listening at: …
    (pid)" reports it after byte ``since``. The pid must be ``process``'s own (``sh -c exec``
    made gunicorn's master the process started): the port is then held by this process, and no
    other can answer on it (gunicorn does not share ports with SO_REUSEPORT by default)."""
    try:
        check = printed(process, since, GUNICORN_LISTENING)
        found = wait_until(f"{process.name} to listen", check, timeout)
    except AssertionError as exc:
        raise StackError(f"{exc}\n{process.tail()}") from None
    port, pid = int(found.group(1)), int(found.group(2))
    if pid != process.popen.pid:
        ours = process.popen.pid
        raise StackError(f"port {port} is held by pid {pid}, not {process.name}'s ({ours})")
    return port


def log_size(log: Path) -> int:
    """Where what a process writes from now on starts (an earlier run's lines come before)."""
    return log.stat().st_size if log.exists() else 0


def start_sandbox(
    log: Path,
    *,
    flavour: str = "cloud",
    seed: str = "empty",
    args: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    timeout: float = START_TIMEOUT_S,
) -> tuple[Process, str]:
    """``python -m sandbox`` on a free loopback port, its output appended to ``log``: the process
    and the URL it prints once it listens. ``StackError`` (the process stopped) when it exits
    first or has not printed its URL within ``timeout`` seconds."""
    command = [sys.executable, "-m", "sandbox", "--port", "0", "--flavour", flavour]
    command += ["--seed", seed, *args]
    since = log_size(log)
    process = Process(
        "sandbox", shlex.join(command), env=os.environ if env is None else env, cwd=cwd, log=log
    )
    try:
        found = wait_until("the sandbox", printed(process, since, r"SANDBOX_URL=(\S+)\n"), timeout)
    except BaseException as exc:
        process.stop()
        if isinstance(exc, AssertionError):  # wait_until gave up
            raise StackError(f"{exc}\n{process.tail()}") from exc
        raise
    return process, found.group(1)


def credential_env(auth: str, sandbox_url: str) -> dict[str, str]:
    """The settings that sign the service account in to the sandbox with ``auth`` (basic,
    scoped, oauth or pat); scoped and oauth through the sandbox's gateway and token endpoint."""
    atlassian = {"ATLASSIAN_API_URL": sandbox_url, "ATLASSIAN_AUTH_URL": sandbox_url}
    if auth == "pat":
        return {"JIRA_AUTH": "pat", "JIRA_PAT": BOT_PAT}
    if auth == "scoped":
        scoped = {"JIRA_EMAIL": BOT_EMAIL, "JIRA_API_TOKEN": BOT_SCOPED_TOKEN}
        return {"JIRA_AUTH": "scoped", **scoped, **atlassian}
    if auth == "oauth":
        client_id, secret = BOT_CLIENT
        oauth = {"JIRA_CLIENT_ID": client_id, "JIRA_CLIENT_SECRET": secret}
        return {"JIRA_AUTH": "oauth", **oauth, **atlassian}
    return {"JIRA_AUTH": "basic", "JIRA_EMAIL": BOT_EMAIL, "JIRA_API_TOKEN": BOT_TOKEN}


class Stack:
    def __init__(
        self,
        workdir: Path,
        *,
        flavour: str = "cloud",
        seed: str = "empty",
        processes: Iterable[str] = ("web", "worker"),
        env: Mapping[str, str] | None = None,
        sandbox_args: Iterable[str] = (),
        auth: str | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.flavour = flavour
        self.auth = auth or ("pat" if flavour == "dc" else "basic")
        self.seed_name = seed
        self.process_names = tuple(processes)
        self.extra_env = dict(env or {})
        self.sandbox_args = tuple(sandbox_args)
        self.secret = secrets.token_hex(16)
        self.port = 0  # the web process's, once it has bound one (it binds PORT=0: any free one)
        self.sandbox_url = ""
        self.procs: dict[str, Process] = {}
        self._sandbox: Process | None = None
        self.http = requests.Session()

    # ---- lifecycle

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def app_url(self) -> str:
        if not self.port:
            raise StackError("the web process has not started: it has no port yet")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._sandbox is not None:  # a second sandbox would outlive close()
            raise StackError("this stack is started already")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._sandbox, self.sandbox_url = start_sandbox(
            self.workdir / "sandbox.log",
            flavour=self.flavour,
            seed=self.seed_name,
            args=self.sandbox_args,
        )
        if self.process_names:
            self.release()
            self.start_processes(self.process_names)

    def env(self) -> dict[str, str]:
        """The settings the product's processes run with, as a platform would set them."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JIRA_", "IMPACT_"))}
        env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            HOST="127.0.0.1",
            PORT=str(self.port),  # 0 until the web process has bound one
            WEB_CONCURRENCY="2",
            JIRA_URL=self.sandbox_url,
            JIRA_WEBHOOK_SECRET=self.secret,
            IMPACT_CONFIG=str(ROOT / "config" / "impact.toml"),
            PYTHONUNBUFFERED="1",
            ENV_FILE=os.devnull,  # the settings are these: never a .env for another Jira
            **data_paths(self.workdir),  # none in the checkout
        )
        env.update(credential_env(self.auth, self.sandbox_url))
        env.pop("REDIS_URL", None)
        env.update(self.extra_env)
        return env

    def release(self) -> None:
        """The Procfile's one-off ``release`` step (database migrations), run to completion."""
        command = procfile().get("release", "jira-impact db upgrade")
        done = subprocess.run(
            ["sh", "-c", command], cwd=ROOT, env=self.env(), capture_output=True, timeout=120
        )
        if done.returncode != 0:
            raise StackError(f"release step failed: {done.stdout.decode()}{done.stderr.decode()}")

    def start_processes(self, names: Iterable[str]) -> None:
        """Start the Procfile's ``names`` in the project's root, as a platform does. The web
        process binds the port it had, or a free one; this waits until it answers."""
        commands = procfile()
        started: dict[str, int] = {}  # where each one's log starts
        for name in names:
            if name in commands:
                log = self.workdir / f"{name}.log"
                started[name] = log_size(log)
                self.procs[name] = Process(name, commands[name], env=self.env(), cwd=ROOT, log=log)
        if "web" in started:  # the others start meanwhile, as on a platform
            self.port = listening_port(self.procs["web"], started["web"])
            self._wait_for_web()

    def stop_process(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        process = self.procs.pop(name, None)
        if process is None:
            return
        if sig == signal.SIGTERM:
            process.stop(timeout)
        else:
            process.kill(sig, timeout)

    def close(self) -> None:
        for name in list(self.procs):
            self.stop_process(name)
        if self._sandbox is not None:
            self._sandbox.stop()
        self.http.close()

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ---- talking to the sandbox

    def jira(self, method: str, path: str, **kw: Any) -> requests.Response:
        """A request to the sandbox's Jira API as the service account."""
        headers = kw.pop("headers", {})
        if self.flavour == "dc":
            headers["Authorization"] = f"Bearer {BOT_PAT}"
            auth = None
        else:
            auth = (BOT_EMAIL, BOT_TOKEN)
        return self.http.request(
            method, self.sandbox_url + path, auth=auth, headers=headers, timeout=30, **kw
        )

    def control(self, method: str, path: str, **kw: Any) -> Any:
        """The sandbox's control API (``/_sandbox``); the parsed answer."""
        response = self.http.request(method, f"{self.sandbox_url}/_sandbox{path}", timeout=40, **kw)
        response.raise_for_status()
        return response.json() if response.content else None

    def register_webhook(self, *, jql: str = "project = SHOP") -> dict[str, Any]:
        response = self.jira(
            "POST",
            "/rest/webhooks/1.0/webhook",
            json={
                "name": "jira-customer-impact",
                "url": f"{self.app_url}/webhooks/jira",
                "events": ["jira:issue_created", "jira:issue_updated"],
                "filters": {"issue-related-events-section": jql},
                "excludeBody": False,
                "secret": self.secret,
            },
        )
        response.raise_for_status()
        registered: dict[str, Any] = response.json()
        return registered

    def create_issue(self, **fields: Any) -> str:
        key: str = self.control("POST", "/issues", json=fields)["key"]
        return key

    def last_call(self) -> int:
        """The sequence number of the last API call the sandbox logged."""
        last: int = self.control("GET", "/calls?since=1000000000000")["last"]
        return last

    def comments(self, key: str) -> list[dict[str, Any]]:
        """An issue's comments, read as a person (the service account's log stays the product's)."""
        if self.flavour == "dc":
            kw: dict[str, Any] = {"headers": {"Authorization": f"Bearer {PERSON_PAT}"}}
        else:
            kw = {"auth": PERSON_BASIC}
        response = self.http.get(
            f"{self.sandbox_url}/rest/api/2/issue/{key}/comment", timeout=10, **kw
        )
        response.raise_for_status()
        return list(response.json()["comments"])

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.control("GET", f"/calls?since={since}")["calls"]
        return found

    def board(self, board_id: int = 1) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.control("GET", f"/board/{board_id}")["issues"]
        return rows

    def settle(self, *, quiet_s: float = 1.5, timeout: float = 60.0) -> None:
        """Wait until the sandbox has no webhook left to send, Jira saw no new call for
        ``quiet_s`` seconds and the product has no work left (``unfinished``), a placement run or
        a retry scheduled for later included: the product has done all it will do for now."""
        deadline = time.monotonic() + timeout
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            idle = self.control("GET", "/deliveries?wait=2")["idle"]
            seen = self.last_call()
            if idle:
                idle = self.unfinished() == 0
            if seen != last or not idle:
                last, quiet_since = seen, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                return
            time.sleep(0.2)
        raise StackError(f"the product was still busy after {timeout:.0f}s")

    def unfinished(self) -> int:
        """The product's work not done yet, as its ``/metrics`` shows it (``BUSY_METRICS``): -1
        when the web process does not answer in time, which counts as busy."""
        token = self.env().get("METRICS_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = self.http.get(f"{self.app_url}/metrics", headers=headers, timeout=10)
        except (requests.ConnectionError, requests.Timeout):
            return -1
        if not response.ok:
            raise StackError(f"/metrics answered {response.status_code}: {response.text[:200]}")
        shown = {}
        for line in response.text.splitlines():
            name, _, value = line.rpartition(" ")
            if name in BUSY_METRICS:
                shown[name] = int(float(value))
        missing = [name for name in BUSY_METRICS if name not in shown]
        if missing:
            raise StackError(f"/metrics shows no {', '.join(missing)}: is the queue in use?")
        return sum(shown.values())

    # ---- plumbing

    def _wait_for_web(self) -> None:
        """Until the web process's workers answer ``/healthz`` with 200 (they boot after the
        master has bound the port)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            web = self.procs.get("web")
            if web is not None and web.popen.poll() is not None:
                raise StackError(f"the web process exited:\n{self.log('web')[-4000:]}")
            try:
                if self.http.get(f"{self.app_url}/healthz", timeout=10).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.2)
        raise StackError(f"the web process did not answer in {START_TIMEOUT_S:.0f}s")
