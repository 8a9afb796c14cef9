"""The admin's commands as a user types them: the installed ``jira-impact`` (``commands.cli:main``)
run in a shell's working folder, against the Jira sandbox in its own process on 127.0.0.1, with
the settings in the environment. The other command tests call the click commands in the test's
process; these go through the entry point, its argument parsing and exit codes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.stack import Stack

pytestmark = pytest.mark.e2e

HOOK_URL = "http://127.0.0.1:9/webhooks/jira"  # registered only: nothing is sent there


class Shell:
    """An admin's shell: the stack's settings in the environment (every data path in the stack's
    folder), commands typed in a working folder of their own, not the project's."""

    def __init__(self, stack: Stack, folder: Path) -> None:
        self.stack = stack
        self.cwd = folder
        self.cwd.mkdir(parents=True, exist_ok=True)

    def run(self, *words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["jira-impact", *words],
            cwd=self.cwd,
            env=self.stack.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )


def sandbox(tmp_path: Path, **kw: Any) -> Stack:
    """The Jira sandbox alone, seeded with the demo board (nothing of the product runs)."""
    return Stack(tmp_path / "stack", seed="demo", processes=(), **kw)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    with sandbox(tmp_path) as stack:
        yield Shell(stack, tmp_path / "shell")


def labels(stack: Stack, key: str) -> list[str]:
    found: list[str] = stack.control("GET", f"/issues/{key}")["fields"]["labels"]
    return found


def test_setup_plans_then_applies_then_finds_everything_in_place(tmp_path: Path) -> None:
    with sandbox(tmp_path, sandbox_args=["--no-field"]) as stack:  # a Jira not set up yet
        shell = Shell(stack, tmp_path / "shell")
        plan = shell.run("setup")
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert "to do   field: create 'External customer impact'" in plan.stdout
        assert "Dry run: nothing was changed" in plan.stdout
        fields = {f["name"] for f in stack.jira("GET", "/rest/api/2/field").json()}
        assert "External customer impact" not in fields

        applied = shell.run("setup", "--url", HOOK_URL, "--apply")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "done    field: created 'External customer impact'" in applied.stdout
        assert "Applied: " in applied.stdout
        fields = {f["name"] for f in stack.jira("GET", "/rest/api/2/field").json()}
        assert "External customer impact" in fields

        again = shell.run("setup", "--url", HOOK_URL)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "to do" not in again.stdout
        assert f"ok      webhook: 'jira-customer-impact' sends to {HOOK_URL}" in again.stdout


def test_webhook_register_then_list_then_a_second_register_is_refused(shell: Shell) -> None:
    registered = shell.run("webhook", "register", "--url", HOOK_URL)
    assert registered.returncode == 0, registered.stdout + registered.stderr
    assert f"Registered 'jira-customer-impact' -> {HOOK_URL} (signed, enabled)" in (
        registered.stdout
    )
    listed = shell.run("webhook", "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert f"* 'jira-customer-impact' -> {HOOK_URL} (signed, enabled)" in listed.stdout
    assert "JQL: project in (SHOP)" in listed.stdout
    twice = shell.run("webhook", "register", "--url", HOOK_URL)
    assert twice.returncode == 1
    assert shell.stack.secret not in twice.stdout + twice.stderr + listed.stdout


def test_backfill_stopped_by_its_limit_goes_on_from_its_progress_in_the_working_folder(
    shell: Shell,
) -> None:
    dry = shell.run("backfill", "--jql", "project = SHOP")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Dry run: nothing was changed" in dry.stdout
    assert labels(shell.stack, "SHOP-3") == []

    first = shell.run("backfill", "--jql", "project = SHOP", "--apply", "--limit", "2")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Applied: 2 issues changed." in first.stdout
    [progress] = (shell.cwd / "var" / "backfill").glob("*.jsonl")  # the user's folder, as said
    assert f"Progress is kept in var/backfill/{progress.name}" in first.stdout

    rest = shell.run("backfill", "--jql", "project = SHOP", "--apply")
    assert rest.returncode == 0, rest.stdout + rest.stderr
    assert "2 done by an earlier run, skipped" in rest.stdout
    assert not progress.exists()  # a run that got through every issue leaves none
    assert "customer-impact-blocking" in labels(shell.stack, "SHOP-3")


def test_rerank_prints_the_plan_then_applies_it(shell: Shell) -> None:
    before = [row["key"] for row in shell.stack.board()]
    plan = shell.run("rerank", "--board", "1")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert plan.stdout.startswith("Rerank plan: ")
    assert "Dry run: nothing was changed" in plan.stdout
    assert [row["key"] for row in shell.stack.board()] == before

    applied = shell.run("rerank", "--board", "1", "--apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    after = [row["key"] for row in shell.stack.board() if row["status"] != "Done"]
    assert after != [key for key in before if key in after]
    assert after[0] == "SHOP-3"  # its field says blocking
    again = shell.run("rerank", "--board", "1")
    assert again.stdout.startswith("Rerank plan: 0 of "), again.stdout


def test_a_usage_mistake_exits_2_and_a_missing_setting_1_naming_it(shell: Shell) -> None:
    assert shell.run("rerank").returncode == 2  # no --board
    unset = subprocess.run(
        ["jira-impact", "rerank", "--board", "1"],
        cwd=shell.cwd,
        env={k: v for k, v in shell.stack.env().items() if k != "JIRA_URL"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unset.returncode == 1
    assert "JIRA_URL" in unset.stdout + unset.stderr
