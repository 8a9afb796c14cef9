"""``make demo`` as a newcomer runs it (``python -m sandbox.demo`` from the project's folder): it
sets the sandbox's Jira up with ``jira-impact setup``, triages with ``backfill``, orders the board
with ``rerank``, files new issues through the webhooks, and stops everything it started, leaving
nothing in the checkout (tests/guard.py would fail the test)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


def test_the_demo_runs_its_story_and_leaves_nothing_running() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    for command in ("setup --url", "backfill", "rerank --board 1"):
        assert f": jira-impact {command}" in out, command
    after = out.split("The board after", 1)[1]
    first = after.splitlines()[2].split()
    assert first[:3] == ["1", "SHOP-3", "Outage:"] and "blocking" in first
    assert "Issues asked for their impact (one comment each): SHOP-6," in out
    assert "everything it started is stopped." in out
