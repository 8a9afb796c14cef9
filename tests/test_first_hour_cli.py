"""The command line as a new user meets it: settings from .env, and every command ending in one
line that says what failed and what to do (never a traceback), with progress while it waits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from commands.cli import main
from sandbox.stack import ROOT, free_port

CONFIG = str(ROOT / "config" / "impact.toml")


def _run(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def _last_line(result: Result) -> str:
    return result.output.rstrip().splitlines()[-1]


@pytest.fixture
def unreachable_jira(tmp_path: Path) -> dict[str, str | None]:
    return {
        "JIRA_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "JIRA_PAT": "a-token-long-enough",
        "JIRA_WEBHOOK_SECRET": "a-secret-long-enough",
        "IMPACT_CONFIG": CONFIG,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'impact.db'}",
        "QUEUE_PATH": str(tmp_path / "queue.db"),
    }


def test_backfill_with_jira_unreachable_shows_each_wait_and_ends_in_one_line(
    unreachable_jira: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    waited: list[float] = []
    monkeypatch.setattr(time, "sleep", waited.append)  # the waits are shown, not spent
    result = _run(unreachable_jira, "backfill", "--jql", "project = SHOP", "--apply")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    waits = [line for line in result.output.splitlines() if "trying again in" in line]
    assert len(waits) == len(waited) == 5
    assert waits[0].startswith("Jira did not answer; trying again in")
    assert waits[-1].endswith("(attempt 6 of 6)")
    last = _last_line(result)
    assert last.startswith("Stopped: Jira kept failing after 6 attempts")
    assert "Connection refused" in last and "HTTPConnectionPool" not in last
    assert last.endswith("check that JIRA_URL is right and that Jira is up, then try again")
    assert "0 issues" not in result.output  # nothing was listed: no empty table


def test_deliveries_list_before_db_upgrade_names_the_command(
    unreachable_jira: dict[str, str | None],
) -> None:
    result = _run(unreachable_jira, "deliveries", "list")
    assert result.exit_code == 1
    assert "no such table" not in result.output
    last = _last_line(result)
    assert last.startswith("Stopped: the delivery log at sqlite:///")
    assert last.endswith("run `jira-impact db upgrade`.")
    assert _run(unreachable_jira, "db", "upgrade").exit_code == 0
    assert _run(unreachable_jira, "deliveries", "list").output.strip() == "no deliveries"


def test_a_database_that_does_not_answer_is_one_line_naming_the_setting(
    unreachable_jira: dict[str, str | None],
) -> None:
    env = {**unreachable_jira, "DATABASE_URL": f"postgresql://u:pw@127.0.0.1:{free_port()}/x"}
    result = _run(env, "deliveries", "list")
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert _last_line(result).startswith("Stopped: the delivery log's database failed (")
    assert "check DATABASE_URL" in result.output and "pw" not in result.output


def test_an_unexpected_error_is_one_line_with_the_way_to_the_traceback(
    unreachable_jira: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something no one foresaw")

    monkeypatch.setattr("pipeline.sites.work_in_store", broken)
    monkeypatch.setattr("commands.store.work_in_store", broken)
    result = _run(unreachable_jira, "queue", "list")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Stopped by an unexpected error (RuntimeError: something no one foresaw); run it again "
        "with JIRA_IMPACT_TRACEBACK=1 to see where, and report it."
    )
    shown = _run({**unreachable_jira, "JIRA_IMPACT_TRACEBACK": "1"}, "queue", "list")
    assert isinstance(shown.exception, RuntimeError)


def test_the_command_line_reads_env_and_the_environment_wins(
    unreachable_jira: dict[str, str | None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    settings = {k: v for k, v in unreachable_jira.items() if k != "JIRA_URL"}
    (folder / ".env").write_text(
        "".join(f"{k}={v}\n" for k, v in settings.items())
        + "JIRA_URL=http://127.0.0.1:9/from-the-file\n"
    )
    environment = {k: None for k in settings} | {"ENV_FILE": None, "JIRA_URL": None}
    from_file = _run(environment, "check")
    assert "JIRA_URL is not set" not in from_file.output
    assert "http://127.0.0.1:9/from-the-file" in from_file.output
    env_wins = _run({**environment, "JIRA_URL": unreachable_jira["JIRA_URL"]}, "check")
    assert str(unreachable_jira["JIRA_URL"]) in env_wins.output
    assert "from-the-file" not in env_wins.output
    # ENV_FILE names another file; the default .env is then not read
    (folder / "other.env").write_text(
        "".join(f"{k}={v}\n" for k, v in settings.items())
        + "JIRA_URL=http://127.0.0.1:9/other-file\n"
    )
    other = _run({**environment, "ENV_FILE": str(folder / "other.env")}, "check")
    assert "other-file" in other.output
