"""The session's own checks (``tests/guard.py``) fail a run as they say they do: a pytest run of
its own, in a temporary folder that stands for the checkout, with tests that write into it, into
the home folder, and skip under ``CI=true``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

INNER_CONFTEST = """
from pathlib import Path

import tests.guard as guard
from tests.guard import (  # noqa: F401 (the hooks, as tests/conftest.py has them)
    pytest_runtest_makereport,
    pytest_runtest_setup,
    pytest_sessionfinish,
    pytest_sessionstart,
)

guard.ROOT = Path(__file__).parent  # this folder stands for the checkout
"""

INNER_TESTS = """
from pathlib import Path

import pytest

HERE = Path(__file__).parent
(HERE / "collected.txt").write_text("written while collecting: only the session sees it")


def test_writes_the_queue_into_the_checkout():
    (HERE / "var").mkdir()
    (HERE / "var" / "queue.db").write_bytes(b"")


def test_writes_only_under_its_temporary_folder(tmp_path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "queue.db").write_bytes(b"")


def test_writes_a_dot_folder_into_the_home_folder():
    (Path.home() / ".gunicorn").mkdir()


def test_skips_for_want_of_a_server():
    pytest.skip("redis-server is not installed")


def test_skips_for_want_of_the_specs():
    pytest.skip("JIRA_SPECS_DIR names no folder of specs")
"""


def test_a_run_that_writes_into_the_checkout_or_skips_under_ci_fails(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "conftest.py").write_text(INNER_CONFTEST)
    (checkout / "test_inner.py").write_text(INNER_TESTS)
    home = Path(os.environ["HOME"])  # this session's own temporary home
    home_before = set(home.iterdir())
    env = os.environ | {"PYTHONPATH": str(ROOT), "CI": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", "-rA",
         "--rootdir", str(checkout), str(checkout)],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "1 failed, 3 passed, 1 skipped, 1 error in" in out  # the skip; the write
    # the test that wrote, at its teardown, naming what it wrote
    assert "test_inner.py::test_writes_the_queue_into_the_checkout wrote into the checkout" in out
    assert "  var/queue.db (new)" in out
    # the session, for what happened outside any test too
    assert "the tests wrote outside their temporary folders:" in out
    for line in ("the checkout: collected.txt (new)", "the checkout: var/queue.db (new)"):
        assert line in out
    # a skip for want of something the project installs fails; one for want of a corpus does not
    assert "skipped under CI=true (Skipped: redis-server is not installed)" in out
    assert "SKIPPED [1] test_inner.py:" in out and "JIRA_SPECS_DIR names no folder" in out
    # the home folder the inner run started with is untouched: its tests had one of their own
    assert set(home.iterdir()) == home_before
    assert not (home / ".gunicorn").exists()


def test_a_run_that_writes_only_in_temporary_folders_passes(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "conftest.py").write_text(INNER_CONFTEST)
    (checkout / "test_inner.py").write_text(
        "def test_writes_only_under_its_temporary_folder(tmp_path):\n"
        "    (tmp_path / 'queue.db').write_bytes(b'')\n"
    )
    env = os.environ | {"PYTHONPATH": str(ROOT), "CI": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider",
         "--rootdir", str(checkout), str(checkout)],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert "outside their temporary folders" not in done.stdout
