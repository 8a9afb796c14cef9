"""The sandbox playing Data Center 10 (``version="10.3.6"``) beside Data Center 9: its version in
``serverInfo``, the admin webhooks moved to ``/rest/jira-webhook/1.0/webhooks`` with their own
body, the old path gone, a 9.x body's JQL filter ignored, URL variables without ``$``. Over real
HTTP on 127.0.0.1, deliveries to a real receiver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.app import RunningSandbox, start_in_thread
from sandbox.hooks import HookDispatcher
from sandbox.seed import SandboxState
from tests.test_sandbox import Receiver, api, control, get, post, settle

HOOKS = "/rest/jira-webhook/1.0/webhooks"
OLD_HOOKS = "/rest/webhooks/1.0/webhook"
EVENTS = ["jira:issue_created", "jira:issue_updated"]


@pytest.fixture
def dc10() -> Iterator[RunningSandbox]:
    dispatcher = HookDispatcher(max_retries=1, backoff=0.01)
    with start_in_thread(flavour="dc", version="10.3.6", dispatcher=dispatcher) as sandbox:
        yield sandbox


@pytest.fixture
def dc9() -> Iterator[RunningSandbox]:
    dispatcher = HookDispatcher(max_retries=1, backoff=0.01)
    with start_in_thread(flavour="dc", dispatcher=dispatcher) as sandbox:
        yield sandbox


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def body(url: str, jql: str, **config: str) -> dict[str, Any]:
    return {
        "name": "impact receiver",
        "url": url,
        "events": EVENTS,
        "active": True,
        "configuration": {"FILTERS": jql, "EXCLUDE_BODY": "false", **config},
    }


def summaries(receiver: Receiver) -> list[str]:
    return sorted(p["issue"]["fields"]["summary"] for p in receiver.payloads())


def test_server_info_says_the_version_played(dc10: RunningSandbox, dc9: RunningSandbox) -> None:
    ten = get(api(dc10), "/rest/api/2/serverInfo").json()
    nine = get(api(dc9), "/rest/api/2/serverInfo").json()
    assert (ten["version"], ten["versionNumbers"], ten["deploymentType"]) == (
        "10.3.6",
        [10, 3, 6],
        "DataCenter",
    )
    assert ten["buildNumber"] == 10030006
    assert nine["versionNumbers"][0] == 9


def test_the_old_webhook_path_is_gone_on_10_and_the_new_one_absent_before(
    dc10: RunningSandbox, dc9: RunningSandbox
) -> None:
    assert get(api(dc10), OLD_HOOKS).status_code == 404
    assert get(api(dc9), HOOKS).status_code == 404
    assert get(api(dc9), OLD_HOOKS).json() == []
    assert get(api(dc10), HOOKS).json() == []


def test_a_webhook_is_registered_read_back_and_sends_only_its_filters_issues(
    dc10: RunningSandbox, receiver: Receiver
) -> None:
    made = post(api(dc10), HOOKS, body(receiver.url, "project = SUP", SECRET="s3cret"))
    assert made.status_code == 201
    hook = made.json()
    read = get(api(dc10), f"{HOOKS}/{hook['id']}").json()
    assert read["configuration"]["FILTERS"] == "project = SUP"
    assert "SECRET" not in read["configuration"]  # a secret is not shown again
    assert (read["active"], read["events"], read["scopeType"]) == (True, EVENTS, "GLOBAL")
    control(dc10, "/issues", {"project": "SHOP", "summary": "not for this hook"})
    control(dc10, "/issues", {"project": "SUP", "summary": "for this hook"})
    settle(dc10)
    assert summaries(receiver) == ["for this hook"]
    assert receiver.requests[0]["headers"]["X-Hub-Signature"].startswith("sha256=")


def test_a_9x_body_is_taken_but_its_filter_ignored_as_jira_10_does(
    dc10: RunningSandbox, receiver: Receiver
) -> None:
    old_shape = {
        "name": "9.x shaped",
        "url": receiver.url,
        "events": EVENTS,
        "filters": {"issue-related-events-section": "project = SUP"},
        "excludeBody": False,
    }
    made = post(api(dc10), HOOKS, old_shape)
    assert made.status_code == 201
    assert "FILTERS" not in made.json()["configuration"]
    control(dc10, "/issues", {"project": "SHOP", "summary": "sent all the same"})
    control(dc10, "/issues", {"project": "SUP", "summary": "sent"})
    settle(dc10)
    assert summaries(receiver) == ["sent", "sent all the same"]


def test_the_switch_drops_the_filter_of_the_new_body_too(
    dc10: RunningSandbox, receiver: Receiver
) -> None:
    assert control(dc10, "/webhook-filters", {"kept": False}).json()["kept"] is False
    made = post(api(dc10), HOOKS, body(receiver.url, "project = SUP")).json()
    assert "FILTERS" not in made["configuration"]
    assert control(dc10, "/webhook-filters", {"kept": "no"}).status_code == 400


def test_url_variables_are_filled_in_without_a_dollar_from_10_on(
    dc10: RunningSandbox, dc9: RunningSandbox, receiver: Receiver
) -> None:
    url = f"{receiver.url}?new={{issue.key}}&old=${{issue.key}}"
    post(api(dc10), HOOKS, body(url, "project = SHOP"))
    post(
        api(dc9),
        OLD_HOOKS,
        {"name": "9", "url": url, "events": EVENTS, "filters": {}, "excludeBody": False},
    )
    key10 = control(dc10, "/issues", {"project": "SHOP", "summary": "ten"}).json()["key"]
    key9 = control(dc9, "/issues", {"project": "SHOP", "summary": "nine"}).json()["key"]
    settle(dc10)
    settle(dc9)
    paths = sorted(r["path"] for r in receiver.requests)
    assert f"/hook?new={key10}&old=${key10}" in paths  # 10 fills {…}: a $ before it stays
    assert f"/hook?new=%7Bissue.key%7D&old={key9}" in paths  # 9 fills ${…} only


def test_an_inactive_webhook_sends_nothing_and_a_put_turns_it_on(
    dc10: RunningSandbox, receiver: Receiver
) -> None:
    hook = post(api(dc10), HOOKS, {**body(receiver.url, ""), "active": "false"}).json()
    control(dc10, "/issues", {"summary": "while inactive"})
    settle(dc10)
    assert receiver.requests == []
    changed = api(dc10).put(f"{dc10.url}{HOOKS}/{hook['id']}", json=body(receiver.url, ""))
    assert changed.json()["active"] is True and changed.json()["createdDate"] == hook["createdDate"]
    control(dc10, "/issues", {"summary": "once active"})
    settle(dc10)
    assert summaries(receiver) == ["once active"]


def test_the_list_pages_and_filters_by_event_and_hooks_are_deleted(
    dc10: RunningSandbox, receiver: Receiver
) -> None:
    ids = [post(api(dc10), HOOKS, body(receiver.url, "")).json()["id"] for _ in range(3)]
    post(api(dc10), HOOKS, {**body(receiver.url, ""), "events": ["comment_created"]})
    page = get(api(dc10), HOOKS, params={"start": 1, "limit": 2}).json()
    assert [h["id"] for h in page] == ids[1:3]
    assert len(get(api(dc10), HOOKS, params={"event": "comment_created"}).json()) == 1
    assert api(dc10).delete(f"{dc10.url}{HOOKS}/{ids[0]}").status_code == 204
    assert get(api(dc10), f"{HOOKS}/{ids[0]}").status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"url": "https://example.com/hook"}, "url"),
        ({"active": "maybe"}, "active"),
        (
            {"configuration": {"FILTERS": "project = SHOP", "EXCLUDE_BODY": "perhaps"}},
            "configuration",
        ),
        ({"configuration": {"FILTER": "project = SHOP"}}, "configuration"),
    ],
)
def test_a_bad_body_is_400_naming_the_field(
    dc10: RunningSandbox, change: dict[str, Any], field: str
) -> None:
    answer = post(api(dc10), HOOKS, {**body("http://127.0.0.1:9/hook", ""), **change})
    assert answer.status_code == 400
    assert field in answer.json()["errors"]


def test_only_an_administrator_manages_webhooks(dc10: RunningSandbox) -> None:
    assert get(api(dc10, "ana"), HOOKS).status_code == 403


def test_a_version_is_for_data_center_only() -> None:
    with pytest.raises(ValueError, match="Data Center"):
        SandboxState(flavour="cloud", version="10.0.0")
    with pytest.raises(ValueError, match=r"10\.3\.6"):
        SandboxState(flavour="dc", version="ten")
