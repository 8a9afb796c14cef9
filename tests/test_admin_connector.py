"""``connector.admin.JiraAdmin`` against `responses`: every expected request must be made, with
exactly this query and body, and the network is never reached."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from connector.admin import (
    AdminWebhook,
    JiraAdmin,
    WebhookApi,
    dc10_webhook_body,
    enabled_options,
    key_list_jql,
    webhook_api,
    webhook_body,
)
from connector.client import JiraConnector
from connector.errors import JiraError, JiraForbiddenError, JiraUnavailableError
from impact.model import FieldRef

CLOUD = "https://acme.atlassian.test"
DC = "https://jira.corp.test/jira"
API = "/rest/api/2"
FIELD = "customfield_10042"
HOOKS = "/rest/webhooks/1.0/webhook"
DC10_HOOKS = "/rest/jira-webhook/1.0/webhooks"
SECRET = "webhook-secret-123"
RECEIVER = "https://impact.example.com/webhooks/jira"


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def connect(
    mocked: responses.RequestsMock,
    *,
    cloud: bool = True,
    version: list[int] | None = None,
    **kw: Any,
) -> JiraAdmin:
    """The admin calls on a connector to Cloud or Data Center (``version``: the Data Center
    version serverInfo says, 9.12.0 by default; ``kw``: the connector's own)."""
    base = CLOUD if cloud else DC
    mocked.get(
        f"{base}{API}/serverInfo",
        json={
            "deploymentType": "Cloud" if cloud else "DataCenter",
            "versionNumbers": [1001, 0, 0] if cloud else (version or [9, 12, 0]),
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
            id="7",
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
    mocked.get(f"{CLOUD}{HOOKS}/7", json=LISTED)  # read back by the id in its self link

    registered = admin.register_webhook(
        name="jira-customer-impact",
        url="https://impact.example.com/webhooks/jira",
        jql="project in (SHOP)",
        secret=SECRET,
    )

    assert registered.made.signed is True
    assert registered.made.self_url == f"{CLOUD}{HOOKS}/7"
    assert registered.read is not None and registered.read.jql == "project in (SHOP)"


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


# ---- which webhook API: Data Center 10 moved it


@pytest.mark.parametrize(
    ("cloud", "version", "api"),
    [
        (True, (1001, 0, 0), WebhookApi.LEGACY),
        (False, (9, 12, 15), WebhookApi.LEGACY),
        (False, (9, 17, 0), WebhookApi.LEGACY),
        (False, (10, 0, 0), WebhookApi.DC10),
        (False, (11, 0, 1), WebhookApi.DC10),
        (False, (), WebhookApi.LEGACY),  # no version said: the API every version before 10 has
    ],
)
def test_the_webhook_api_follows_the_deployment_and_version(cloud, version, api):
    assert webhook_api(cloud=cloud, version=version) is api


def test_data_center_9_registers_in_the_9x_api_and_reads_it_back(mocked):
    admin = connect(mocked, cloud=False, version=[9, 12, 15])
    expected = webhook_body(
        name="jira-customer-impact", url=RECEIVER, jql="project = SHOP", secret=None
    )
    mocked.post(
        f"{DC}{HOOKS}",
        match=[matchers.json_params_matcher(expected, strict_match=True)],
        status=201,
        json={**expected, "self": f"{DC}{HOOKS}/12", "enabled": True},
    )
    mocked.get(f"{DC}{HOOKS}/12", json={**expected, "self": f"{DC}{HOOKS}/12", "enabled": True})

    registered = admin.register_webhook(
        name="jira-customer-impact", url=RECEIVER, jql="project = SHOP", secret=None
    )

    assert registered.read is not None
    assert (registered.read.api, registered.read.id, registered.read.jql) == (
        WebhookApi.LEGACY,
        "12",
        "project = SHOP",
    )


DC10_LISTED = {
    "id": 31,
    "name": "jira-customer-impact",
    "url": RECEIVER,
    "active": True,
    "events": ["jira:issue_created", "jira:issue_updated"],
    "configuration": {"FILTERS": "project in (SHOP, SUP)", "EXCLUDE_BODY": "false"},
    "createdDate": 1767225600000,
    "updatedDate": 1767225600000,
    "scopeType": "GLOBAL",
    "sslVerificationRequired": True,
}


def test_data_center_10_registers_its_own_body_at_its_own_path_and_reads_it_back(mocked):
    admin = connect(mocked, cloud=False, version=[10, 3, 6])
    expected = {
        "name": "jira-customer-impact",
        "url": RECEIVER,
        "events": ["jira:issue_created", "jira:issue_updated"],
        "active": True,
        "configuration": {
            "FILTERS": "project in (SHOP, SUP)",
            "EXCLUDE_BODY": "false",
            "DESCRIPTION": "Issue events for jira-customer-impact (registered by jira-impact)",
            "SECRET": SECRET,
        },
    }
    mocked.post(
        f"{DC}{DC10_HOOKS}",
        match=[matchers.json_params_matcher(expected, strict_match=True)],
        status=201,
        json=DC10_LISTED,
    )
    mocked.get(f"{DC}{DC10_HOOKS}/31", json=DC10_LISTED)

    registered = admin.register_webhook(
        name="jira-customer-impact", url=RECEIVER, jql="project in (SHOP, SUP)", secret=SECRET
    )

    assert registered.read == AdminWebhook(
        name="jira-customer-impact",
        url=RECEIVER,
        events=("jira:issue_created", "jira:issue_updated"),
        jql="project in (SHOP, SUP)",
        enabled=True,
        signed=None,  # the answer does not show the secret: Jira does not say
        id="31",
        api=WebhookApi.DC10,
    )
    assert not any(HOOKS in call.request.url for call in mocked.calls)


def test_data_center_10_shows_what_it_kept_not_what_it_was_sent(mocked):
    admin = connect(mocked, cloud=False, version=[10, 0, 0])
    dropped = {**DC10_LISTED, "configuration": {"EXCLUDE_BODY": "false"}, "active": "true"}
    mocked.post(f"{DC}{DC10_HOOKS}", status=201, json=dropped)
    mocked.get(f"{DC}{DC10_HOOKS}/31", json=dropped)

    registered = admin.register_webhook(
        name="jira-customer-impact", url=RECEIVER, jql="project = SHOP", secret=None
    )

    assert registered.read is not None
    assert (registered.read.jql, registered.read.enabled) == ("", True)


def test_a_webhook_that_cannot_be_read_back_says_why(mocked):
    admin = connect(mocked, cloud=False, version=[10, 3, 6])
    mocked.post(f"{DC}{DC10_HOOKS}", status=201, json=DC10_LISTED)
    mocked.get(
        f"{DC}{DC10_HOOKS}/31",
        status=403,
        json={"errorMessages": ["Only Jira administrators can manage webhooks."]},
    )

    registered = admin.register_webhook(
        name="jira-customer-impact", url=RECEIVER, jql="project in (SHOP, SUP)", secret=None
    )

    assert registered.read is None
    assert registered.unread is not None and "administrators" in registered.unread


def test_an_answer_without_an_id_is_found_again_in_the_list(mocked):
    admin = connect(mocked, cloud=False, version=[10, 3, 6])
    mocked.post(f"{DC}{DC10_HOOKS}", status=201, body="")
    mocked.get(
        f"{DC}{DC10_HOOKS}",
        match=[query(start="0", limit="100")],
        json=[{**DC10_LISTED, "id": 5, "name": "other", "url": "https://x.test/h"}, DC10_LISTED],
    )

    registered = admin.register_webhook(
        name="jira-customer-impact", url=RECEIVER, jql="project in (SHOP, SUP)", secret=None
    )

    assert registered.read is not None and registered.read.id == "31"


def test_data_center_10_lists_every_page(mocked):
    admin = connect(mocked, cloud=False, version=[10, 3, 6])
    first = [{**DC10_LISTED, "id": n, "name": f"hook {n}"} for n in range(100)]
    mocked.get(f"{DC}{DC10_HOOKS}", match=[query(start="0", limit="100")], json=first)
    mocked.get(f"{DC}{DC10_HOOKS}", match=[query(start="100", limit="100")], json=[DC10_LISTED])

    hooks = admin.webhooks()

    assert len(hooks) == 101
    assert hooks[-1].jql == "project in (SHOP, SUP)" and hooks[-1].api is WebhookApi.DC10


def test_the_data_center_10_body_carries_no_secret_without_one():
    body = dc10_webhook_body(name="n", url=RECEIVER, jql="project = SHOP", secret=None)
    assert "SECRET" not in body["configuration"]
    assert body["configuration"]["FILTERS"] == "project = SHOP"
    assert "filters" not in body  # 9.x's key, which Data Center 10 ignores


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
