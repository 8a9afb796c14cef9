"""``connector.admin.JiraAdmin`` against `responses`: every expected request must be made, with
exactly this query and body, and the network is never reached."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from connector.admin import AdminWebhook, JiraAdmin, enabled_options, key_list_jql, webhook_body
from connector.client import JiraConnector
from connector.errors import JiraError, JiraForbiddenError, JiraUnavailableError
from impact.model import FieldRef

CLOUD = "https://acme.atlassian.test"
DC = "https://jira.corp.test/jira"
API = "/rest/api/2"
FIELD = "customfield_10042"
HOOKS = "/rest/webhooks/1.0/webhook"
SECRET = "webhook-secret-123"


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def connect(mocked: responses.RequestsMock, *, cloud: bool = True, **kw: Any) -> JiraAdmin:
    """The admin calls on a connector to Cloud or Data Center (``kw``: the connector's own)."""
    base = CLOUD if cloud else DC
    mocked.get(
        f"{base}{API}/serverInfo",
        json={
            "deploymentType": "Cloud" if cloud else "DataCenter",
            "versionNumbers": [1001, 0, 0] if cloud else [9, 12, 0],
        },
    )
    if cloud:
        jira = JiraConnector(
            CLOUD, field=FieldRef(id=FIELD), email="bot@acme.test", api_token="t", **kw
        )
    else:
        jira = JiraConnector(DC, field=FieldRef(id=FIELD), pat="dc-pat", **kw)
    return JiraAdmin(jira)


def query(**params: str) -> Any:
    return matchers.query_param_matcher(params)


# ---- the impact field's options


def test_cloud_options_come_from_every_context_page_by_page(mocked):
    admin = connect(mocked)
    contexts = f"{CLOUD}{API}/field/{FIELD}/context"
    mocked.get(
        contexts,
        match=[query(startAt="0", maxResults="50")],
        json={"startAt": 0, "total": 2, "isLast": True, "values": [{"id": "101"}, {"id": "102"}]},
    )
    mocked.get(
        f"{contexts}/101/option",
        match=[query(startAt="0", maxResults="100")],
        json={
            "isLast": False,
            "values": [
                {"id": "1", "value": "Blocks paying customers"},
                {"id": "2", "value": "Retired", "disabled": True},
            ],
        },
    )
    mocked.get(
        f"{contexts}/101/option",
        match=[query(startAt="2", maxResults="100")],
        json={"isLast": True, "values": [{"id": "3", "value": "None: internal preference"}]},
    )
    mocked.get(
        f"{contexts}/102/option",
        match=[query(startAt="0", maxResults="100")],
        json={
            "isLast": True,
            "values": [
                {"id": "4", "value": "Blocks paying customers"},
                {"id": "5", "value": "Child", "optionId": "4"},
            ],
        },
    )

    options = admin.field_options(FIELD, ["SHOP"])

    assert options == ("Blocks paying customers", "None: internal preference")


def createmeta(mocked: responses.RequestsMock, base: str, key: str, list_key: str) -> str:
    path = f"{base}{API}/issue/createmeta/{key}/issuetypes"
    mocked.get(
        path,
        match=[query(startAt="0", maxResults="50")],
        json={"startAt": 0, "total": 2, list_key: [{"id": "10001"}, {"id": "10004"}]},
    )
    return path


def test_cloud_options_fall_back_to_create_metadata_when_contexts_are_refused(mocked):
    admin = connect(mocked)
    mocked.get(
        f"{CLOUD}{API}/field/{FIELD}/context",
        status=403,
        json={"errorMessages": ["Only Jira administrators can access custom field contexts."]},
    )
    path = createmeta(mocked, CLOUD, "SHOP", "issueTypes")
    impact = {
        "fieldId": FIELD,
        "allowedValues": [{"id": "1", "value": "Blocks paying customers"}],
    }
    mocked.get(f"{path}/10001", json={"total": 1, "fields": [impact]})
    mocked.get(f"{path}/10004", json={"total": 1, "fields": [{"fieldId": "summary"}]})

    assert admin.field_options(FIELD, ["SHOP"]) == ("Blocks paying customers",)


def test_data_center_options_are_the_union_over_projects_and_issue_types(mocked):
    admin = connect(mocked, cloud=False)
    for key, values in (("SHOP", ["A", "B"]), ("OPS", ["B", "C"])):
        path = createmeta(mocked, DC, key, "values")
        for type_id, value in zip(("10001", "10004"), values, strict=True):
            field = {"fieldId": FIELD, "allowedValues": [{"value": value}]}
            mocked.get(
                f"{path}/{type_id}",
                match=[query(startAt="0", maxResults="50")],
                json={"startAt": 0, "total": 2, "values": [{"fieldId": "summary"}, field]},
            )

    assert admin.field_options(FIELD, ["SHOP", "OPS"]) == ("A", "B", "C")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([{"value": "A"}, {"value": "A"}, {"value": "B"}], ("A", "B")),
        ([{"value": "A", "disabled": True}, {"value": "B", "disabled": False}], ("B",)),
        ([{"value": "Parent"}, {"value": "Child", "optionId": "1"}], ("Parent",)),
        ([{"value": ""}, {"id": "1"}, "stray", None], ()),
    ],
)
def test_enabled_options(values, expected):
    assert enabled_options(values) == expected


# ---- projects and permissions


def test_project_is_read_and_a_404_means_none(mocked):
    admin = connect(mocked)
    mocked.get(f"{CLOUD}{API}/project/SHOP", json={"id": "10000", "key": "SHOP"})
    mocked.get(
        f"{CLOUD}{API}/project/NOPE",
        status=404,
        json={"errorMessages": ["No project could be found with key 'NOPE'."]},
    )

    assert admin.project("SHOP") == {"id": "10000", "key": "SHOP"}
    assert admin.project("NOPE") is None


def test_permissions_are_asked_in_one_call(mocked):
    admin = connect(mocked)
    wanted = "BROWSE_PROJECTS,EDIT_ISSUES,ADD_COMMENTS,SCHEDULE_ISSUES"
    mocked.get(
        f"{CLOUD}{API}/mypermissions",
        match=[query(projectKey="SHOP", permissions=wanted)],
        json={
            "permissions": {
                "BROWSE_PROJECTS": {"havePermission": True},
                "EDIT_ISSUES": {"havePermission": True},
                "ADD_COMMENTS": {"havePermission": True},
                "SCHEDULE_ISSUES": {"havePermission": False},
            }
        },
    )

    held = admin.permissions("SHOP", wanted.split(","))

    assert held == {
        "BROWSE_PROJECTS": True,
        "EDIT_ISSUES": True,
        "ADD_COMMENTS": True,
        "SCHEDULE_ISSUES": False,
    }


# ---- admin webhooks


LISTED = {
    "self": f"{CLOUD}{HOOKS}/7",
    "name": "jira-customer-impact",
    "url": "https://impact.example.com/webhooks/jira",
    "events": ["jira:issue_created", "jira:issue_updated"],
    "filters": {"issue-related-events-section": "project in (SHOP)"},
    "excludeBody": False,
    "enabled": True,
    "isSigned": True,
}


def test_webhooks_are_listed(mocked):
    admin = connect(mocked)
    mocked.get(f"{CLOUD}{HOOKS}", json=[LISTED, {"name": "other", "url": "https://x.test/h"}])

    hooks = admin.webhooks()

    assert hooks == (
        AdminWebhook(
            name="jira-customer-impact",
            url="https://impact.example.com/webhooks/jira",
            events=("jira:issue_created", "jira:issue_updated"),
            jql="project in (SHOP)",
            enabled=True,
            signed=True,
            self_url=f"{CLOUD}{HOOKS}/7",
        ),
        AdminWebhook(name="other", url="https://x.test/h", events=(), jql=""),
    )


def test_register_sends_the_documented_body_with_the_secret(mocked):
    admin = connect(mocked)
    expected = {
        "name": "jira-customer-impact",
        "url": "https://impact.example.com/webhooks/jira",
        "events": ["jira:issue_created", "jira:issue_updated"],
        "filters": {"issue-related-events-section": "project in (SHOP)"},
        "excludeBody": False,
        "secret": SECRET,
    }
    mocked.post(
        f"{CLOUD}{HOOKS}",
        match=[matchers.json_params_matcher(expected, strict_match=True)],
        status=201,
        json=LISTED,
    )

    made = admin.register_webhook(
        name="jira-customer-impact",
        url="https://impact.example.com/webhooks/jira",
        jql="project in (SHOP)",
        secret=SECRET,
    )

    assert made.signed is True
    assert made.self_url == f"{CLOUD}{HOOKS}/7"


def test_register_without_a_secret_sends_none():
    body = webhook_body(name="n", url="https://x.test/webhooks/jira?token=t", jql="", secret=None)
    assert "secret" not in body
    assert body["events"] == ["jira:issue_created", "jira:issue_updated"]


def test_register_refused_for_a_non_admin_raises_forbidden(mocked):
    admin = connect(mocked)
    mocked.post(
        f"{CLOUD}{HOOKS}",
        status=403,
        json={"errorMessages": ["Only Jira administrators can manage webhooks."]},
    )

    with pytest.raises(JiraForbiddenError, match="administrators"):
        admin.register_webhook(name="n", url="https://x.test/webhooks/jira", jql="", secret="s")


# ---- search


def test_cloud_keys_follow_next_page_tokens(mocked):
    admin = connect(mocked)
    search = f"{CLOUD}{API}/search/jql"
    first = {"jql": "project = SHOP", "fields": "key", "maxResults": "1000"}
    mocked.get(
        search,
        match=[query(**first)],
        json={"issues": [{"key": "SHOP-1"}, {"key": "SHOP-2"}], "nextPageToken": "tok-2"},
    )
    mocked.get(
        search,
        match=[query(**first, nextPageToken="tok-2")],
        json={"issues": [{"key": "SHOP-3"}], "isLast": True},
    )

    assert admin.issue_keys("project = SHOP") == ["SHOP-1", "SHOP-2", "SHOP-3"]


def test_data_center_keys_follow_start_at_up_to_total(mocked):
    admin = connect(mocked, cloud=False)
    search = f"{DC}{API}/search"
    params = {"jql": "project = SHOP", "fields": "key", "maxResults": "1000"}
    mocked.get(
        search,
        match=[query(**params, startAt="0")],
        json={"startAt": 0, "total": 3, "issues": [{"key": "SHOP-1"}, {"key": "SHOP-2"}]},
    )
    mocked.get(
        search,
        match=[query(**params, startAt="2")],
        json={"startAt": 2, "total": 3, "issues": [{"key": "SHOP-3"}]},
    )

    assert admin.issue_keys("project = SHOP") == ["SHOP-1", "SHOP-2", "SHOP-3"]


def test_issues_are_read_in_one_search_by_key(mocked):
    admin = connect(mocked)
    mocked.get(
        f"{CLOUD}{API}/search/jql",
        match=[query(jql="key in (SHOP-1, SHOP-2)", fields="summary,labels", maxResults="50")],
        json={"issues": [{"key": "SHOP-1"}, {"key": "SHOP-2"}], "isLast": True},
    )

    found = admin.issues(["SHOP-1", "SHOP-2"], fields=["summary", "labels"])

    assert [issue["key"] for issue in found] == ["SHOP-1", "SHOP-2"]


def test_a_deleted_issue_in_the_batch_is_read_one_by_one_and_left_out(mocked):
    admin = connect(mocked)
    mocked.get(
        f"{CLOUD}{API}/search/jql",
        status=400,
        json={"errorMessages": ["An issue with key 'SHOP-2' does not exist for field 'key'."]},
    )
    mocked.get(f"{CLOUD}{API}/issue/SHOP-1", match=[query(fields="labels")], json={"key": "SHOP-1"})
    mocked.get(f"{CLOUD}{API}/issue/SHOP-2", status=404, json={"errorMessages": ["gone"]})

    found = admin.issues(["SHOP-1", "SHOP-2"], fields=["labels"])

    assert [issue["key"] for issue in found] == ["SHOP-1"]


@pytest.mark.parametrize("key", ["SHOP-1) OR (project = X", "shop-1", "SHOP", ""])
def test_key_list_jql_refuses_what_is_not_an_issue_key(key):
    with pytest.raises(ValueError, match="not an issue key"):
        key_list_jql(["SHOP-1", key])


def test_no_more_than_a_batch_at_a_time():
    admin = JiraAdmin(JiraConnector(CLOUD, field=FieldRef(id=FIELD), pat="p"))
    with pytest.raises(ValueError, match="at most 50"):
        admin.issues([f"SHOP-{n}" for n in range(1, 52)], fields=["labels"])


# ---- the connector's search, and reads within a time limit (the priorities pages')

RESOLVED_JQL = 'project = SHOP AND resolutiondate >= "2025-01-01"'


def issues(*numbers: int) -> list[dict]:
    return [{"key": f"SHOP-{n}", "fields": {"labels": []}} for n in numbers]


def test_cloud_search_reads_pages_of_a_hundred_by_token_up_to_the_limit(mocked):
    jira = connect(mocked).jira
    search = f"{CLOUD}{API}/search/jql"
    asked = {"jql": RESOLVED_JQL, "fields": "labels,resolutiondate"}
    mocked.get(
        search,
        match=[matchers.query_param_matcher({**asked, "maxResults": "100"})],
        json={"issues": issues(*range(1, 101)), "nextPageToken": "t2", "isLast": False},
    )
    mocked.get(
        search,
        match=[matchers.query_param_matcher({**asked, "maxResults": "20", "nextPageToken": "t2"})],
        json={"issues": issues(*range(101, 121)), "nextPageToken": "t3", "isLast": False},
    )
    found = jira.search_issues(RESOLVED_JQL, fields=("labels", "resolutiondate"), limit=120)
    assert [i["key"] for i in found] == [f"SHOP-{n}" for n in range(1, 121)]


def test_data_center_search_follows_start_at_to_the_total(mocked):
    jira = connect(mocked, cloud=False).jira
    search = f"{DC}{API}/search"
    asked = {"jql": RESOLVED_JQL, "fields": "labels", "maxResults": "100"}
    mocked.get(
        search,
        match=[matchers.query_param_matcher({**asked, "startAt": "0"})],
        json={"startAt": 0, "total": 3, "issues": issues(1, 2)},
    )
    mocked.get(
        search,
        match=[matchers.query_param_matcher({**asked, "startAt": "2"})],
        json={"startAt": 2, "total": 3, "issues": issues(3)},
    )
    assert [i["key"] for i in jira.search_issues(RESOLVED_JQL, fields=("labels",), limit=5000)] == [
        "SHOP-1",
        "SHOP-2",
        "SHOP-3",
    ]


def test_a_time_limit_shortens_each_requests_timeout_and_stops_calls_once_spent(mocked):
    clock = [100.0]
    jira = connect(mocked, timeout=10.0, clock=lambda: clock[0]).jira
    sent: list[float] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        sent.append(request.req_kwargs["timeout"])  # what requests was given
        clock[0] += 1.5  # each answer takes 1.5 s
        return 200, {}, '{"issues": [], "isLast": true}'

    mocked.add_callback(responses.GET, f"{CLOUD}{API}/search/jql", callback=answer)
    with jira.time_limit(2.0):
        jira.search_issues(RESOLVED_JQL, fields=("labels",), limit=10)
        jira.search_issues(RESOLVED_JQL, fields=("labels",), limit=10)  # 0.5 s left
        with pytest.raises(JiraUnavailableError, match="within the time limit"):
            jira.search_issues(RESOLVED_JQL, fields=("labels",), limit=10)
    jira.search_issues(RESOLVED_JQL, fields=("labels",), limit=10)  # the limit is over
    assert sent == [2.0, 0.5, 10.0]
    assert [c.path for c in jira.calls].count(f"{API}/search/jql") == 3  # the third never left


def test_an_answer_that_is_not_json_says_so(mocked):
    jira = connect(mocked).jira
    mocked.get(f"{CLOUD}{API}/search/jql", body="<html>a login page</html>", status=200)
    with pytest.raises(JiraError, match="not JSON"):
        jira.search_issues(RESOLVED_JQL, fields=("labels",), limit=10)
