"""What the test session checks of itself (its hooks are ``tests/conftest.py``'s):

- **No test writes outside a temporary folder.** Every test, and every process it starts, is given
  data paths of its own (``DATABASE_URL``, ``QUEUE_PATH``, ``PROMETHEUS_MULTIPROC_DIR``, a state
  folder); this checks that it was so. It takes a picture of the checkout (each file's size and
  time, each folder) before a test's set-up and after its teardown: a test that changed it errors
  at teardown, naming what changed. The session compares its own start and end too, which also
  sees what happened between tests (a module's processes at work, collection), and fails the run.
  The checkout's VCS files, virtual environments and the tools' caches are not looked at: `make
  test` keeps those caches in a temporary folder of its own, a plain `pytest` keeps them here.
- **Nobody's home.** The session runs with ``HOME`` (and the XDG folders) in a temporary folder, so
  what a test starts (gunicorn, Chromium, the tools) writes its dot-folders there; the user's
  real home must show no new entry at the end.
- **No hidden skip.** Under ``CI=true`` a test that skips fails, unless it skipped for want of one
  of the optional corpora a maintainer's machine holds beside the clone (``CORPORA``): everything
  else a test needs, the project bundles or ``.ci/run`` installs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_LOOKED_AT = frozenset(
    {".git", ".venv", ".venv-constraints", "__pycache__", ".pytest_cache", ".hypothesis"}
    | {".mypy_cache", ".ruff_cache"}
)
CORPORA = ("JIRA_SPECS_DIR", "JIRA_PAYLOADS_DIR")
HOME_VARIABLES = ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")

Picture = dict[str, tuple[int, int]]  # relative path -> (size, mtime in ns); folders (-1, 0)

_before_test = pytest.StashKey[Picture]()
_before_session = pytest.StashKey[tuple[Picture, frozenset[str], Path]]()


def looked_at(name: str) -> bool:
    return not (
        name in NOT_LOOKED_AT
        or name.endswith(".egg-info")
        or name == ".coverage"
        or name.startswith(".coverage.")
    )


def picture(root: Path) -> Picture:
    """Every file and folder under ``root`` but those ``looked_at`` refuses."""
    found: Picture = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if looked_at(d))
        base = Path(folder)
        for name in dirs:
            found[str((base / name).relative_to(root))] = (-1, 0)
        for name in files:
            if not looked_at(name):
                continue
            path = base / name
            try:
                stat = path.lstat()
            except FileNotFoundError:  # removed while we looked
                continue
            found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


def changes(before: Picture, after: Picture) -> list[str]:
    """What differs, one line a path: ``new``, ``changed`` or ``removed``."""
    lines = [f"{path} (new)" for path in sorted(after.keys() - before.keys())]
    lines += [
        f"{path} (changed)"
        for path in sorted(after.keys() & before.keys())
        if after[path] != before[path]
    ]
    lines += [f"{path} (removed)" for path in sorted(before.keys() - after.keys())]
    return lines


def home_entries(home: Path) -> frozenset[str]:
    try:
        return frozenset(entry.name for entry in home.iterdir())
    except OSError:
        return frozenset()


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


# --------------------------------------------------------------------------------------------
# The hooks (imported by tests/conftest.py)


def pytest_sessionstart(session: pytest.Session) -> None:
    real_home = Path.home()
    session.stash[_before_session] = (picture(ROOT), home_entries(real_home), real_home)
    home = Path(tempfile.mkdtemp(prefix="impact-tests-home-"))
    os.environ["HOME"] = str(home)
    for name in HOME_VARIABLES:
        os.environ[name] = str(home / name.removeprefix("XDG_").removesuffix("_HOME").lower())


def pytest_sessionfinish(session: pytest.Session) -> None:
    stashed = session.stash.get(_before_session, None)
    if stashed is None:
        return
    before, home_before, real_home = stashed
    problems = [f"the checkout: {line}" for line in changes(before, picture(ROOT))]
    problems += [
        f"the home folder: {real_home / name} (new)"
        for name in sorted(home_entries(real_home) - home_before)
    ]
    shutil.rmtree(os.environ["HOME"], ignore_errors=True)
    if not problems:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = "\n".join(
        ["the tests wrote outside their temporary folders:", *(f"  {p}" for p in problems)]
    )
    if reporter is not None:
        reporter.write_sep("=", "writes outside temporary folders", red=True)
        reporter.write_line(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_before_test] = picture(ROOT)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and under_ci() and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
        if not any(name in reason for name in CORPORA):
            report.outcome = "failed"
            report.longrepr = (
                f"skipped under CI=true ({reason}): the project bundles or .ci/run installs "
                "everything this test needs, so a skip here would hide a regression"
            )
    if call.when == "teardown" and _before_test in item.stash:
        changed = changes(item.stash[_before_test], picture(ROOT))
        if changed:
            report.outcome = "failed"
            report.longrepr = "\n".join(
                [
                    f"{item.nodeid} wrote into the checkout (give it, and what it starts, "
                    "a temporary folder):",
                    *(f"  {line}" for line in changed),
                    *([str(report.longrepr)] if report.longrepr else []),
                ]
            )
