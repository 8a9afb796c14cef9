"""A new user's first look, end to end over the Procfile's processes and the sandbox: the
priorities pages by board name with each issue's status and assignee, what they show while Jira
fails, broken or hostile Jira answers (a 502 and a sentence, never a 500 or Jira's credentials),
the admin Check page while Jira is down, and the commands against hostile answers."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from commands.cli import main
from sandbox.stack import BOT_EMAIL, BOT_TOKEN, Stack

pytestmark = pytest.mark.e2e

VIEWER = "viewer-token-for-e2e"
ADMIN = "admin-token-for-e2e"
METRICS = "metrics-token-for-e2e"
BOARD_ISSUES = r"/rest/agile/1.0/board/1/issue"
BASIC = base64.b64encode(f"{BOT_EMAIL}:{BOT_TOKEN}".encode()).decode()


def first_look(folder: Path) -> Stack:
    env = {
        "VIEWER_TOKEN": VIEWER,
        "ADMIN_TOKEN": ADMIN,
        "METRICS_TOKEN": METRICS,
        "PRIORITIES_CACHE_SECONDS": "0",  # each view reads Jira: the failures are seen at once
        "PRIORITIES_READ_SECONDS": "5",
    }
    return Stack(folder, seed="demo", env=env)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with first_look(tmp_path_factory.mktemp("first-look")) as running:
        yield running


def get(stack: Stack, path: str, **headers: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {VIEWER}", **headers}
    return stack.http.get(f"{stack.app_url}{path}", headers=headers, timeout=30)


def fault(stack: Stack, **spec: Any) -> None:
    stack.control("POST", "/faults", json={"times": 5, **spec})


def test_boards_by_name_with_a_link_to_jira_and_each_issues_status_and_assignee(
    stack: Stack,
) -> None:
    board = stack.control("GET", "/board/1")
    name = stack.jira("GET", "/rest/agile/1.0/board/1/configuration").json()["name"]
    listed = get(stack, "/priorities").text
    assert f">{name}</a>" in listed
    assert f'href="{stack.sandbox_url}/secure/RapidBoard.jspa?rapidView=1"' in listed
    page = get(stack, "/priorities/1").text
    assert f"<h1>Priorities of {name}</h1>" in page
    data = get(stack, "/priorities/1.json").json()
    assert data["name"] == name
    assert data["board_url"] == f"{stack.sandbox_url}/secure/RapidBoard.jspa?rapidView=1"
    rows = {row["key"]: row for column in data["columns"].values() for row in column}
    for issue in board["issues"]:
        if issue["key"] in rows:
            assert rows[issue["key"]]["status"] == issue["status"]
    assert all("assignee" in row for row in rows.values())
    assert 'data-label="Status"' in page and 'data-label="Assignee"' in page
    # the wording: open work serves; why says who or which rule, not the level again
    assert "serve paying customers" in page and "served paying customers <span>" not in page
    assert "set by a person in the field" in page
    assert "blocking, set by a person" not in page


def test_while_jira_fails_the_pages_show_the_last_good_data_with_its_age(stack: Stack) -> None:
    assert get(stack, "/priorities/1").status_code == 200  # read well once
    secrets_said = [f"the account {BOT_EMAIL} is locked", f"Authorization: Basic {BASIC}"]
    fault(stack, path=BOARD_ISSUES, status=503, messages=secrets_said)
    try:
        page = get(stack, "/priorities/1")
        assert page.status_code == 200
        found = re.search(r"Jira failed \(503: an error on Jira&#39;s side\); this is from "
                          r"(\d\d:\d\d) UTC \((\d+ min) ago\)", page.text)  # fmt: skip
        assert found, page.text[:3000]
        assert "SHOP-3" in page.text  # the data, as it was
        for said in (BASIC, BOT_EMAIL, "locked", "Connection"):
            assert said not in page.text
        # holders of the metrics token see what Jira did, with its credentials redacted
        detailed = get(stack, "/priorities/1.json", **{"X-Metrics-Token": METRICS}).json()
        assert "locked" in detailed["stale"]["details"]
        assert BASIC not in detailed["stale"]["details"]
        assert BOT_EMAIL not in detailed["stale"]["details"]
        # a script's CSV is never stale: a 502 and a sentence, nothing of Jira's words
        csv = get(stack, "/priorities/1.csv")
        assert csv.status_code == 502
        assert csv.text.startswith("Jira failed (503: an error on Jira's side), so board 1")
        for said in (BASIC, BOT_EMAIL, "locked"):
            assert said not in csv.text
        detailed_csv = get(stack, "/priorities/1.csv", **{"X-Metrics-Token": METRICS})
        assert "locked" in detailed_csv.text and BASIC not in detailed_csv.text
        assert BOT_EMAIL not in detailed_csv.text
    finally:
        stack.control("DELETE", "/faults")
    log = stack.log("web")
    assert "priorities: board 1 could not be read" in log and BASIC not in log


def test_a_board_answer_listing_an_issue_twice_is_a_502_and_a_sentence(stack: Stack) -> None:
    issue = stack.jira("GET", "/rest/api/2/issue/SHOP-3").json()
    broken = {"startAt": 0, "maxResults": 50, "total": 2, "issues": [issue, issue]}
    fault(stack, path=BOARD_ISSUES, answer=broken, times=2)
    try:
        csv = get(stack, "/priorities/1.csv")
        assert csv.status_code == 502
        assert csv.text.startswith("Jira's answer could not be used, so board 1 could not")
    finally:
        stack.control("DELETE", "/faults")


def _cli_env(stack: Stack, tmp_path: Path) -> dict[str, str | None]:
    return {
        **stack.env(),
        "ENV_FILE": "/nonexistent",
        "IMPACT_CONFIG": stack.env()["IMPACT_CONFIG"],
    }


@pytest.mark.parametrize(
    "command",
    [
        ["check"],
        ["setup"],
        ["config", "init", "--from-field", "External customer impact", "--output", "OUT"],
    ],
)
def test_a_field_list_that_is_not_a_list_of_fields_is_one_line_not_a_crash(
    stack: Stack, tmp_path: Path, command: list[str]
) -> None:
    command = [str(tmp_path / "out.toml") if c == "OUT" else c for c in command]
    fault(stack, method="GET", path=r"/rest/api/2/field$", answer={"not": "a list"}, times=3)
    try:
        result = CliRunner().invoke(main, command, env=_cli_env(stack, tmp_path))
    finally:
        stack.control("DELETE", "/faults")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "Jira's field list is not a list of fields" in result.output
    assert not (tmp_path / "out.toml").exists()


def test_config_init_escapes_a_del_in_an_option_and_lists_near_names(
    stack: Stack, tmp_path: Path
) -> None:
    env = _cli_env(stack, tmp_path)
    out = tmp_path / "impact.toml"
    options = {
        "startAt": 0,
        "maxResults": 100,
        "total": 2,
        "isLast": True,
        "values": [
            {"id": "1", "value": "Blocks\x7f paying customers", "disabled": False},
            {"id": "2", "value": "None: internal", "disabled": False},
        ],
    }
    fault(stack, method="GET", path=r"/context/\d+/option", answer=options)
    try:
        made = CliRunner().invoke(
            main,
            ["config", "init", "--from-field", "External customer impact", "--output", str(out)],
            env=env,
        )
    finally:
        stack.control("DELETE", "/faults")
    assert made.exit_code == 0, made.output
    assert "\\u007f" in out.read_text()
    checked = CliRunner().invoke(main, ["config", "check", "--config", str(out)], env=env)
    assert checked.exit_code == 0, checked.output

    near = CliRunner().invoke(
        main,
        ["config", "init", "--from-field", "external customer impct", "--output", str(out) + "2"],
        env=env,
    )
    assert near.exit_code == 1
    assert near.output.strip().endswith("near names it has: 'External customer impact'")


def test_a_display_name_with_a_newline_forges_no_line_in_check(
    stack: Stack, tmp_path: Path
) -> None:
    me = stack.jira("GET", "/rest/api/2/myself").json()
    forged = {**me, "displayName": "Impact Bot\nok    board 9: all fine"}
    fault(stack, method="GET", path=r"/rest/api/2/myself$", answer=forged, times=3)
    try:
        result = CliRunner().invoke(main, ["check"], env=_cli_env(stack, tmp_path))
    finally:
        stack.control("DELETE", "/faults")
    lines = result.output.splitlines()
    assert not any(line.startswith("ok    board 9") for line in lines), result.output
    assert any(r"Impact Bot\nok    board 9: all fine" in line for line in lines)


def test_the_admin_check_page_while_jira_is_down_shows_no_stale_ok_line(tmp_path: Path) -> None:
    # a stack of its own: it stops Jira, which the module's tests after it would find gone
    with first_look(tmp_path / "stack") as stack:
        admin_check_while_jira_goes_away(stack)


def admin_check_while_jira_goes_away(stack: Stack) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    before = stack.http.get(f"{stack.app_url}/admin/check", headers=admin, timeout=60)
    assert before.status_code == 200 and "board 1" in before.text
    stack._sandbox.stop()  # type: ignore[union-attr]  # Jira goes away: connections refused
    after = stack.http.get(f"{stack.app_url}/admin/check", headers=admin, timeout=60)
    assert after.status_code == 200
    text = re.sub(r"<[^>]+>", " ", after.text)
    assert "no answer from" in text and "Connection refused" in text
    assert "check that Jira is up and that JIRA_URL is its address" in text
    assert "board 1" not in text and "customfield_" not in text  # nothing read earlier
    assert "field" not in text.split("no answer from", 1)[1].lower().split("check that")[0]
