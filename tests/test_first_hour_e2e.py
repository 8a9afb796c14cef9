"""The first hour of a new user, end to end: `make help`, `make sandbox` left running to click
through, and `make run` on a fresh clone (no .venv on the PATH) with its settings in .env."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandbox.stack import BOT_EMAIL, BOT_TOKEN, ROOT, free_port, start_sandbox, wait_until

pytestmark = pytest.mark.e2e


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a new user's shell: no venv on the PATH, no setting of ours, a home
    of its own (nothing is written to the real one)."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    keep = ("LANG", "LC_ALL", "TMPDIR", "TERM")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    return {**env, "PATH": path, "HOME": str(tmp_path / "home")}


def test_make_help_lists_the_targets_a_newcomer_looks_for(tmp_path: Path) -> None:
    done = subprocess.run(
        ["make", "-s"], cwd=ROOT, env=_clean_env(tmp_path), capture_output=True, text=True,
        timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for target in ("make demo", "make sandbox", "make run", "make test"):
        assert target in done.stdout


def test_make_sandbox_leaves_the_product_running_to_click_through(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.playground", "--for", "240", "--workdir", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.strip().startswith("logs"):
                break
        printed = "".join(lines)
        assert "Running, until Ctrl-C:" in printed, printed[-3000:]
        app = re.search(r"priorities\s+(http://127\.0\.0\.1:\d+)/priorities", printed)
        viewer = re.search(r"viewer token (\S+)", printed)
        admin = re.search(r"admin token (\S+)", printed)
        assert app and viewer and admin, printed
        base = app.group(1)
        # A person signs in with what was printed, through the forms, as in a browser.
        with requests.Session() as browser:
            page = browser.get(f"{base}/priorities/login", timeout=30)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            form = {"token": viewer.group(1)}
            if token:
                form["csrf_token"] = token.group(1)
            signed = browser.post(f"{base}/priorities/login", data=form, timeout=30)
            assert signed.status_code == 200, signed.text[:500]
            board = browser.get(f"{base}/priorities/1", timeout=30)
            assert board.status_code == 200
            assert "SHOP-3" in board.text and "blocking" in board.text
        admin_page = requests.get(
            f"{base}/admin/", headers={"Authorization": f"Bearer {admin.group(1)}"}, timeout=30
        )
        assert admin_page.status_code == 200
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            rest, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            rest, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "Stopped: every process it started has ended." in rest
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/healthz", timeout=5)


@pytest.fixture
def fresh_clone(tmp_path: Path) -> Iterator[Path]:
    """A clone of this commit, with the venv `make` would make. It is made without the network:
    a venv whose site-packages reach this checkout's installed libraries, the clone installed
    in it as `make` installs it (editable, console scripts included), marked installed."""
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)],
        check=True,
        timeout=120,
        env=_clean_env(tmp_path),
    )
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(clone / ".venv")],
                   check=True, timeout=120)  # fmt: skip
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = clone / ".venv" / "lib" / version / "site-packages"
    ours = Path(sysconfig.get_paths()["purelib"])
    # The clone's own code first, then the libraries this checkout's venv has installed.
    (site / "aaa_clone.pth").write_text(f"{clone}\n{ours}\n")
    for script in ("jira-impact", "gunicorn", "honcho", "dotenv"):
        source = Path(sys.executable).parent / script
        text = source.read_text().splitlines()
        text[0] = f"#!{clone / '.venv' / 'bin' / 'python'}"
        target = clone / ".venv" / "bin" / script
        target.write_text("\n".join(text) + "\n")
        target.chmod(0o755)
    (clone / ".venv" / ".installed").touch()
    yield clone
    shutil.rmtree(clone, ignore_errors=True)


def test_make_run_on_a_fresh_clone_reads_env_and_serves(fresh_clone: Path, tmp_path: Path) -> None:
    sandbox, jira_url = start_sandbox(tmp_path / "sandbox.log", seed="demo")
    port = free_port()
    state = tmp_path / "state"
    # Everything in .env, as the README says: the database only there, so `db upgrade` must
    # read it before the web process does. The environment wins over the file (PORT below).
    (fresh_clone / ".env").write_text(
        f"JIRA_URL={jira_url}\n"
        f"JIRA_EMAIL={BOT_EMAIL}\n"
        f"JIRA_API_TOKEN={BOT_TOKEN}\n"
        "JIRA_WEBHOOK_SECRET=a-secret-of-some-length\n"
        f"DATABASE_URL=sqlite:///{state / 'impact.db'}\n"
        f"QUEUE_PATH={state / 'queue.db'}\n"
        f"PROMETHEUS_MULTIPROC_DIR={state / 'metrics'}\n"
        "HOST=127.0.0.1\n"
        "PORT=1\n"
        "WEB_CONCURRENCY=1\n"
    )
    env = {**_clean_env(tmp_path), "PORT": str(port)}
    log = (tmp_path / "make-run.log").open("wb")
    make = subprocess.Popen(
        ["make", "run"], cwd=fresh_clone, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:

        def healthy() -> bool:
            if make.poll() is not None:
                raise AssertionError((tmp_path / "make-run.log").read_text()[-4000:])
            try:
                return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).ok
            except requests.ConnectionError:
                return False

        wait_until("make run's web process", healthy, timeout=90)
        output = (tmp_path / "make-run.log").read_text()
        assert "not found" not in output
        assert f"sqlite:///{state / 'impact.db'}: at schema" in output  # db upgrade read .env
        assert (state / "impact.db").exists() and not (fresh_clone / "var" / "impact.db").exists()
        wait_until(
            "the worker",
            lambda: (
                "worker" in (tmp_path / "make-run.log").read_text()
                and (state / "queue.db").exists()
            ),
            timeout=60,
        )
        assert make.poll() is None
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGTERM)
        try:
            make.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(timeout=10)
        log.close()
        sandbox.stop()
        # honcho stops web and worker on SIGTERM: wait for them, then end what is left.
        try:
            wait_until("make run's processes to end", lambda: not _running_in(fresh_clone), 30)
        finally:
            for pid in _running_in(fresh_clone):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)


def _running_in(folder: Path) -> list[int]:
    """The processes whose working directory is ``folder`` (those `make run` started)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if Path(os.readlink(proc / "cwd")) == folder:
                    found.append(int(proc.name))
    return found
