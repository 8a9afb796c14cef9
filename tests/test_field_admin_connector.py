"""``connector.field_admin.FieldAdmin`` (the calls of ``jira-impact setup``) and the connector's
field list against `responses`: one fixture per endpoint, every expected request must be made
with exactly this query and body, and the network is never reached."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses
from responses import matchers

from connector.client import FIELDS_TTL_SECONDS, MISSING_FIELD_RETRY_SECONDS, JiraConnector
from connector.errors import JiraError, JiraForbiddenError
from connector.field_admin import (
    FieldAdmin,
    FieldContext,
    FieldOption,
    Screen,
    ScreenTab,
    ScreenUse,
)
from impact.model import FieldRef

CLOUD = "https://acme.atlassian.test"
API = f"{CLOUD}/rest/api/2"
FIELD = "customfield_10042"
NAME = "External customer impact"
SELECT = "com.atlassian.jira.plugin.system.customfieldtypes:select"
SEARCHER = "com.atlassian.jira.plugin.system.customfieldtypes:multiselectsearcher"


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.get(
            f"{API}/serverInfo", json={"deploymentType": "Cloud", "versionNumbers": [1001, 0, 0]}
        )
        yield rsps


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def connector(clock: Clock | None = None) -> JiraConnector:
    return JiraConnector(
        CLOUD,
        field=FieldRef(name=NAME),
        email="bot@acme.test",
        api_token="t",
        clock=clock or Clock(),
    )


def query(**params: Any) -> Any:
    return matchers.query_param_matcher(params)


def body(expected: Any) -> Any:
    return matchers.json_params_matcher(expected)


def paged(*values: Any) -> dict[str, Any]:
    return {"startAt": 0, "total": len(values), "isLast": True, "values": list(values)}


# ---- the field list: a minute's life, sooner re-read while the field is missing


def fields_answer(mocked: responses.RequestsMock, *fields: dict[str, Any]) -> None:
    mocked.get(f"{API}/field", json=list(fields))


IMPACT = {"id": FIELD, "name": NAME, "custom": True, "schema": {"type": "option"}}
OTHER = {"id": "summary", "name": "Summary", "custom": False}


def test_the_field_list_is_kept_for_a_minute_then_read_again(mocked):
    clock = Clock()
    jira = connector(clock)
    fields_answer(mocked, OTHER, IMPACT)

    assert jira.field_id() == FIELD
    clock.now += FIELDS_TTL_SECONDS - 1
    assert jira.field_id() == FIELD
    assert len(mocked.calls) == 2  # serverInfo, one field list

    renamed = {**IMPACT, "id": "customfield_10099"}
    mocked.replace(responses.GET, f"{API}/field", json=[OTHER, renamed])
    clock.now += 1
    assert jira.field_id() == "customfield_10099"


def test_a_missing_field_is_looked_for_again_after_a_few_seconds_not_on_every_call(mocked):
    clock = Clock()
    jira = connector(clock)
    fields_answer(mocked, OTHER)

    assert jira.field_id() is None
    clock.now += MISSING_FIELD_RETRY_SECONDS - 1
    assert jira.field_id() is None
    assert [c.request.url for c in mocked.calls].count(f"{API}/field") == 1

    mocked.replace(responses.GET, f"{API}/field", json=[OTHER, IMPACT])
    clock.now += 1
    assert jira.field_id() == FIELD  # a field made since is seen well within a minute


# ---- the field and its contexts


def test_holds_global_asks_for_the_one_permission(mocked):
    mocked.get(
        f"{API}/mypermissions",
        match=[query(permissions="ADMINISTER")],
        json={"permissions": {"ADMINISTER": {"key": "ADMINISTER", "havePermission": False}}},
    )

    assert FieldAdmin(connector()).holds_global("ADMINISTER") is False


def test_create_field_sends_a_select_list_and_forgets_the_field_list(mocked):
    jira = connector()
    fields_answer(mocked, OTHER)
    mocked.post(
        f"{API}/field",
        match=[body({"name": NAME, "description": "why", "type": SELECT, "searcherKey": SEARCHER})],
        status=201,
        json={**IMPACT, "key": FIELD},
    )
    assert jira.field_id() is None

    made = FieldAdmin(jira).create_field(NAME, "why")

    mocked.replace(responses.GET, f"{API}/field", json=[OTHER, IMPACT])
    assert made == FIELD
    assert jira.field_id() == FIELD  # read again at once, not after the retry delay


def test_contexts_come_with_the_projects_each_names(mocked):
    base = f"{API}/field/{FIELD}/context"
    mocked.get(
        base,
        match=[query(startAt="0", maxResults="50")],
        json=paged(
            {"id": "10142", "name": "Default", "isGlobalContext": True},
            {"id": "10150", "name": "Shops", "isGlobalContext": False},
        ),
    )
    mocked.get(
        f"{base}/projectmapping",
        match=[query(startAt="0", maxResults="50")],
        json=paged(
            {"contextId": "10142", "isGlobalContext": True},
            {"contextId": "10150", "projectId": "10000"},
            {"contextId": "10150", "projectId": "10001"},
        ),
    )

    assert FieldAdmin(connector()).contexts(FIELD) == (
        FieldContext("10142", "Default", True, ()),
        FieldContext("10150", "Shops", False, ("10000", "10001")),
    )


def test_options_of_a_context_keep_disabled_ones_and_leave_cascading_children_out(mocked):
    mocked.get(
        f"{API}/field/{FIELD}/context/10142/option",
        match=[query(startAt="0", maxResults="100")],
        json=paged(
            {"id": "1", "value": "Blocks paying customers", "disabled": False},
            {"id": "2", "value": "Retired", "disabled": True},
            {"id": "3", "value": "Child", "optionId": "1", "disabled": False},
        ),
    )

    assert FieldAdmin(connector()).options(FIELD, "10142") == (
        FieldOption("1", "Blocks paying customers"),
        FieldOption("2", "Retired", True),
    )


def test_create_context_for_projects_and_every_issue_type(mocked):
    mocked.post(
        f"{API}/field/{FIELD}/context",
        match=[
            body(
                {
                    "name": "Impact: SHOP",
                    "description": "made by setup",
                    "projectIds": ["10000"],
                    "issueTypeIds": [],
                }
            )
        ],
        status=201,
        json={"id": "10160", "name": "Impact: SHOP", "projectIds": ["10000"]},
    )

    made = FieldAdmin(connector()).create_context(FIELD, "Impact: SHOP", "made by setup", ["10000"])

    assert made == FieldContext("10160", "Impact: SHOP", False, ("10000",))


def test_assign_projects_to_a_context(mocked):
    mocked.put(
        f"{API}/field/{FIELD}/context/10150/project",
        match=[body({"projectIds": ["10009"]})],
        status=204,
    )

    FieldAdmin(connector()).assign_projects(FIELD, "10150", ["10009"])


def test_add_options_sends_each_value_enabled(mocked):
    sent = [{"value": "A", "disabled": False}, {"value": "B", "disabled": False}]
    made_options = [{"id": "7", **sent[0]}, {"id": "8", **sent[1]}]
    mocked.post(
        f"{API}/field/{FIELD}/context/10142/option",
        match=[body({"options": sent})],
        json={"options": made_options},
    )

    made = FieldAdmin(connector()).add_options(FIELD, "10142", ["A", "B"])

    assert made == (FieldOption("7", "A"), FieldOption("8", "B"))


def test_a_refused_write_is_a_forbidden_error(mocked):
    mocked.post(
        f"{API}/field/{FIELD}/context/10142/option",
        status=403,
        json={"errorMessages": ["Only Jira administrators can manage custom field options."]},
    )

    with pytest.raises(JiraForbiddenError, match="Only Jira administrators"):
        FieldAdmin(connector()).add_options(FIELD, "10142", ["A"])


# ---- screens


def test_a_projects_screens_come_through_its_schemes(mocked):
    scheme = {"id": "10000", "name": "SHOP scheme"}
    mocked.get(
        f"{API}/issuetypescreenscheme/project",
        match=[query(projectId="10000", startAt="0", maxResults="50")],
        json=paged({"issueTypeScreenScheme": scheme, "projectIds": ["10000"]}),
    )
    mocked.get(
        f"{API}/issuetypescreenscheme/mapping",
        match=[query(issueTypeScreenSchemeId="10000", startAt="0", maxResults="50")],
        json=paged(
            {"issueTypeId": "default", "issueTypeScreenSchemeId": "10000", "screenSchemeId": "1"},
            {"issueTypeId": "10004", "issueTypeScreenSchemeId": "10000", "screenSchemeId": "2"},
        ),
    )
    mocked.get(
        f"{API}/screenscheme",
        match=[query(id=["1", "2"], startAt="0", maxResults="50")],
        json=paged(
            {"id": 1, "name": "Default", "screens": {"default": 10}},
            {"id": 2, "name": "Bugs", "screens": {"default": 10, "create": 11}},
        ),
    )

    found = FieldAdmin(connector()).screen_uses("10000")

    assert found == (
        "SHOP scheme",
        (
            ScreenUse("10", "create", ("default",)),
            ScreenUse("10", "edit", ("default", "10004")),
            ScreenUse("11", "create", ("10004",)),
        ),
    )


def test_a_project_without_a_scheme_has_no_screens_to_name(mocked):
    mocked.get(f"{API}/issuetypescreenscheme/project", json=paged())

    assert FieldAdmin(connector()).screen_uses("10000") is None


def test_screen_names_and_tabs_with_their_fields(mocked):
    mocked.get(
        f"{API}/screens",
        match=[query(id=["10", "11"], startAt="0", maxResults="50")],
        json=paged({"id": 10, "name": "Default Screen"}, {"id": 11, "name": "Bug Create"}),
    )
    mocked.get(f"{API}/screens/10/tabs", json=[{"id": 100, "name": "Field Tab"}])
    mocked.get(
        f"{API}/screens/10/tabs/100/fields",
        json=[{"id": "summary", "name": "Summary"}, {"id": FIELD, "name": NAME}],
    )
    admin = FieldAdmin(connector())

    names = admin.screen_names(["11", "10"])
    screen = admin.screen("10", names["10"])

    assert names == {"10": "Default Screen", "11": "Bug Create"}
    tab = ScreenTab("100", "Field Tab", ("summary", FIELD))
    assert screen == Screen("10", "Default Screen", (tab,))
    assert screen.shows(FIELD)


def test_add_to_tab_names_the_field(mocked):
    mocked.post(
        f"{API}/screens/10/tabs/100/fields",
        match=[body({"fieldId": FIELD})],
        json={"id": FIELD, "name": NAME},
    )

    FieldAdmin(connector()).add_to_tab("10", "100", FIELD)


def test_ids_that_could_bend_a_path_are_refused_before_any_request():
    admin = FieldAdmin(connector())

    with responses.RequestsMock() as nothing_sent, pytest.raises(JiraError, match="not a Jira id"):
        admin.add_to_tab("10/../../x", "100", FIELD)
    assert len(nothing_sent.calls) == 0
