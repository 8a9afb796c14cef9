"""The sandbox's field set-up over real HTTP on 127.0.0.1: a Jira without the impact field, and
the admin REST that creates it, gives it options and puts it on screens, as a Jira admin sees it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.app import RunningSandbox, start_in_thread
from sandbox.hooks import HookDispatcher

SELECT = "com.atlassian.jira.plugin.system.customfieldtypes:select"
SEARCHER = "com.atlassian.jira.plugin.system.customfieldtypes:multiselectsearcher"
NAME = "External customer impact"
API = "/rest/api/2"


def _start(flavour: str, *, with_field: bool = False) -> RunningSandbox:
    return start_in_thread(
        flavour=flavour,
        seed="demo",
        with_field=with_field,
        dispatcher=HookDispatcher(max_retries=0),
    )


@pytest.fixture
def fresh() -> Iterator[RunningSandbox]:
    with _start("cloud") as sandbox:
        yield sandbox


@pytest.fixture
def fresh_dc() -> Iterator[RunningSandbox]:
    with _start("dc") as sandbox:
        yield sandbox


class As:
    """Requests to the sandbox's Jira API as one of the seed's accounts."""

    def __init__(self, sandbox: RunningSandbox, user: str = "impact-bot") -> None:
        self.url = sandbox.url
        self.http = requests.Session()
        account = sandbox.state.accounts[user]
        if sandbox.state.flavour == "cloud":
            self.http.auth = (account.email, account.api_token)
        else:
            self.http.headers["Authorization"] = f"Bearer {account.pat}"

    def __call__(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.http.request(method, self.url + path, json=body, timeout=10)


def control(sandbox: RunningSandbox, path: str, body: Any) -> Any:
    answer = requests.post(f"{sandbox.url}/_sandbox{path}", json=body, timeout=10)
    answer.raise_for_status()
    return answer.json()


def create_field(jira: As) -> str:
    made = jira("POST", f"{API}/field", {"name": NAME, "type": SELECT, "searcherKey": SEARCHER})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def test_without_the_field_jira_has_none_and_issues_carry_no_value(fresh):
    jira = As(fresh)

    names = [f["name"] for f in jira("GET", f"{API}/field").json()]
    issue = jira("GET", f"{API}/issue/SHOP-3").json()

    assert NAME not in names and "Rank" in names
    assert not any(k.startswith("customfield_1004") for k in issue["fields"])
    assert requests.get(f"{fresh.url}/_sandbox/health").json()["field"] is False


def test_a_created_field_has_a_global_context_and_no_options_and_is_on_no_screen(fresh):
    jira = As(fresh)

    field_id = create_field(jira)

    assert field_id == "customfield_10042"  # the id the seeded field has
    (context,) = jira("GET", f"{API}/field/{field_id}/context").json()["values"]
    assert context["isGlobalContext"] is True
    options = jira("GET", f"{API}/field/{field_id}/context/{context['id']}/option").json()
    assert options["values"] == []
    fields = jira("GET", f"{API}/screens/10000/tabs/10000/fields").json()
    assert field_id not in [f["id"] for f in fields]
    refused = jira("PUT", f"{API}/issue/SHOP-1", {"fields": {field_id: {"value": "A"}}})
    assert "not on the appropriate screen" in refused.json()["errors"][field_id]


def test_once_it_has_options_and_is_on_the_screens_people_can_set_it(fresh):
    jira = As(fresh)
    field_id = create_field(jira)
    context = jira("GET", f"{API}/field/{field_id}/context").json()["values"][0]["id"]
    added = jira(
        "POST",
        f"{API}/field/{field_id}/context/{context}/option",
        {"options": [{"value": "Blocks paying customers"}, {"value": "None"}]},
    )
    for screen in (10000, 10001):  # SHOP's default screen and its Bug create screen
        jira("POST", f"{API}/screens/{screen}/tabs/{screen}/fields", {"fieldId": field_id})

    edited = As(fresh, "ana")(
        "PUT", f"{API}/issue/SHOP-1", {"fields": {field_id: {"value": "Blocks paying customers"}}}
    )
    created = As(fresh, "ana")(
        "POST",
        f"{API}/issue",
        {
            "fields": {
                "project": {"key": "SHOP"},
                "issuetype": {"name": "Bug"},
                "summary": "Checkout is down",
                field_id: {"value": "None"},
            }
        },
    )

    assert [o["value"] for o in added.json()["options"]] == ["Blocks paying customers", "None"]
    assert edited.status_code == 204, edited.text
    assert created.status_code == 201, created.text
    shown = jira("GET", f"{API}/issue/SHOP-1").json()["fields"][field_id]
    assert shown["value"] == "Blocks paying customers"
    board = requests.get(f"{fresh.url}/_sandbox/board/1").json()["issues"]
    assert {r["key"]: r["impact"] for r in board}["SHOP-1"] == "Blocks paying customers"


def test_screens_are_found_through_the_projects_schemes(fresh):
    jira = As(fresh)

    (scheme,) = jira("GET", f"{API}/issuetypescreenscheme/project?projectId=10000").json()["values"]
    items = jira(
        "GET",
        f"{API}/issuetypescreenscheme/mapping?issueTypeScreenSchemeId="
        + scheme["issueTypeScreenScheme"]["id"],
    ).json()["values"]
    ids = "&".join(f"id={i['screenSchemeId']}" for i in items)
    schemes = jira("GET", f"{API}/screenscheme?{ids}").json()["values"]

    assert {i["issueTypeId"]: i["screenSchemeId"] for i in items} == {
        "default": "10000",
        "10004": "10001",
    }
    assert [s["screens"] for s in schemes] == [
        {"default": 10000},
        {"default": 10000, "create": 10001},
    ]


def test_context_and_option_rules(fresh):
    jira = As(fresh)
    field_id = create_field(jira)
    base = f"{API}/field/{field_id}/context"

    own = jira("POST", base, {"name": "SHOP", "projectIds": ["10000"]})
    again = jira("POST", base, {"name": "SHOP again", "projectIds": ["10000"]})
    to_global = jira("PUT", f"{base}/10142/project", {"projectIds": ["10001"]})
    context = own.json()["id"]
    jira("POST", f"{base}/{context}/option", {"options": [{"value": "A"}]})
    twice = jira("POST", f"{base}/{context}/option", {"options": [{"value": "A"}]})
    mapping = jira("GET", f"{base}/projectmapping").json()["values"]

    assert own.status_code == 201 and own.json()["projectIds"] == ["10000"]
    assert again.status_code == 400  # a project is in one context of a field at most
    assert to_global.status_code == 400
    assert twice.status_code == 400 and "already exists" in twice.text
    assert mapping == [
        {"contextId": "10142", "isGlobalContext": True},
        {"contextId": context, "projectId": "10000"},
    ]


def test_only_an_administrator_may_set_fields_up(fresh):
    person = As(fresh, "ana")

    created = person("POST", f"{API}/field", {"name": NAME, "type": SELECT})
    screens = person("GET", f"{API}/screens/10000/tabs")
    schemes = person("GET", f"{API}/screenscheme")

    assert created.status_code == 400  # as Jira Cloud answers it
    assert "permission to create custom fields" in created.text
    assert screens.status_code == schemes.status_code == 403


def test_data_center_creates_fields_and_edits_screens_but_has_no_context_or_scheme_rest(
    fresh_dc,
):
    jira = As(fresh_dc)
    field_id = create_field(jira)

    added = jira("POST", f"{API}/screens/10000/tabs/10000/fields", {"fieldId": field_id})
    missing = [
        jira("GET", path).status_code
        for path in (
            f"{API}/field/{field_id}/context",
            f"{API}/issuetypescreenscheme/project?projectId=10000",
            f"{API}/screenscheme",
            f"{API}/screens",
        )
    ]

    assert added.status_code == 200
    assert missing == [404, 404, 404, 404]


def test_control_api_does_an_admins_manual_steps(fresh_dc):
    jira = As(fresh_dc)
    field_id = create_field(jira)

    control(fresh_dc, f"/fields/{field_id}/options", {"add": ["Blocks paying customers"]})
    screens = control(fresh_dc, "/projects/SHOP/screen", {"add": [field_id]})["screens"]
    meta = jira("GET", f"{API}/issue/createmeta/SHOP/issuetypes/10004").json()["values"]

    assert all(field_id in fields for fields in screens.values())
    (impact,) = [f for f in meta if f["fieldId"] == field_id]
    assert [o["value"] for o in impact["allowedValues"]] == ["Blocks paying customers"]


def test_reset_switches_the_field_on_and_off(fresh):
    control(fresh, "/reset", {"seed": "demo", "field": True})
    board = requests.get(f"{fresh.url}/_sandbox/board/1").json()["issues"]
    assert "Blocks paying customers" in [r["impact"] for r in board]

    control(fresh, "/reset", {"field": False})
    board = requests.get(f"{fresh.url}/_sandbox/board/1").json()["issues"]
    assert {r["impact"] for r in board} == {None}
