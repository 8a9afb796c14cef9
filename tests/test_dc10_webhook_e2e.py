"""The admin webhook on Data Center 9 and Data Center 10, end to end: the sandbox playing each
version, the product's Procfile processes, and the installed ``jira-impact`` command run as an
admin runs it (``setup --url … --apply``, ``webhook register``, ``webhook list``, ``check``).
Data Center 10 moved the webhook API and changed its body; the command must use the version's,
read the webhook back, and print the step by hand where Jira does not show the filter it was
sent. Assertions read the command's output and exit status, the sandbox's request log, and
where Jira's deliveries went."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.stack import Stack

pytestmark = pytest.mark.e2e

COMMAND = str(Path(sys.executable).parent / "jira-impact")  # the installed command
NEW_API = "/rest/jira-webhook/1.0/webhooks"
OLD_API = "/rest/webhooks/1.0/webhook"
JQL = "project in (SHOP)"  # the config's projects (config/impact.toml)
VERSIONS = {"9": "9.12.15", "10": "10.3.6"}


def start(version: str, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return Stack(
        tmp_path_factory.mktemp(f"dc-{version}"),
        flavour="dc",
        seed="demo",
        sandbox_args=["--jira-version", version],
    )


@pytest.fixture(scope="module")
def stack9(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start(VERSIONS["9"], tmp_path_factory) as running:
        yield running


@pytest.fixture(scope="module")
def stack10(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start(VERSIONS["10"], tmp_path_factory) as running:
        yield running


def fresh(stack: Stack) -> Iterator[Stack]:
    """The stack, its Jira back to the seed (no webhook), and no fault left after."""
    stack.control("POST", "/reset", json={})
    yield stack
    stack.control("DELETE", "/faults")


@pytest.fixture(params=sorted(VERSIONS))
def dc(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Data Center 9, then 10."""
    yield from fresh(request.getfixturevalue(f"stack{request.param}"))


@pytest.fixture
def dc10(stack10: Stack) -> Iterator[Stack]:
    yield from fresh(stack10)


def api_path(stack: Stack) -> str:
    info = stack.jira("GET", "/rest/api/2/serverInfo").json()
    return NEW_API if info["versionNumbers"][0] >= 10 else OLD_API


def run(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [COMMAND, *args], env=stack.env(), capture_output=True, text=True, timeout=120
    )
    assert stack.secret not in done.stdout + done.stderr
    return done


def receiver(stack: Stack) -> str:
    return f"{stack.app_url}/webhooks/jira"


def webhook_calls(stack: Stack, since: int) -> list[tuple[str, str]]:
    return [
        (c["method"], c["path"])
        for c in stack.calls(since)
        if "webhook" in c["path"] and c["path"].startswith("/rest/")
    ]


def deliveries_of(stack: Stack, *summaries: str) -> dict[str, Any]:
    """Create an issue per summary, in SHOP then SUP alternately: which of them Jira sent to
    the product (by summary), and how the product answered."""
    since = len(stack.control("GET", "/deliveries")["deliveries"])
    keys = {}
    for n, summary in enumerate(summaries):
        project = "SHOP" if n % 2 == 0 else "SUP"
        keys[stack.create_issue(project=project, summary=summary)] = summary
    answer = stack.control("GET", "/deliveries?wait=20")
    assert answer["idle"], "Jira's deliveries did not finish"
    sent = answer["deliveries"][since:]
    return {keys[d["issue"]]: d for d in sent if d["issue"] in keys}


def test_setup_registers_in_the_versions_api_reads_the_filter_back_and_jira_keeps_to_it(dc):
    path = api_path(dc)
    before = dc.last_call()

    done = run(dc, "setup", "--url", receiver(dc), "--apply")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Jira shows that filter when read back" in done.stdout
    if path == NEW_API:
        assert "through Data Center 10's webhook API" in done.stdout
    calls = webhook_calls(dc, before)
    assert ("POST", path) in calls
    assert any(m == "GET" and p.startswith(f"{path}/") for m, p in calls)  # read back by id
    assert not [p for _, p in calls if not p.startswith(path)]  # only the version's API
    sent = deliveries_of(dc, "for the product", "another project's")
    assert list(sent) == ["for the product"]  # SUP's issue is not sent: the filter holds
    assert sent["for the product"]["status"] == 202  # signed with the secret: accepted and queued

    check = run(dc, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok    webhook: SHOP: sent by webhook 'jira-customer-impact'" in check.stdout
    listed = run(dc, "webhook", "list")
    assert f"* 'jira-customer-impact' -> {receiver(dc)}" in listed.stdout
    assert f"JQL: {JQL}" in listed.stdout


def test_webhook_register_writes_url_variables_as_the_version_fills_them_in(dc):
    path = api_path(dc)
    variable = "{issue.key}" if path == NEW_API else "${issue.key}"
    before = dc.last_call()

    done = run(dc, "webhook", "register", "--url", f"{receiver(dc)}?issue=${{issue.key}}")

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"?issue={variable}" in done.stdout
    assert (
        f"JQL: {JQL}" in done.stdout and "read back from Jira: it holds that filter" in done.stdout
    )
    assert ("POST", path) in webhook_calls(dc, before)
    sent = deliveries_of(dc, "filled in")
    (delivery,) = sent.values()
    assert delivery["url"].endswith(f"?issue={delivery['issue']}")  # no "$" left before the key
    assert delivery["status"] == 202

    again = run(dc, "webhook", "register", "--url", receiver(dc))
    assert again.returncode == 1 and "registered already" in again.stderr


def test_where_jira_drops_the_filter_setup_prints_the_step_by_hand_and_exits_1(dc10):
    dc10.control("POST", "/webhook-filters", json={"kept": False})

    done = run(dc10, "setup", "--url", receiver(dc10), "--apply")

    assert done.returncode == 1
    by_hand = [line for line in done.stdout.splitlines() if line.startswith("by hand webhook:")]
    assert by_hand == [
        "by hand webhook: 'jira-customer-impact' registered, but Jira shows no JQL filter, so it "
        f"sends every issue where '{JQL}' was sent — in Jira administration > System > WebHooks, "
        f"edit 'jira-customer-impact' ({receiver(dc10)}): set its JQL filter to {JQL}, tick Issue "
        "created and Issue updated, and save (a Jira administrator can)"
    ]
    assert "1 step to do by hand" in done.stdout
    assert sorted(deliveries_of(dc10, "shop", "sup")) == ["shop", "sup"]  # what it warned of


def test_where_jira_drops_the_filter_webhook_register_prints_the_step_and_exits_3(dc10):
    dc10.control("POST", "/webhook-filters", json={"kept": False})

    done = run(dc10, "webhook", "register", "--url", receiver(dc10))

    assert done.returncode == 3
    assert "JQL: (every issue)" in done.stdout
    assert done.stderr.startswith(
        "By hand: 'jira-customer-impact' registered, but Jira shows no JQL filter"
    )
    assert f"set its JQL filter to {JQL}" in done.stderr


def test_a_webhook_jira_will_not_show_again_cannot_be_confirmed(dc10):
    dc10.control(
        "POST",
        "/faults",
        json={"method": "GET", "path": f"^{NEW_API}/\\d+$", "status": 403, "times": 3},
    )

    done = run(dc10, "webhook", "register", "--url", receiver(dc10))

    assert done.returncode == 3
    assert "its JQL filter could not be confirmed (Jira did not show it again" in done.stderr
    assert "in Jira administration > System > WebHooks" in done.stderr
    # it was registered all the same, with the filter: a later list shows it
    listed = run(dc10, "webhook", "list")
    assert f"JQL: {JQL}" in listed.stdout
