import json
from pathlib import Path
from typing import Any

import pytest

from impact.model import Issue, Person
from impact.snapshot import (
    SnapshotError,
    description_text,
    issue_from_json,
    option_values,
    person_from_json,
)

FIXTURES = Path(__file__).parent / "fixtures" / "payloads"
IMPACT = "customfield_10042"


def fixture_issue(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data["issue"] if "webhookEvent" in data else data


def test_cloud_webhook_issue() -> None:
    issue = issue_from_json(fixture_issue("cloud_issue_created.json"), impact_field_id=IMPACT)

    assert issue == Issue(
        key="SHOP-311",
        project="SHOP",
        issuetype="Bug",
        summary="Checkout button does nothing on Safari 17",
        description="Customers on Safari 17 cannot pay.\nReported by two merchants via support.",
        labels=("checkout", "safari"),
        components=("Payments", "Web"),
        priority="Medium",
        impact_values=("Blocking",),
        linked_projects=("SUP", "WEB_OPS"),
        reporter=Person(
            account_id="712020:3f1c5d9e-8a4b-4c2e-9d7f-1a2b3c4d5e6f",
            display_name="Maya Lindqvist",
            email="maya.lindqvist@shopfront.example",
        ),
        status_category="new",
    )


def test_server_webhook_issue_with_cascading_select() -> None:
    issue = issue_from_json(
        fixture_issue("server_issue_created.json"), impact_field_id="customfield_11000"
    )

    assert issue.impact_values == ("Customers",)
    assert issue.description.startswith("h3. Steps\n# Order with a Norwegian address")
    assert issue.components == ("Billing",)
    assert issue.priority == "Critical"
    assert issue.reporter == Person(
        name="tomas.berg",
        key="JIRAUSER10301",
        display_name="Tomas Berg",
        email="tomas.berg@shopfront.example",
    )


def test_cloud_v3_response_with_adf_description() -> None:
    issue = issue_from_json(fixture_issue("cloud_issue_get_v3.json"), impact_field_id=IMPACT)

    assert issue.description == (
        "Prices in search lag the catalogue by a day.\n"
        "Who sees it\n"
        "every shopper\n"
        "raised by @Maya Lindqvist\n"
        "on the merchant call"
    )
    assert issue.impact_values == ()
    assert issue.linked_projects == ("SHOP",)
    assert issue.status_category == "done"
    assert issue.reporter is not None
    assert issue.reporter.email == "maya.lindqvist@shopfront.example"


@pytest.mark.parametrize(
    ("fixture", "field_id", "values"),
    [
        ("cloud_issue_created.json", IMPACT, ("Blocking",)),
        ("cloud_issue_updated_impact_field.json", IMPACT, ("Degraded", "Cosmetic")),
        ("server_issue_created.json", "customfield_11000", ("Customers",)),
        ("relayed_issue_updated_string_timestamp.json", "customfield_11000", ("Customers",)),
        ("cloud_issue_created.json", "customfield_77777", ()),
        ("cloud_issue_created.json", None, ()),
    ],
)
def test_impact_values_from_fixtures(
    fixture: str, field_id: str | None, values: tuple[str, ...]
) -> None:
    issue = issue_from_json(fixture_issue(fixture), impact_field_id=field_id)

    assert issue.impact_values == values


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"self": "https://x/1", "value": "Blocking", "id": "1"}, ("Blocking",)),
        ([{"value": "Degraded"}, {"value": "Cosmetic"}], ("Degraded", "Cosmetic")),
        ({"value": "Customers", "child": {"value": "Billing wrong"}}, ("Customers",)),
        ("Blocking", ("Blocking",)),
        (["Blocking", {"value": "Degraded"}], ("Blocking", "Degraded")),
        ("", ()),
        ([], ()),
        (None, ()),
        ({"id": "10100"}, ()),
        (3, ()),
    ],
)
def test_option_values(value: Any, expected: tuple[str, ...]) -> None:
    assert option_values(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Line one\r\nLine two", "Line one\r\nLine two"),
        (None, ""),
        (["not", "a", "doc"], ""),
        ({"type": "doc", "version": 1, "content": []}, ""),
        (
            {
                "type": "doc",
                "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "First"}]},
                    {"type": "paragraph", "content": []},
                    {
                        "type": "codeBlock",
                        "content": [{"type": "text", "text": "GET /basket\n500"}],
                    },
                    {
                        "type": "table",
                        "content": [
                            {
                                "type": "tableRow",
                                "content": [
                                    {
                                        "type": "tableCell",
                                        "content": [
                                            {
                                                "type": "paragraph",
                                                "content": [
                                                    {
                                                        "type": "emoji",
                                                        "attrs": {"shortName": ":x:"},
                                                    },
                                                    {"type": "text", "text": " broken"},
                                                ],
                                            }
                                        ],
                                    }
                                ],
                            }
                        ],
                    },
                    {
                        "type": "paragraph",
                        "content": [
                            {"type": "inlineCard", "attrs": {"url": "https://status.example/1"}},
                            {"type": "text"},
                        ],
                    },
                ],
            },
            "First\nGET /basket\n500\n:x: broken\nhttps://status.example/1",
        ),
    ],
)
def test_description_text(value: Any, expected: str) -> None:
    assert description_text(value) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {
                "accountId": "712020:aa",
                "accountType": "atlassian",
                "displayName": "Maya Lindqvist",
                "emailAddress": "maya@shopfront.example",
            },
            Person(
                account_id="712020:aa",
                display_name="Maya Lindqvist",
                email="maya@shopfront.example",
            ),
        ),
        (
            {"name": "tomas.berg", "key": "JIRAUSER10301", "displayName": "Tomas Berg"},
            Person(name="tomas.berg", key="JIRAUSER10301", display_name="Tomas Berg"),
        ),
        (
            {
                "name": "ines.duarte",
                "groups": {"size": 2, "items": [{"name": "support"}, {"name": "jira-users"}]},
            },
            Person(name="ines.duarte", groups=("support", "jira-users")),
        ),
        ({"accountId": None, "emailAddress": None}, None),
        ({}, None),
        (None, None),
        ("admin", None),
    ],
)
def test_person_from_json(data: Any, expected: Person | None) -> None:
    assert person_from_json(data) == expected


def test_bare_issue_takes_its_project_from_the_key() -> None:
    assert issue_from_json({"key": "WEB_OPS-12"}, impact_field_id=IMPACT) == Issue(
        key="WEB_OPS-12", project="WEB_OPS"
    )


def test_null_and_odd_fields_read_as_empty() -> None:
    data = {
        "key": "SHOP-9",
        "fields": {
            "project": None,
            "issuetype": None,
            "summary": None,
            "description": None,
            "labels": None,
            "components": [None, {"id": "1"}, {"name": "Web"}],
            "priority": "High",
            "issuelinks": [{"type": {"name": "Blocks"}}, {"inwardIssue": {"key": "NOKEY"}}, None],
            "reporter": None,
            "status": {"statusCategory": None},
            IMPACT: None,
        },
    }

    assert issue_from_json(data, impact_field_id=IMPACT) == Issue(
        key="SHOP-9", project="SHOP", components=("Web",)
    )


@pytest.mark.parametrize("data", [{}, {"key": None}, {"fields": {"project": {"key": "SHOP"}}}])
def test_issue_without_key_is_a_snapshot_error(data: dict[str, Any]) -> None:
    with pytest.raises(SnapshotError, match="no key"):
        issue_from_json(data, impact_field_id=IMPACT)
