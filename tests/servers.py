"""Real Redis and PostgreSQL servers for the tests, started on 127.0.0.1 in temporary folders.

A missing binary skips the test on a developer's machine and fails it under CI (``CI=true``),
where ``.ci/run`` installs them: a green CI must not hide a backend that was never tested.

Neither server can bind a port of the system's choosing and say which, so each is given a free
port, and what then answers on it is checked to be the server started (Redis reports its pid;
PostgreSQL's ``pg_ctl`` fails when its server could not bind): another process that took the port
first (a test run beside this one) means trying again on another port, never talking to it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.stack import Process, free_port

START_TIMEOUT = 30.0
PORT_TRIES = 3  # ports tried before giving up: each is free when picked, but others pick too


def find_binary(name: str) -> str | None:
    """On PATH, or in Debian's versioned PostgreSQL folder (newest first)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def require_binary(name: str, package: str) -> str:
    path = find_binary(name)
    if path is None:
        message = f"{name} is not installed (apt-get install {package})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + ": CI must test this backend", pytrace=False)
        pytest.skip(message)
    return path


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {START_TIMEOUT:.0f} s")


class RedisServer:
    """A redis-server on 127.0.0.1 that keeps an append-only file in ``folder``, as the README
    asks of production; ``kill`` then ``start`` is a crash and a restart on the same file."""

    def __init__(self, folder: str) -> None:
        self.binary = require_binary("redis-server", "redis-server")
        self.folder = Path(folder)
        self.port = 0
        self.process: Process | None = None
        for _ in range(PORT_TRIES):
            self.port = free_port()
            if self._start():
                return
        raise RuntimeError(f"redis-server found no free port in {PORT_TRIES} tries")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start again on the same port, after ``kill``."""
        if not self._start():
            raise RuntimeError(f"redis-server could not have port {self.port} back:\n"
                               f"{self.process.tail() if self.process else ''}")  # fmt: skip

    def _start(self) -> bool:
        """Start on ``self.port``; False when another process holds it."""
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                   "--dir", str(self.folder), "--save", "", "--appendonly", "yes",
                   "--appendfsync", "everysec", "--loglevel", "warning"]  # fmt: skip
        self.process = Process(
            "redis", shlex.join(command), env=os.environ, cwd=self.folder,
            log=self.folder / "redis.log",
        )  # fmt: skip
        return wait_for_own_redis(self.port, self.process.popen)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last write."""
        assert self.process is not None
        self.process.kill(signal.SIGKILL, 10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(10)


def wait_for_own_redis(port: int, proc: subprocess.Popen[bytes]) -> bool:
    """True once the Redis answering on ``port`` is ``proc`` (its ``INFO`` names its pid); False
    when ``proc`` exits first, as it does when another process holds the port."""
    import redis

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0)
        with contextlib.suppress(redis.RedisError), client:
            if int(client.info("server")["process_id"]) == proc.pid:
                return True
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not answer on port {port} within {START_TIMEOUT:.0f} s")


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port nothing answers on while the block runs: bound here, never listening, so
    a connection is refused and no other process can take the port meanwhile."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


@contextlib.contextmanager
def redis_instance() -> Iterator[RedisServer]:
    """A throwaway ``RedisServer``."""
    with tempfile.TemporaryDirectory(prefix="impact-redis-") as folder:
        server = RedisServer(folder)
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server; yields its URL."""
    with redis_instance() as server:
        yield server.url


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl); yields its SQLAlchemy URL.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user
    that Debian's package creates, and its commands run through ``runuser``."""
    initdb = require_binary("initdb", "postgresql")
    pg_ctl = require_binary("pg_ctl", "postgresql")
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root needs the postgres user to run PostgreSQL", pytrace=False)
        as_user = [require_binary("runuser", "util-linux"), "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="impact-pg-"))
    if owner is not None:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    data = folder / "data"
    try:
        subprocess.run(
            [*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--no-sync"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        for _ in range(PORT_TRIES):
            port = free_port()
            options = (
                f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off"
            )
            started = subprocess.run(
                [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"),
                 "-w", "-t", str(int(START_TIMEOUT)), "start"],
                check=False, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            if started.returncode == 0:  # pg_ctl -w waits for this data folder's own server
                break
            if "could not bind" not in (folder / "log").read_text(errors="replace"):
                raise RuntimeError(f"PostgreSQL did not start:\n{(folder / 'log').read_text()}")
        else:
            raise RuntimeError(f"PostgreSQL found no free port in {PORT_TRIES} tries")
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)
