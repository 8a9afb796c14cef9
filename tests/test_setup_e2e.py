"""``jira-impact setup`` and ``config init`` end to end: the Jira sandbox on 127.0.0.1 (from a
thread), the real connector over HTTP, the commands run as an admin runs them. Assertions read
the output and exit codes, what the sandbox's Jira holds after, and its request log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result

from commands.admin import check_command
from commands.setup import config_init_command, setup_command
from connector.client import MISSING_FIELD_RETRY_SECONDS, JiraConnector
from impact.config import load_config
from impact.model import FieldRef
from sandbox.app import RunningSandbox, start_in_thread

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "impact.toml"
SECRET = "e2e-setup-webhook-secret"
RECEIVER = "http://127.0.0.1:9/webhooks/jira"  # never delivered to in these tests
NAME = "External customer impact"
VALUES = [
    "Blocks paying customers",
    "Degrades paying customers' experience",
    "Indirect: feeds customer-facing work",
    "None: internal preference",
]
CREDENTIALS = {
    "cloud": {"JIRA_EMAIL": "impact-bot@example.com", "JIRA_API_TOKEN": "sandbox-token"},
    "dc": {"JIRA_PAT": "sandbox-pat"},
}


class Admin:
    """An admin at a shell, with the sandbox's settings in the environment."""

    def __init__(self, sandbox: RunningSandbox, flavour: str) -> None:
        self.sandbox = sandbox
        self.state = sandbox.state
        self.env = {
            "JIRA_URL": sandbox.url,
            "JIRA_WEBHOOK_SECRET": SECRET,
            "IMPACT_CONFIG": str(CONFIG),
            **CREDENTIALS[flavour],
        }

    def run(self, command: Any, *args: str) -> Result:
        result = CliRunner().invoke(command, list(args), env=self.env)
        assert SECRET not in result.output
        return result

    def setup(self, *args: str) -> Result:
        return self.run(setup_command, *args)

    def control(self, path: str, body: Any) -> Any:
        answer = requests.post(f"{self.sandbox.url}/_sandbox{path}", json=body, timeout=30)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def mark(self) -> int:
        return self.state.last_call

    def writes(self, since: int) -> list[tuple[str, str]]:
        calls = self.state.calls_since(since)
        return [(c["method"], c["path"]) for c in calls if c["method"] != "GET"]

    def options(self) -> list[str]:
        field = next(f for f in self.state.custom_fields.values() if f.name == NAME)
        return [o.value for c in field.contexts for o in c.options]

    def shop_screens(self) -> dict[str, list[str]]:
        shown = self.control("/projects/SHOP/screen", {})["screens"]
        return {name: fields for name, fields in shown.items()}


@pytest.fixture
def fresh() -> Iterator[Admin]:
    with start_in_thread(flavour="cloud", seed="demo", with_field=False) as sandbox:
        yield Admin(sandbox, "cloud")


@pytest.fixture
def fresh_dc() -> Iterator[Admin]:
    with start_in_thread(flavour="dc", seed="demo", with_field=False) as sandbox:
        yield Admin(sandbox, "dc")


@pytest.fixture
def set_up() -> Iterator[Admin]:
    """A Jira with the field as the seed makes it (options, screens), but no webhook."""
    with start_in_thread(flavour="cloud", seed="demo") as sandbox:
        yield Admin(sandbox, "cloud")


def lines(result: Result) -> list[str]:
    return result.stdout.splitlines()


def subjects(found: list[str], expected: list[str]) -> bool:
    """Whether each line is about the expected subject: it starts "<tag> <subject>: "."""
    return len(found) == len(expected) and all(
        line.startswith(head + ": ") for line, head in zip(found, expected, strict=True)
    )


# ---- a fresh Jira


def test_a_dry_run_prints_the_plan_and_only_reads(fresh):
    before = fresh.mark()

    result = fresh.setup("--url", RECEIVER)

    assert result.exit_code == 0, result.output
    out = lines(result)
    assert out[0] == (
        f"Jira Cloud at {fresh.sandbox.url}, as Impact Bot <impact-bot@example.com>, "
        "with JIRA_AUTH=basic: an API token"
    )
    assert out[1].startswith(f"to do   field: create {NAME!r}, a select list (single choice)")
    assert subjects(
        out[1:-1],
        [
            "to do   field",
            "to do   field options",
            "to do   screen 'SHOP: Scrum Default Issue Screen' (10000)",
            "to do   screen 'SHOP: Scrum Bug Create Screen' (10001)",
            "to do   webhook",
            "ok      project SHOP",
            "ok      board 1",
        ],
    )
    assert out[-1] == (
        "Dry run: nothing was changed; 5 changes to make. "
        "Run again with --apply to make the changes."
    )
    assert fresh.writes(before) == []


def test_apply_sets_a_fresh_jira_up_so_that_check_passes_and_people_can_state_the_impact(fresh):
    result = fresh.setup("--url", RECEIVER, "--apply")

    assert result.exit_code == 0, result.output
    done = [line for line in lines(result) if line.startswith("done")]
    assert done[0] == f"done    field: created {NAME!r} as customfield_10042"
    assert len(done) == 5
    assert lines(result)[-1] == "Applied: 5 changes."
    assert fresh.options() == VALUES
    assert all("customfield_10042" in fields for fields in fresh.shop_screens().values())
    (hook,) = fresh.state.webhooks.values()
    assert (hook.url, hook.jql, hook.secret) == (RECEIVER, "project in (SHOP)", SECRET)
    check = fresh.run(check_command)
    assert check.exit_code == 0, check.output
    fresh.control("/issues/SHOP-1/edit", {"as": "ana", "impact": VALUES[0]})  # raises if refused
    bug = fresh.control("/issues", {"issuetype": "Bug", "summary": "Down", "impact": VALUES[1]})
    assert fresh.state.issues[bug["key"]]["fields"]["customfield_10042"]["value"] == VALUES[1]


def test_a_second_run_writes_nothing(fresh):
    fresh.setup("--url", RECEIVER, "--apply")
    before = fresh.mark()

    again = fresh.setup("--url", RECEIVER, "--apply")

    assert again.exit_code == 0, again.output
    assert fresh.writes(before) == []
    assert all(line.startswith("ok") for line in lines(again)[1:-1])
    assert lines(again)[-1] == "Nothing to change: Jira is set up as the config says."


def test_a_running_process_sees_the_new_field_without_a_restart(fresh):
    now = [0.0]
    running = JiraConnector(
        fresh.sandbox.url,
        field=FieldRef(name=NAME),
        email="impact-bot@example.com",
        api_token="sandbox-token",
        clock=lambda: now[0],
    )
    assert running.field_id() is None

    fresh.setup("--apply")
    assert running.field_id() is None  # its field list is a moment old
    now[0] += MISSING_FIELD_RETRY_SECONDS

    assert running.field_id() == "customfield_10042"


def test_json_prints_the_plan_for_scripts(fresh):
    result = fresh.setup("--url", RECEIVER, "--json")

    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["applied"] is False and plan["done"] == []
    actions = [i["change"]["action"] for i in plan["items"] if "change" in i]
    assert actions == [
        "create-field",
        "add-options",
        "add-to-screen",
        "add-to-screen",
        "register-webhook",
    ]
    assert plan["items"][1]["change"] == {
        "action": "add-options",
        "field_id": None,
        "context_id": None,
        "values": VALUES,
    }


# ---- a Jira with the field, some of it missing


def test_missing_options_and_screens_are_added_and_a_persons_options_are_kept(set_up, tmp_path):
    renamed = tmp_path / "impact.toml"
    renamed.write_text(CONFIG.read_text().replace(f'"{VALUES[1]}"', '"Degraded"'))
    set_up.control("/projects/SHOP/screen", {"remove": ["customfield_10042"]})
    before = set_up.mark()

    result = set_up.setup("--config", str(renamed), "--apply")

    assert result.exit_code == 0, result.output  # the webhook is the next step, not one by hand
    assert set_up.writes(before) == [
        ("POST", "/rest/api/2/field/customfield_10042/context/10142/option"),
        ("POST", "/rest/api/2/screens/10000/tabs/10000/fields"),
        ("POST", "/rest/api/2/screens/10001/tabs/10001/fields"),
    ]
    assert set_up.options() == [*VALUES, "Degraded"]  # nothing removed, nothing renamed
    options, hook = [line for line in lines(result) if line.startswith("note")]
    assert f'"{VALUES[1]}" in context 10142 maps to no level' in options
    assert not [line for line in lines(result) if line.startswith("by hand")]
    assert hook.startswith("note    webhook: no admin webhook sends to …/webhooks/jira")
    assert hook.endswith(
        "register it: run jira-impact setup --url https://<this service>/webhooks/jira --apply"
    )


def test_a_jira_set_up_by_hand_only_gets_the_webhook(set_up):
    before = set_up.mark()

    result = set_up.setup("--url", RECEIVER, "--apply")

    assert result.exit_code == 0, result.output
    assert set_up.writes(before) == [("POST", "/rest/webhooks/1.0/webhook")]


# ---- refusals


def test_an_account_that_is_not_a_jira_admin_is_told_the_permission_and_nothing_is_written(
    fresh,
):
    fresh.control("/permissions", {"revoke": ["ADMINISTER"]})
    before = fresh.mark()

    result = fresh.setup("--url", RECEIVER, "--apply")

    assert result.exit_code == 1
    assert "does not hold Administer Jira" in result.stderr
    assert "Global permissions" in result.stderr
    assert fresh.writes(before) == []
    asked = [c["path"] for c in fresh.state.calls_since(before)]
    assert asked[-1] == "/rest/api/2/mypermissions"  # checked before anything else was read


def test_a_write_jira_refuses_stops_the_run_naming_the_permission(fresh):
    fault = {"method": "POST", "path": "/rest/api/2/field$", "status": 403, "times": 1}
    fresh.control("/faults", fault)

    result = fresh.setup("--apply")

    assert result.exit_code == 1
    assert "Stopped: Jira refused" in result.stderr
    assert "Administer Jira" in result.stderr
    assert lines(result)[-1] == "Applied: 0 changes before it stopped."
    assert not fresh.state.custom_fields


# ---- Data Center


def test_data_center_creates_the_field_and_webhook_and_lists_the_rest_for_an_admin(fresh_dc):
    before = fresh_dc.mark()

    result = fresh_dc.setup("--url", RECEIVER, "--apply")

    assert result.exit_code == 1  # steps are left to do by hand
    assert fresh_dc.writes(before) == [
        ("POST", "/rest/api/2/field"),
        ("POST", "/rest/webhooks/1.0/webhook"),
    ]
    manual = [line for line in lines(result) if line.startswith("by hand")]
    assert subjects(manual, ["by hand screens of SHOP", "by hand field options"])
    assert all(repr(value) in manual[1] for value in VALUES)
    assert "Data Center has no REST API" in manual[0]

    # an admin does those steps in Jira's UI; setup then finds all well
    fresh_dc.control("/fields/customfield_10042/options", {"add": VALUES})
    fresh_dc.control("/projects/SHOP/screen", {"add": ["customfield_10042"]})
    before = fresh_dc.mark()
    again = fresh_dc.setup("--url", RECEIVER, "--apply")

    assert again.exit_code == 0, again.output
    assert fresh_dc.writes(before) == []
    assert lines(again)[-1] == "Nothing to change: Jira is set up as the config says."


# ---- config init


def test_config_init_maps_a_fields_options_to_levels(set_up, tmp_path):
    target = tmp_path / "impact.toml"

    result = set_up.run(
        config_init_command, "--from-field", NAME, "--output", str(target), "--project", "SHOP"
    )

    assert result.exit_code == 0, result.output
    config = load_config(target)
    assert [(level.name, level.values) for level in config.levels] == [
        ("blocking", (VALUES[0],)),
        ("degraded", (VALUES[1],)),
        ("indirect", (VALUES[2],)),
        ("none", (VALUES[3],)),
    ]
    assert [p.key for p in config.projects] == ["SHOP"]
    assert f"  {VALUES[0]!r} -> blocking ('Blocks' suggests blocking)" in lines(result)


def test_config_init_refuses_to_overwrite_unless_forced(set_up, tmp_path):
    target = tmp_path / "impact.toml"
    target.write_text("# mine\n")
    args = ("--from-field", NAME, "--output", str(target))

    refused = set_up.run(config_init_command, *args)
    forced = set_up.run(config_init_command, *args, "--force")

    assert refused.exit_code == 1 and "exists already" in refused.stderr
    assert forced.exit_code == 0, forced.output
    assert load_config(target).field.name == NAME


def test_config_init_names_a_field_jira_lacks(fresh, tmp_path):
    target = tmp_path / "impact.toml"

    result = fresh.run(config_init_command, "--from-field", "Nope", "--output", str(target))

    assert result.exit_code == 1
    assert "Jira has no field named 'Nope'" in result.stderr
    assert not target.exists()


def test_a_webhook_token_goes_into_the_url_and_is_never_printed(fresh):
    del fresh.env["JIRA_WEBHOOK_SECRET"]
    fresh.env["JIRA_WEBHOOK_TOKEN"] = "e2e-url-token-4242"

    planned = fresh.setup("--url", RECEIVER, "--json")
    applied = fresh.setup("--url", RECEIVER, "--apply")

    assert planned.exit_code == applied.exit_code == 0, applied.output
    assert "e2e-url-token-4242" not in planned.output + applied.output
    (hook,) = fresh.state.webhooks.values()
    assert hook.url == RECEIVER + "?token=e2e-url-token-4242"
    assert f"{RECEIVER}?token=***" in applied.stdout
