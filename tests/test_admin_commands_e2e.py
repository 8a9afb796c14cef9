"""The admin's commands end to end: the Jira sandbox serving on 127.0.0.1 from a thread, the real
connector over HTTP, and ``check``, ``backfill`` and ``webhook`` run as an admin runs them.
Assertions read the commands' output and exit codes, and the sandbox's issues and request log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result

from commands.admin import backfill_command, check_command, webhook_group
from sandbox.app import RunningSandbox, start_in_thread
from sandbox.stack import data_paths

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "impact.toml"
SECRET = "e2e-webhook-secret"
RECEIVER = "http://127.0.0.1:9/webhooks/jira"  # never delivered to in these tests
IMPACT = "customfield_10042"
CREDENTIALS = {
    "cloud": {"JIRA_EMAIL": "impact-bot@example.com", "JIRA_API_TOKEN": "sandbox-token"},
    "dc": {"JIRA_PAT": "sandbox-pat"},
}
MANAGED = {
    "customer-impact-blocking",
    "customer-impact-degraded",
    "customer-impact-indirect",
    "internal-preference",
    "needs-customer-impact",
}


class Admin:
    """An admin at a shell: the sandbox's settings in the environment, commands run with them;
    what they write (backfill's progress, the queue) in ``folder``."""

    def __init__(self, sandbox: RunningSandbox, flavour: str, folder: Path) -> None:
        self.sandbox = sandbox
        self.state_dir = folder / "backfill"
        self.env = {
            "JIRA_URL": sandbox.url,
            "JIRA_WEBHOOK_SECRET": SECRET,
            "IMPACT_CONFIG": str(CONFIG),
            **CREDENTIALS[flavour],
            **data_paths(folder),
        }
        self.http = requests.Session()

    def run(self, command: Any, *args: str) -> Result:
        return CliRunner().invoke(command, list(args), env=self.env)

    def backfill(self, *args: str) -> Result:
        return self.run(backfill_command, "--state-dir", str(self.state_dir), *args)

    def require_metadata(self) -> None:
        """The sandbox serves what ``check`` reads: projects and field metadata (the bundled
        sandbox always does; one that stopped is a failure, never a skip)."""
        if "JIRA_PAT" in self.env:
            auth: dict[str, Any] = {"headers": {"Authorization": f"Bearer {self.env['JIRA_PAT']}"}}
        else:
            auth = {"auth": (self.env["JIRA_EMAIL"], self.env["JIRA_API_TOKEN"])}
        for path in ("/rest/api/2/project/SHOP", "/rest/api/2/issue/createmeta/SHOP/issuetypes"):
            answer = self.http.get(self.sandbox.url + path, timeout=30, **auth)
            assert answer.status_code == 200, f"no GET {path} in the sandbox: {answer.text}"

    def control(self, method: str, path: str, **kw: Any) -> Any:
        response = self.http.request(method, f"{self.sandbox.url}/_sandbox{path}", timeout=30, **kw)
        response.raise_for_status()
        return response.json() if response.content else None

    def last_call(self) -> int:
        seq: int = self.control("GET", "/calls?since=1000000000000")["last"]
        return seq

    def calls(self, since: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.control("GET", f"/calls?since={since}")["calls"]
        return found

    def board(self) -> dict[str, dict[str, Any]]:
        return {row["key"]: row for row in self.control("GET", "/board/1")["issues"]}


@pytest.fixture(params=["cloud", "dc"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def admin(flavour: str, tmp_path: Path) -> Iterator[Admin]:
    with start_in_thread(flavour=flavour, seed="demo") as sandbox:
        yield Admin(sandbox, flavour, tmp_path)


@pytest.fixture
def checking(admin: Admin) -> Admin:
    """The admin, for tests of ``check`` (which reads projects and field metadata)."""
    admin.require_metadata()
    return admin


@pytest.fixture
def cloud_admin(tmp_path: Path) -> Iterator[Admin]:
    with start_in_thread(flavour="cloud", seed="demo") as sandbox:
        yield Admin(sandbox, "cloud", tmp_path)


@pytest.fixture
def cloud_checking(cloud_admin: Admin) -> Admin:
    cloud_admin.require_metadata()
    return cloud_admin


def lines(result: Result) -> list[str]:
    return result.stdout.splitlines()


# ---- check


def test_check_passes_on_the_demo_jira_once_the_webhook_is_registered(checking):
    registered = checking.run(webhook_group, "register", "--url", RECEIVER)
    assert registered.exit_code == 0, registered.output

    result = checking.run(check_command)

    assert result.exit_code == 0, result.output
    findings = [line for line in lines(result) if not line.startswith("All ")]
    assert [line.split(":")[0] for line in findings] == [
        "ok    config",
        "ok    jira",
        "ok    field",
        "ok    field options",
        "ok    project SHOP",
        "ok    board 1",
        "ok    webhook",
    ]
    assert lines(result)[-1] == "All 7 checks passed."


def test_check_without_a_webhook_says_how_to_register_one(cloud_checking):
    result = cloud_checking.run(check_command)

    assert result.exit_code == 1
    (failed,) = [line for line in lines(result) if line.startswith("FAIL")]
    assert failed.startswith("FAIL  webhook: no admin webhook sends to …/webhooks/jira")
    assert failed.endswith(
        "fix: jira-impact setup --url https://<this service>/webhooks/jira --apply"
    )
    assert "1 problem found" in result.stderr


def test_check_finds_a_revoked_schedule_permission(cloud_checking):
    cloud_checking.run(webhook_group, "register", "--url", RECEIVER)
    cloud_checking.control("POST", "/permissions", json={"revoke": ["SCHEDULE_ISSUES"]})

    result = cloud_checking.run(check_command)

    assert result.exit_code == 1
    (failed,) = [line for line in lines(result) if line.startswith("FAIL")]
    assert failed.startswith("FAIL  project SHOP: the service account lacks Schedule issues")
    assert "Project settings > Permissions" in failed


def test_check_lists_unmapped_options_and_the_levels_no_option_reaches(cloud_checking, tmp_path):
    edited = tmp_path / "impact.toml"
    text = CONFIG.read_text()
    edited.write_text(text.replace('"Degrades paying customers\' experience"', '"Degraded"'))
    cloud_checking.env["IMPACT_CONFIG"] = str(edited)
    cloud_checking.run(webhook_group, "register", "--url", RECEIVER)

    result = cloud_checking.run(check_command)

    assert result.exit_code == 1
    failed = [line for line in lines(result) if line.startswith("FAIL")]
    assert len(failed) == 2
    assert '"Degrades paying customers\' experience" maps to no level' in failed[0]
    assert "no option of the field reaches level degraded ('Degraded')" in failed[1]


def test_check_on_data_center_reads_options_from_the_create_screens(tmp_path):
    with start_in_thread(flavour="dc", seed="demo") as sandbox:
        admin = Admin(sandbox, "dc", tmp_path)
        admin.require_metadata()
        admin.run(webhook_group, "register", "--url", RECEIVER)
        admin.control("POST", "/projects/SHOP/screen", json={"remove": [IMPACT]})

        result = admin.run(check_command)

    assert result.exit_code == 1
    (failed,) = [line for line in lines(result) if line.startswith("FAIL")]
    assert failed.startswith("FAIL  field options: the field 'External customer impact' has no")


def test_check_stops_at_an_invalid_config_without_asking_jira(cloud_admin):
    cloud_admin.env["IMPACT_CONFIG"] = str(ROOT / "tests/fixtures/config/many-errors.toml")
    before = cloud_admin.last_call()

    result = cloud_admin.run(check_command)

    assert result.exit_code == 1
    assert all(line.startswith("FAIL  config: ") for line in lines(result))
    assert "Jira was not checked" in result.stderr
    assert cloud_admin.calls(before) == []


# ---- webhook register / list


def test_register_creates_a_signed_webhook_for_the_configured_projects_then_list_shows_it(admin):
    before = admin.last_call()

    registered = admin.run(webhook_group, "register", "--url", RECEIVER)
    listed = admin.run(webhook_group, "list")

    assert registered.exit_code == 0, registered.output
    (post,) = [c for c in admin.calls(before) if c["method"] == "POST"]
    assert post["json"] == {
        "name": "jira-customer-impact",
        "url": RECEIVER,
        "events": ["jira:issue_created", "jira:issue_updated"],
        "filters": {"issue-related-events-section": "project in (SHOP)"},
        "excludeBody": False,
        "secret": SECRET,
    }
    assert SECRET not in registered.output
    assert listed.exit_code == 0, listed.output
    assert lines(listed)[:3] == [
        f"* 'jira-customer-impact' -> {RECEIVER} (signed, enabled)",
        "    events: jira:issue_created, jira:issue_updated",
        "    JQL: project in (SHOP)",
    ]


def test_without_a_secret_the_token_goes_in_the_url_and_is_never_shown(cloud_admin):
    del cloud_admin.env["JIRA_WEBHOOK_SECRET"]
    cloud_admin.env["JIRA_WEBHOOK_TOKEN"] = "url-token-42"
    before = cloud_admin.last_call()

    registered = cloud_admin.run(webhook_group, "register", "--url", RECEIVER)
    listed = cloud_admin.run(webhook_group, "list")

    assert registered.exit_code == listed.exit_code == 0, registered.output
    (post,) = [c for c in cloud_admin.calls(before) if c["method"] == "POST"]
    assert post["json"]["url"] == RECEIVER + "?token=url-token-42"
    assert "secret" not in post["json"]
    assert "url-token-42" not in registered.output + listed.output
    assert f"{RECEIVER}?token=*** (not signed, enabled)" in listed.stdout


def test_register_refuses_a_second_webhook_to_the_same_url(cloud_admin):
    cloud_admin.run(webhook_group, "register", "--url", RECEIVER, "--jql", "project = SHOP")

    again = cloud_admin.run(webhook_group, "register", "--url", RECEIVER)

    assert again.exit_code == 1
    assert "is registered already" in again.stderr
    hooks = cloud_admin.run(webhook_group, "list")
    assert hooks.stdout.count("'jira-customer-impact'") == 1


def test_register_wants_the_receivers_address(cloud_admin):
    result = cloud_admin.run(webhook_group, "register", "--url", "https://impact.example.com")
    assert result.exit_code == 2
    assert "/webhooks/jira" in result.output


# ---- backfill


def test_a_dry_run_prints_the_table_and_changes_nothing(admin):
    before = admin.last_call()

    result = admin.backfill("--jql", "project = SHOP")

    assert result.exit_code == 0, result.output
    out = lines(result)
    assert out[0] == "project = SHOP: 12 issues"
    assert out[1].split()[:4] == ["impact", "issues", "to", "change"]
    assert out[-2].split()[:3] == ["total", "12", "12"]
    assert out[-1].startswith("Dry run: nothing was changed; 12 issues would change.")
    assert [c for c in admin.calls(before) if c["method"] != "GET"] == []


def test_apply_labels_every_seeded_issue(admin):
    result = admin.backfill("--jql", "project = SHOP", "--apply")

    assert result.exit_code == 0, result.output
    assert lines(result)[-1] == "Applied: 12 issues changed."
    board = admin.board()
    assert all(MANAGED & set(row["labels"]) for row in board.values())
    assert "customer-impact-blocking" in board["SHOP-3"]["labels"]  # the field says so
    assert "customer-impact-inferred" in board["SHOP-1"]["labels"]  # a rule says so
    assert "needs-customer-impact" in board["SHOP-6"]["labels"]
    assert list(admin.state_dir.glob("*")) == []  # a finished run leaves no progress behind
    again = admin.backfill("--jql", "project = SHOP")
    assert lines(again)[-1] == "Dry run: nothing was changed; 0 issues would change."


def test_a_run_stopped_by_jira_failing_continues_where_it_stopped(cloud_admin):
    admin = cloud_admin
    fault = {"method": "PUT", "path": "/rest/api/2/issue/SHOP-6$", "status": 429}
    admin.control("POST", "/faults", json=fault | {"retry_after": 0, "times": 100})

    stopped = admin.backfill("--jql", "project = SHOP", "--apply")

    assert stopped.exit_code == 1
    assert "Stopped: Jira kept failing after 6 attempts" in stopped.stderr
    assert "7 issues left for another run." in stopped.stdout
    assert "run the same command to continue" in stopped.stdout
    admin.control("DELETE", "/faults")
    before = admin.last_call()

    resumed = admin.backfill("--jql", "project = SHOP", "--apply")

    assert resumed.exit_code == 0, resumed.output
    assert lines(resumed)[0] == "project = SHOP: 12 issues; 5 done by an earlier run, skipped"
    calls = admin.calls(before)
    edited = [c["path"] for c in calls if c["method"] == "PUT" and "/api/2/issue/" in c["path"]]
    assert edited == [f"/rest/api/2/issue/SHOP-{n}" for n in range(6, 13)]
    asks = admin.control("GET", "/calls?since=0")["calls"]
    assert [c["path"] for c in asks if c["method"] == "POST"].count(
        "/rest/api/2/issue/SHOP-6/comment"
    ) == 1  # the retried edit did not ask twice
    assert all(MANAGED & set(row["labels"]) for row in admin.board().values())


def test_a_limited_run_then_the_rest(cloud_admin):
    first = cloud_admin.backfill("--jql", "project = SHOP", "--apply", "--limit", "4")
    second = cloud_admin.backfill("--jql", "project = SHOP", "--apply")

    assert first.exit_code == second.exit_code == 0
    assert "8 issues left for another run." in first.stdout
    assert lines(second)[0] == "project = SHOP: 12 issues; 4 done by an earlier run, skipped"
    assert lines(second)[-1] == "Applied: 8 issues changed."
