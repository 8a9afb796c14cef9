import importlib.util
import json
import os
from pathlib import Path

import pytest

from tests.spec_check import (
    SHAPES,
    find_operation,
    operation_ids,
    validate_request,
    validate_response,
)

# Atlassian's spec files, for maintainers who have them: the committed shapes must match them.
SPECS = Path(os.environ.get("JIRA_SPECS_DIR", "/nonexistent"))

# Every operationId the extractor writes; the list doubles as a check that none went missing.
EXPECTED_OPERATIONS = [
    "addComment",
    "addScreenTabField",
    "assignProjectsToCustomFieldContext",
    "createCustomField",
    "createCustomFieldContext",
    "createCustomFieldOption",
    "createIssue",
    "editIssue",
    "getAdminWebhooks",
    "getAllBoards",
    "getAllScreenTabFields",
    "getAllScreenTabs",
    "getComments",
    "getConfiguration",
    "getContextsForField",
    "getCreateIssueMetaIssueTypeId",
    "getCreateIssueMetaIssueTypes",
    "getCurrentUser",
    "getDc10Webhook",
    "getDc10Webhooks",
    "getEditIssueMeta",
    "getFields",
    "getFilter",
    "getIssue",
    "getIssueProperty",
    "getIssueTypeScreenSchemeMappings",
    "getIssueTypeScreenSchemeProjectAssociations",
    "getIssuesForBoard",
    "getMyPermissions",
    "getOptionsForContext",
    "getPriorities",
    "getProject",
    "getProjectContextMapping",
    "getScreenSchemes",
    "getScreens",
    "getServerInfo",
    "getUserGroups",
    "rankIssues",
    "registerAdminWebhook",
    "registerDc10Webhook",
    "searchAndReconsileIssuesUsingJql",
    "searchAndReconsileIssuesUsingJqlPost",
    "searchForIssuesUsingJql",
    "searchForIssuesUsingJqlPost",
    "setIssueProperty",
]


def test_every_expected_shape_is_there_and_names_its_source():
    assert operation_ids() == EXPECTED_OPERATIONS
    for operation_id in EXPECTED_OPERATIONS:
        document = json.loads((SHAPES / f"{operation_id}.json").read_text())
        assert document["operationId"] == operation_id
        assert document["spec"]["title"]
        if document["spec"]["file"] is not None:
            assert document["spec"]["version"].startswith("1001.0.0")


@pytest.mark.parametrize(
    ("operation_id", "body"),
    [
        ("rankIssues", {"issues": ["SHOP-1", "10001"], "rankBeforeIssue": "SHOP-4"}),
        (
            "rankIssues",
            {"issues": ["SHOP-1"], "rankAfterIssue": "SHOP-4", "rankCustomFieldId": 10019},
        ),
        ("rankIssues", {"issues": [f"SHOP-{n}" for n in range(50)], "rankBeforeIssue": "SHOP-99"}),
        ("editIssue", {"update": {"labels": [{"add": "needs-customer-impact"}, {"remove": "x"}]}}),
        ("editIssue", {"fields": {"customfield_10042": {"value": "Blocks"}}, "update": {}}),
        ("addComment", {"body": "Which paying customers does this touch?"}),  # v2: plain text
        (
            "createIssue",
            {
                "fields": {
                    "project": {"key": "SHOP"},
                    "summary": "Pens",
                    "issuetype": {"name": "Task"},
                }
            },
        ),
        (
            "searchAndReconsileIssuesUsingJqlPost",
            {
                "jql": "project = SHOP",
                "maxResults": 50,
                "fields": ["labels"],
                "nextPageToken": "abc",
            },
        ),
        ("setIssueProperty", {"any": ["json", 1]}),
        (
            "registerAdminWebhook",
            {
                "name": "impact",
                "url": "https://impact.example/webhooks/jira",
                "events": ["jira:issue_created", "jira:issue_updated"],
                "filters": {"issue-related-events-section": "project = SHOP"},
                "excludeBody": False,
                "secret": "s3cret",
            },
        ),
        ("getIssue", None),
    ],
)
def test_valid_requests_pass(operation_id, body):
    validate_request(operation_id, body)


@pytest.mark.parametrize(
    ("operation_id", "body", "where"),
    [
        # the rank bean is additionalProperties:false
        ("rankIssues", {"issues": ["SHOP-1"], "rankBefore": "SHOP-4"}, "$: Additional properties"),
        (
            "rankIssues",
            {"issues": [f"SHOP-{n}" for n in range(51)], "rankAfterIssue": "SHOP-99"},
            "$.issues: ",
        ),
        (
            "rankIssues",
            {"issues": ["SHOP-1"], "rankCustomFieldId": "10019"},
            "$.rankCustomFieldId: '10019' is not of type 'integer'",
        ),
        ("rankIssues", {"issues": [10001]}, "$.issues[0]: 10001 is not of type 'string'"),
        (
            "editIssue",
            {"update": {"labels": {"add": "x"}}},
            "$.update.labels: {'add': 'x'} is not of type 'array'",
        ),
        (
            "editIssue",
            {"update": {"labels": [{"append": "x"}]}},
            "$.update.labels[0]: Additional properties",
        ),
        ("editIssue", {"fields": ["labels"]}, "$.fields: ['labels'] is not of type 'object'"),
        (
            "searchAndReconsileIssuesUsingJqlPost",
            {"jql": "project = SHOP", "startAt": 0},
            "$: Additional properties are not allowed ('startAt' was unexpected)",
        ),
        (
            "registerAdminWebhook",
            {"name": "impact", "url": "https://x", "events": [], "jqlFilter": "project = SHOP"},
            "$: Additional properties",
        ),
        (
            "registerAdminWebhook",
            {"name": "impact", "events": []},
            "$: 'url' is a required property",
        ),
        ("getIssue", {"fields": "*all"}, "$: the operation takes no body"),
    ],
)
def test_invalid_requests_fail_naming_the_path(operation_id, body, where):
    with pytest.raises(AssertionError) as caught:
        validate_request(operation_id, body)
    assert f"{operation_id} request: {where}" in str(caught.value)


RANK_207 = {
    "entries": [
        {"issueId": 10000, "issueKey": "SHOP-1", "status": 200},
        {
            "issueId": 10002,
            "issueKey": "SHOP-3",
            "status": 503,
            "errors": ["JIRA Agile cannot execute the rank operation at this time."],
        },
    ]
}

ISSUE = {
    "id": "10001",
    "key": "SHOP-1",
    "self": "https://jira.example/rest/api/2/issue/10001",
    "fields": {"labels": ["x"], "customfield_10042": None, "customfield_10019": "0|i00000:"},
}


@pytest.mark.parametrize(
    ("operation_id", "status", "body"),
    [
        ("rankIssues", 204, None),
        ("rankIssues", 207, RANK_207),
        ("rankIssues", 400, {"errorMessages": ["Issue does not exist"], "errors": {}}),
        ("rankIssues", 401, "Client must be authenticated to access this resource."),
        ("editIssue", 204, None),
        (
            "editIssue",
            400,
            {"errorMessages": [], "errors": {"labels": "Field 'labels' cannot be set."}},
        ),
        ("getIssue", 200, ISSUE),
        (
            "getConfiguration",
            200,
            {
                "id": 12,
                "name": "SHOP board",
                "type": "scrum",
                "filter": {"id": "10000", "self": "https://jira.example/f"},
                "ranking": {"rankCustomFieldId": 10019},
            },
        ),
        ("searchAndReconsileIssuesUsingJql", 200, {"issues": [ISSUE], "isLast": True}),
        (
            "searchAndReconsileIssuesUsingJql",
            200,
            {"issues": [], "nextPageToken": "t", "isLast": False},
        ),
        (
            "searchForIssuesUsingJql",
            200,
            {"startAt": 0, "maxResults": 50, "total": 1, "issues": [ISSUE]},
        ),
        ("getIssuesForBoard", 200, {"startAt": 0, "maxResults": 50, "total": 1, "issues": [ISSUE]}),
        (
            "getServerInfo",
            200,
            {
                "baseUrl": "https://jira.example",
                "deploymentType": "Cloud",
                "versionNumbers": [1001, 0, 0],
                "version": "1001.0.0",
            },
        ),
        (
            "getFields",
            200,
            [
                {
                    "id": "customfield_10042",
                    "name": "External customer impact",
                    "custom": True,
                    "clauseNames": ["cf[10042]"],
                    "schema": {"type": "option", "custom": "x:select", "customId": 10042},
                }
            ],
        ),
        ("getUserGroups", 200, [{"name": "support", "groupId": None}]),  # nullable groupId
        ("addComment", 201, {"id": "10100", "body": "plain v2 text"}),
        (
            "registerAdminWebhook",
            201,
            {
                "name": "impact",
                "url": "https://x",
                "self": "https://j/1",
                "enabled": True,
                "isSigned": True,
                "lastUpdated": 1,
            },
        ),
    ],
)
def test_valid_responses_pass(operation_id, status, body):
    validate_response(operation_id, status, body)


@pytest.mark.parametrize(
    ("operation_id", "status", "body", "where"),
    [
        ("rankIssues", 204, {"entries": []}, "$: {'entries': []} is not of type 'null'"),
        (
            "rankIssues",
            207,
            {"entries": [{"issueKey": "SHOP-1", "status": "503"}]},
            "$.entries[0].status: '503' is not of type 'integer'",
        ),
        (
            "rankIssues",
            207,
            {"entries": [{"issueKey": "SHOP-1", "message": "x"}]},
            "$.entries[0]: Additional properties",
        ),
        (
            "rankIssues",
            400,
            {"errorMessages": "Issue does not exist"},
            "$.errorMessages: 'Issue does not exist' is not of type 'array'",
        ),
        ("rankIssues", 500, None, "$: status 500 is not documented (documented: 204, 207, 400"),
        (
            "editIssue",
            400,
            {"errors": {"labels": ["bad"]}},
            "$.errors.labels: ['bad'] is not of type 'string'",
        ),
        ("getIssue", 200, {**ISSUE, "fields": []}, "$.fields: [] is not of type 'object'"),
        ("getIssue", 200, {**ISSUE, "rank": "0|i00000:"}, "$: Additional properties"),
        (
            "getConfiguration",
            200,
            {"ranking": {"rankCustomFieldId": "customfield_10019"}},
            "$.ranking.rankCustomFieldId: 'customfield_10019' is not of type 'integer'",
        ),
        (
            "searchAndReconsileIssuesUsingJql",
            200,
            {"issues": [], "total": 0},
            "$: Additional properties are not allowed ('total' was unexpected)",
        ),
        (
            "getServerInfo",
            200,
            {"versionNumbers": ["1001"]},
            "$.versionNumbers[0]: '1001' is not of type 'integer'",
        ),
        ("getUserGroups", 200, [{"name": 7}], "$[0].name: 7 is not of type 'string'"),
    ],
)
def test_invalid_responses_fail_naming_the_path(operation_id, status, body, where):
    with pytest.raises(AssertionError) as caught:
        validate_response(operation_id, status, body)
    assert f"{operation_id} {status} response: {where}" in str(caught.value)


def test_an_unknown_operation_is_a_usage_error():
    with pytest.raises(KeyError, match="no spec shape for 'rankIssue'"):
        validate_request("rankIssue", {})


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/rest/api/2/serverInfo", "getServerInfo"),
        ("GET", "/rest/api/3/issue/SHOP-1", "getIssue"),
        ("PUT", "/rest/api/2/issue/SHOP-1?notifyUsers=false", "editIssue"),
        ("GET", "/jira/rest/api/2/issue/SHOP-1/editmeta", "getEditIssueMeta"),  # DC context path
        ("post", "/rest/api/2/issue/SHOP-1/comment", "addComment"),
        ("PUT", "/rest/api/2/issue/SHOP-1/properties/impact", "setIssueProperty"),
        ("GET", "/rest/api/2/search/jql?jql=project%3DSHOP", "searchAndReconsileIssuesUsingJql"),
        ("POST", "/rest/api/2/search", "searchForIssuesUsingJqlPost"),
        ("POST", "/rest/api/2/issue", "createIssue"),
        ("GET", "/rest/agile/1.0/board/12/configuration", "getConfiguration"),
        ("PUT", "/rest/agile/1.0/issue/rank", "rankIssues"),
        ("POST", "/rest/webhooks/1.0/webhook", "registerAdminWebhook"),
        ("POST", "/jira/rest/jira-webhook/1.0/webhooks", "registerDc10Webhook"),
        ("GET", "/rest/jira-webhook/1.0/webhooks/31", "getDc10Webhook"),
        ("DELETE", "/rest/api/2/issue/SHOP-1", None),
        ("GET", "/rest/api/2/issue/SHOP-1/transitions", None),
        ("GET", "/webhooks/jira", None),
    ],
)
def test_find_operation(method, path, expected):
    assert find_operation(method, path) == expected


@pytest.mark.skipif(not SPECS.is_dir(), reason="JIRA_SPECS_DIR names no folder of specs")
def test_committed_shapes_match_a_fresh_extraction(tmp_path):
    spec = importlib.util.spec_from_file_location("extract", SHAPES / "extract.py")
    assert spec is not None and spec.loader is not None
    extract = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extract)
    assert extract.main(["--out", str(tmp_path)]) == 0
    fresh = sorted(path.name for path in tmp_path.glob("*.json"))
    assert fresh == [f"{name}.json" for name in EXPECTED_OPERATIONS]
    for name in fresh:
        assert (tmp_path / name).read_text() == (SHAPES / name).read_text(), name


def test_a_rank_call_of_more_than_fifty_issues_is_too_long():
    body = {"issues": [f"SHOP-{n}" for n in range(51)], "rankBeforeIssue": "SHOP-99"}
    with pytest.raises(AssertionError, match=r"rankIssues request: \$\.issues: .* is too long"):
        validate_request("rankIssues", body)
