"""Every request body the product builds matches Atlassian's published spec for its operation
(Cloud platform v3 and Jira Software agile, as cut into tests/spec_shapes; see its README)."""

from dataclasses import replace

import pytest

from connector.admin import dc10_webhook_body, webhook_body
from connector.edits import edit_body
from connector.field_admin import (
    context_body,
    field_body,
    options_body,
    projects_body,
    tab_field_body,
)
from impact.decide import decide
from impact.model import Issue, Person
from impact.ranking import BoardIssue, plan_rerank
from tests.spec_check import validate_request

ISSUES = [
    Issue(key="SHOP-1", project="SHOP", labels=("pens",), reporter=Person(display_name="Ana")),
    Issue(key="SHOP-2", project="SHOP", impact_values=("Blocks paying customers",), priority="Low"),
    Issue(
        key="SHOP-3",
        project="SHOP",
        issuetype="Bug",
        components=("Checkout",),
        labels=("needs-customer-impact",),
    ),
    Issue(key="SHOP-4", project="SHOP", impact_values=("Not an option",)),
]


@pytest.mark.parametrize("issue", ISSUES, ids=lambda i: i.key)
@pytest.mark.parametrize("write_field", [False, True])
def test_edit_and_comment_bodies_match_spec(impact_config, issue, write_field):
    project = impact_config.for_project("SHOP")
    if write_field:
        project = replace(project, inferred=replace(project.inferred, write_field=True))
    plan = decide(issue, project)
    body = edit_body(plan, field_id="customfield_10042")
    assert body is not None
    validate_request("editIssue", body)
    if plan.comment:
        validate_request("addComment", {"body": plan.comment})


def test_rank_bodies_match_spec_and_a_wrong_one_does_not():
    board = [BoardIssue(f"SHOP-{n}", score, "b") for n, score in enumerate([10, 100, 40, 70] * 30)]
    plan = plan_rerank(board)
    assert plan.calls
    for call in plan.calls:
        validate_request("rankIssues", call.payload() | {"rankCustomFieldId": 10019})
    with pytest.raises(AssertionError, match="rankIssues"):
        validate_request("rankIssues", plan.calls[0].payload() | {"rankField": 10019})


def test_setup_bodies_match_spec():
    validate_request("createCustomField", field_body("External customer impact", "why"))
    validate_request(
        "createCustomFieldContext", context_body("Impact: SHOP", "made by setup", ["10000"])
    )
    validate_request("assignProjectsToCustomFieldContext", projects_body(["10000", "10001"]))
    validate_request("createCustomFieldOption", options_body(["Blocks paying customers", "None"]))
    validate_request("addScreenTabField", tab_field_body("customfield_10042"))
    with pytest.raises(AssertionError, match="createCustomFieldOption"):
        validate_request("createCustomFieldOption", {"options": ["Blocks paying customers"]})


@pytest.mark.parametrize("secret", [None, "s3cret"])
def test_webhook_bodies_match_their_apis_and_not_each_other(secret):
    shape = {"name": "n", "url": "https://impact.example/webhooks/jira", "jql": "project = SHOP"}
    nine, ten = webhook_body(**shape, secret=secret), dc10_webhook_body(**shape, secret=secret)
    validate_request("registerAdminWebhook", nine)
    validate_request("registerDc10Webhook", ten)
    with pytest.raises(AssertionError):  # a 9.x body, whose filter Data Center 10 ignores
        validate_request("registerDc10Webhook", nine)
    with pytest.raises(AssertionError):
        validate_request("registerAdminWebhook", ten)
