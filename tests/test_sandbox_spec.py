"""The sandbox's request and response bodies against Atlassian's published specs.

Shapes come from ``tests/spec_shapes`` (cut by ``tests/spec_check.py`` from the Jira Cloud
platform REST API spec ``1001.0.0-SNAPSHOT-57a0ca5b4a0bb0ac5f3fee4764acb1c14e4d7e71`` and the
Jira Software Cloud API spec ``1001.0.0``; admin webhooks from the webhooks documentation page).
Each row is one call a client makes; both its body and the sandbox's answer must fit the spec.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.app import RunningSandbox, start_in_thread
from sandbox.hooks import HookDispatcher
from tests.spec_check import find_operation, validate_request, validate_response

IMPACT = "customfield_10042"
HOOK = "http://127.0.0.1:9/hook"  # never delivered to: no event is raised while registered
SELECT = "com.atlassian.jira.plugin.system.customfieldtypes:select"
NEW_FIELD = {
    "name": "Spec check field",
    "description": "made by the spec check",
    "type": SELECT,
    "searcherKey": "com.atlassian.jira.plugin.system.customfieldtypes:multiselectsearcher",
}
NEW = "customfield_10043"  # the field NEW_FIELD makes (the seed's impact field is 10042)
NEW_CONTEXT = "10144"  # the context made for SUP below (10143 is the global one Jira gave it)

# Rows that others need done first (each test starts from the seed: see ``GIVEN``).
CREATE_FIELD = ("POST", "/rest/api/2/field", NEW_FIELD, "createCustomField", 201)
CREATE_CONTEXT = (
    "POST",
    f"/rest/api/2/field/{NEW}/context",
    {"name": "SUP only", "description": "spec check", "projectIds": ["10001"]},
    "createCustomFieldContext",
    201,
)
CREATE_OPTION = (
    "POST",
    f"/rest/api/2/field/{NEW}/context/{NEW_CONTEXT}/option",
    {"options": [{"value": "Spec check option", "disabled": False}]},
    "createCustomFieldOption",
    200,
)
SET_PROPERTY = (
    "PUT",
    "/rest/api/2/issue/SHOP-1/properties/impact",
    {"level": "blocking"},
    "setIssueProperty",
    201,
)
ADD_TO_SCREEN = (
    "POST",
    "/rest/api/2/screens/10002/tabs/10002/fields",
    {"fieldId": NEW},
    "addScreenTabField",
    200,
)

# Project and create metadata: the same calls on both flavours (Data Center lists ``values``).
META_CALLS: list[tuple[str, str, Any, str, int]] = [
    ("GET", "/rest/api/2/project/SHOP", None, "getProject", 200),
    ("GET", "/rest/api/3/project/SHOP", None, "getProject", 200),
    ("GET", "/rest/api/2/project/NOPE", None, "getProject", 404),
    (
        "GET",
        "/rest/api/2/issue/createmeta/SHOP/issuetypes?startAt=0&maxResults=50",
        None,
        "getCreateIssueMetaIssueTypes",
        200,
    ),
    (
        "GET",
        "/rest/api/2/issue/createmeta/SHOP/issuetypes/10004?maxResults=50",
        None,
        "getCreateIssueMetaIssueTypeId",
        200,
    ),
]

# (method, path, body, operationId, status); ``None`` body: no body sent.
CLOUD_CALLS: list[tuple[str, str, Any, str, int]] = [
    ("GET", "/rest/api/2/serverInfo", None, "getServerInfo", 200),
    ("GET", "/rest/api/2/myself", None, "getCurrentUser", 200),
    ("GET", "/rest/api/3/myself?expand=groups", None, "getCurrentUser", 200),
    ("GET", "/rest/api/2/field", None, "getFields", 200),
    ("GET", "/rest/api/2/priority", None, "getPriorities", 200),
    (
        "GET",
        "/rest/api/2/mypermissions?permissions=BROWSE_PROJECTS,EDIT_ISSUES,ADD_COMMENTS,SCHEDULE_ISSUES",
        None,
        "getMyPermissions",
        200,
    ),
    ("GET", "/rest/api/2/mypermissions?permissions=NOPE", None, "getMyPermissions", 400),
    ("GET", "/rest/api/2/user/groups?accountId={ana}", None, "getUserGroups", 200),
    ("GET", "/rest/api/2/issue/SHOP-3", None, "getIssue", 200),
    ("GET", "/rest/api/3/issue/SHOP-3?fields=summary,description", None, "getIssue", 200),
    ("GET", "/rest/api/2/issue/SHOP-999", None, "getIssue", 404),
    (
        "POST",
        "/rest/api/2/issue",
        {
            "fields": {
                "project": {"key": "SHOP"},
                "issuetype": {"name": "Bug"},
                "summary": "Spec check",
                IMPACT: {"value": "Blocks paying customers"},
            }
        },
        "createIssue",
        201,
    ),
    ("POST", "/rest/api/2/issue", {"fields": {"project": {"key": "SHOP"}}}, "createIssue", 400),
    (
        "PUT",
        "/rest/api/2/issue/SHOP-1?notifyUsers=false",
        {"update": {"labels": [{"add": "triaged"}, {"remove": "blocker"}]}},
        "editIssue",
        204,
    ),
    (
        "PUT",
        "/rest/api/2/issue/SHOP-1",
        {"fields": {"priority": {"name": "High"}, IMPACT: {"id": "10101"}}},
        "editIssue",
        204,
    ),
    (
        "PUT",
        "/rest/api/2/issue/SHOP-1",
        {"update": {"labels": [{"add": "two words"}]}},
        "editIssue",
        400,
    ),
    ("PUT", "/rest/api/2/issue/SHOP-404", {"fields": {"summary": "x"}}, "editIssue", 404),
    ("GET", "/rest/api/2/issue/SHOP-1/editmeta", None, "getEditIssueMeta", 200),
    (
        "POST",
        "/rest/api/2/issue/SHOP-1/comment",
        {"body": "Which customers are affected?"},
        "addComment",
        201,
    ),
    (
        "POST",
        "/rest/api/3/issue/SHOP-1/comment",
        {
            "body": {
                "type": "doc",
                "version": 1,
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": "ADF"}]}],
            }
        },
        "addComment",
        201,
    ),
    ("GET", "/rest/api/2/issue/SHOP-1/comment", None, "getComments", 200),
    SET_PROPERTY,
    ("GET", "/rest/api/2/issue/SHOP-1/properties/impact", None, "getIssueProperty", 200),
    ("GET", "/rest/api/2/issue/SHOP-1/properties/missing", None, "getIssueProperty", 404),
    (
        "GET",
        "/rest/api/2/search/jql?jql=project%20%3D%20SHOP&maxResults=5",
        None,
        "searchAndReconsileIssuesUsingJql",
        200,
    ),
    (
        "GET",
        "/rest/api/3/search/jql?jql=project%20%3D%20SHOP&fields=*all",
        None,
        "searchAndReconsileIssuesUsingJql",
        200,
    ),
    (
        "GET",
        "/rest/api/2/search/jql?jql=order%20by%20key",
        None,
        "searchAndReconsileIssuesUsingJql",
        400,
    ),
    (
        "POST",
        "/rest/api/2/search/jql",
        {"jql": "project = SHOP", "fields": ["summary", "labels", IMPACT], "maxResults": 3},
        "searchAndReconsileIssuesUsingJqlPost",
        200,
    ),
    ("GET", "/rest/api/2/filter/10000", None, "getFilter", 200),
    ("GET", "/rest/api/2/filter/1", None, "getFilter", 400),
    ("GET", "/rest/agile/1.0/board?projectKeyOrId=SHOP", None, "getAllBoards", 200),
    ("GET", "/rest/agile/1.0/board/1/configuration", None, "getConfiguration", 200),
    ("GET", "/rest/agile/1.0/board/7/configuration", None, "getConfiguration", 404),
    (
        "GET",
        "/rest/agile/1.0/board/1/issue?jql=issuetype%20%3D%20Bug",
        None,
        "getIssuesForBoard",
        200,
    ),
    (
        "PUT",
        "/rest/agile/1.0/issue/rank",
        {"issues": ["SHOP-3"], "rankBeforeIssue": "SHOP-6", "rankCustomFieldId": 10019},
        "rankIssues",
        204,
    ),
    (
        "PUT",
        "/rest/agile/1.0/issue/rank",
        {"issues": ["SHOP-3"], "rankBeforeIssue": "SHOP-6", "rankAfterIssue": "SHOP-2"},
        "rankIssues",
        400,
    ),
    (
        "POST",
        "/rest/webhooks/1.0/webhook",
        {
            "name": "impact",
            "url": HOOK,
            "events": ["jira:issue_created"],
            "filters": {"issue-related-events-section": "project = SHOP"},
            "excludeBody": False,
            "secret": "s3cret",
        },
        "registerAdminWebhook",
        201,
    ),
    ("GET", "/rest/webhooks/1.0/webhook", None, "getAdminWebhooks", 200),
    *META_CALLS,
    ("GET", f"/rest/api/2/field/{IMPACT}/context?maxResults=50", None, "getContextsForField", 200),
    ("GET", "/rest/api/3/field/customfield_404/context", None, "getContextsForField", 404),
    (
        "GET",
        f"/rest/api/2/field/{IMPACT}/context/10142/option?startAt=0&maxResults=100",
        None,
        "getOptionsForContext",
        200,
    ),
    ("GET", f"/rest/api/2/field/{IMPACT}/context/1/option", None, "getOptionsForContext", 404),
    # setting a field up, as jira-impact setup does
    CREATE_FIELD,
    ("POST", "/rest/api/2/field", {"name": "x", "type": "nope"}, "createCustomField", 400),
    (
        "GET",
        f"/rest/api/2/field/{IMPACT}/context/projectmapping?startAt=0&maxResults=50",
        None,
        "getProjectContextMapping",
        200,
    ),
    CREATE_CONTEXT,
    (
        "PUT",
        f"/rest/api/2/field/{NEW}/context/{NEW_CONTEXT}/project",
        {"projectIds": ["10000"]},
        "assignProjectsToCustomFieldContext",
        204,
    ),
    (
        "PUT",
        f"/rest/api/2/field/{IMPACT}/context/10142/project",
        {"projectIds": ["10000"]},
        "assignProjectsToCustomFieldContext",
        400,
    ),
    CREATE_OPTION,
    (
        "POST",
        f"/rest/api/2/field/{NEW}/context/{NEW_CONTEXT}/option",
        {"options": [{"value": "Spec check option"}]},
        "createCustomFieldOption",
        400,
    ),
    (
        "GET",
        "/rest/api/2/issuetypescreenscheme/project?projectId=10000&startAt=0&maxResults=50",
        None,
        "getIssueTypeScreenSchemeProjectAssociations",
        200,
    ),
    (
        "GET",
        "/rest/api/2/issuetypescreenscheme/mapping?issueTypeScreenSchemeId=10000",
        None,
        "getIssueTypeScreenSchemeMappings",
        200,
    ),
    ("GET", "/rest/api/2/screenscheme?id=10000&id=10001", None, "getScreenSchemes", 200),
    ("GET", "/rest/api/3/screens?id=10000&id=10001", None, "getScreens", 200),
    ("GET", "/rest/api/2/screens/10000/tabs", None, "getAllScreenTabs", 200),
    ("GET", "/rest/api/2/screens/999/tabs", None, "getAllScreenTabs", 404),
    ("GET", "/rest/api/2/screens/10000/tabs/10000/fields", None, "getAllScreenTabFields", 200),
    ADD_TO_SCREEN,
    (
        "POST",
        "/rest/api/2/screens/10002/tabs/10002/fields",
        {"fieldId": NEW},
        "addScreenTabField",
        400,
    ),
]

DC_CALLS: list[tuple[str, str, Any, str, int]] = [
    ("GET", "/rest/api/2/serverInfo", None, "getServerInfo", 200),
    ("GET", "/rest/api/2/myself", None, "getCurrentUser", 200),
    ("GET", "/rest/api/2/issue/SHOP-3", None, "getIssue", 200),
    (
        "GET",
        "/rest/api/2/search?jql=project%20%3D%20SHOP&startAt=5&maxResults=5",
        None,
        "searchForIssuesUsingJql",
        200,
    ),
    (
        "POST",
        "/rest/api/2/search",
        {"jql": "project = SHOP", "startAt": 0, "maxResults": 2, "fields": ["summary"]},
        "searchForIssuesUsingJqlPost",
        200,
    ),
    ("GET", "/rest/agile/1.0/board/1/issue", None, "getIssuesForBoard", 200),
    *META_CALLS,
    # Data Center creates fields and edits screens through REST, but has no REST for a field's
    # contexts and options or for screen schemes (see test_sandbox.py)
    CREATE_FIELD,
    ("GET", "/rest/api/2/screens/10000/tabs", None, "getAllScreenTabs", 200),
    ("GET", "/rest/api/2/screens/10000/tabs/10000/fields", None, "getAllScreenTabFields", 200),
    (
        "POST",
        "/rest/api/2/screens/10000/tabs/10000/fields",
        {"fieldId": NEW},
        "addScreenTabField",
        200,
    ),
]


# Data Center 10's admin webhooks (``--jira-version 10.3.6``); the id is the first the seed gives
DC10_HOOK = {
    "name": "impact",
    "url": HOOK,
    "events": ["jira:issue_created", "jira:issue_updated"],
    "active": True,
    "configuration": {"FILTERS": "project = SHOP", "EXCLUDE_BODY": "false", "SECRET": "s3cret"},
}
DC10_REGISTER = ("POST", "/rest/jira-webhook/1.0/webhooks", DC10_HOOK, "registerDc10Webhook", 201)
DC10_CALLS: list[tuple[str, str, Any, str, int]] = [
    ("GET", "/rest/api/2/serverInfo", None, "getServerInfo", 200),
    DC10_REGISTER,
    (
        "POST",
        "/rest/jira-webhook/1.0/webhooks",
        {**DC10_HOOK, "url": "https://example.com/hook"},  # the sandbox sends to loopback only
        "registerDc10Webhook",
        400,
    ),
    ("GET", "/rest/jira-webhook/1.0/webhooks?start=0&limit=100", None, "getDc10Webhooks", 200),
    ("GET", "/rest/jira-webhook/1.0/webhooks/{hook}", None, "getDc10Webhook", 200),
    ("GET", "/rest/jira-webhook/1.0/webhooks/1", None, "getDc10Webhook", 404),
]


# What a row needs Jira to hold before it is sent, by (operationId, status): every test starts
# from the seed, so no row counts on another having run before it.
GIVEN: dict[tuple[str, int], tuple[tuple[str, str, Any, str, int], ...]] = {
    ("getIssueProperty", 200): (SET_PROPERTY,),
    ("createCustomFieldContext", 201): (CREATE_FIELD,),
    ("assignProjectsToCustomFieldContext", 204): (CREATE_FIELD, CREATE_CONTEXT),
    ("createCustomFieldOption", 200): (CREATE_FIELD, CREATE_CONTEXT),
    ("createCustomFieldOption", 400): (CREATE_FIELD, CREATE_CONTEXT, CREATE_OPTION),
    ("addScreenTabField", 200): (CREATE_FIELD,),
    ("addScreenTabField", 400): (CREATE_FIELD, ADD_TO_SCREEN),
    ("getDc10Webhook", 200): (DC10_REGISTER,),
}


def _session(sandbox: RunningSandbox) -> requests.Session:
    session = requests.Session()
    bot = sandbox.state.accounts["impact-bot"]
    if sandbox.state.flavour == "cloud":
        session.auth = (bot.email, bot.api_token)
    else:
        session.headers["Authorization"] = f"Bearer {bot.pat}"
    return session


@pytest.fixture(scope="module")
def cloud_sandbox() -> Iterator[RunningSandbox]:
    with start_in_thread(flavour="cloud", dispatcher=HookDispatcher(max_retries=0)) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def dc_sandbox() -> Iterator[RunningSandbox]:
    with start_in_thread(flavour="dc", dispatcher=HookDispatcher(max_retries=0)) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def dc10_sandbox() -> Iterator[RunningSandbox]:
    dispatcher = HookDispatcher(max_retries=0)
    with start_in_thread(flavour="dc", version="10.3.6", dispatcher=dispatcher) as sandbox:
        yield sandbox


def _from_the_seed(sandbox: RunningSandbox) -> RunningSandbox:
    requests.post(f"{sandbox.url}/_sandbox/reset", json={}, timeout=10).raise_for_status()
    return sandbox


@pytest.fixture
def cloud(cloud_sandbox: RunningSandbox) -> RunningSandbox:
    return _from_the_seed(cloud_sandbox)


@pytest.fixture
def dc(dc_sandbox: RunningSandbox) -> RunningSandbox:
    return _from_the_seed(dc_sandbox)


@pytest.fixture
def dc10(dc10_sandbox: RunningSandbox) -> RunningSandbox:
    return _from_the_seed(dc10_sandbox)


def _check(sandbox: RunningSandbox, row: tuple[str, str, Any, str, int]) -> None:
    method, path, body, operation, status = row
    for given in GIVEN.get((operation, status), ()):
        done = _session(sandbox).request(given[0], sandbox.url + given[1], json=given[2])
        assert done.status_code == given[4], f"{given[3]} first: {done.text}"
    hooks = sorted(sandbox.state.webhooks)
    path = path.format(
        ana=sandbox.state.accounts["ana"].account_id, hook=hooks[0] if hooks else "none"
    )
    assert find_operation(method, path) == operation
    if body is not None:
        validate_request(operation, body)
    answer = _session(sandbox).request(method, sandbox.url + path, json=body)
    assert answer.status_code == status, answer.text
    validate_response(operation, answer.status_code, answer.json() if answer.content else None)


@pytest.mark.parametrize("row", CLOUD_CALLS, ids=lambda r: f"{r[3]}-{r[4]}")
def test_cloud_bodies_fit_the_spec(
    cloud: RunningSandbox, row: tuple[str, str, Any, str, int]
) -> None:
    _check(cloud, row)


@pytest.mark.parametrize("row", DC_CALLS, ids=lambda r: f"{r[3]}-{r[4]}")
def test_dc_bodies_fit_the_spec(dc: RunningSandbox, row: tuple[str, str, Any, str, int]) -> None:
    _check(dc, row)


@pytest.mark.parametrize("row", DC10_CALLS, ids=lambda r: f"{r[3]}-{r[4]}")
def test_dc10_bodies_fit_the_spec(
    dc10: RunningSandbox, row: tuple[str, str, Any, str, int]
) -> None:
    _check(dc10, row)


def test_partial_rank_failure_fits_the_spec(cloud: RunningSandbox) -> None:
    requests.post(f"{cloud.url}/_sandbox/faults", json={"rank_fail": ["SHOP-5"]})
    body = {"issues": ["SHOP-4", "SHOP-5"], "rankAfterIssue": "SHOP-12"}
    answer = _session(cloud).put(f"{cloud.url}/rest/agile/1.0/issue/rank", json=body)
    assert answer.status_code == 207
    validate_response("rankIssues", 207, answer.json())


def test_rank_without_permission_fits_the_spec(cloud: RunningSandbox) -> None:
    grants = f"{cloud.url}/_sandbox/permissions"
    requests.post(grants, json={"user": "impact-bot", "revoke": ["SCHEDULE_ISSUES"]})
    try:
        body = {"issues": ["SHOP-4"], "rankAfterIssue": "SHOP-12"}
        answer = _session(cloud).put(f"{cloud.url}/rest/agile/1.0/issue/rank", json=body)
    finally:
        requests.post(grants, json={"user": "impact-bot", "grant": ["SCHEDULE_ISSUES"]})
    assert answer.status_code == 403
    validate_response("rankIssues", 403, answer.json())
