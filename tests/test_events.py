import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from impact.events import (
    TRIAGED_EVENTS,
    BodyError,
    ChangeItem,
    EventError,
    PayloadError,
    WebhookEvent,
    decode_body,
    parse_event,
    should_triage,
)
from impact.model import Issue, Person
from impact.snapshot import issue_from_json

FIXTURES = Path(__file__).parent / "fixtures" / "payloads"
# Real deliveries published by other integrations, for whoever has a folder of them.
REAL_PAYLOADS = Path(os.environ.get("JIRA_PAYLOADS_DIR", "/nonexistent"))
MISSING = ["Missing data for required field."]

MAYA = Person(
    account_id="712020:3f1c5d9e-8a4b-4c2e-9d7f-1a2b3c4d5e6f", display_name="Maya Lindqvist"
)
KWAME = Person(
    account_id="712020:8b7a6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d", display_name="Kwame Asante"
)
BOT = Person(
    account_id="557058:9e8d7c6b-5a4f-4e3d-8c1b-0a9f8e7d6c5b", display_name="Customer Impact Bot"
)
TOMAS = Person(
    name="tomas.berg",
    key="JIRAUSER10301",
    display_name="Tomas Berg",
    email="tomas.berg@shopfront.example",
)
INES = Person(name="ines.duarte", key="JIRAUSER10455", display_name="Inês Duarte")


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def load_event(name: str) -> WebhookEvent:
    return parse_event(decode_body(fixture_bytes(name)))


# --------------------------------------------------------------------------------------------
# Our fixtures parse into the values a reader of the payload would expect


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "cloud_issue_created.json",
            dict(
                name="jira:issue_created",
                type_name="issue_created",
                timestamp_ms=1767261600123,
                issue_key="SHOP-311",
                project_key="SHOP",
                actor=MAYA,
                changes=(
                    ChangeItem(
                        "summary", "summary", None, "Checkout button does nothing on Safari 17"
                    ),
                    ChangeItem("Customer Impact", "customfield_10042", None, "Blocking"),
                ),
            ),
        ),
        (
            "cloud_issue_updated_impact_field.json",
            dict(
                name="jira:issue_updated",
                type_name="issue_updated",
                timestamp_ms=1767265200456,
                issue_key="SHOP-318",
                project_key="SHOP",
                actor=KWAME,
                changes=(
                    ChangeItem(
                        "Customer Impact", "customfield_10042", "[Cosmetic]", "[Degraded, Cosmetic]"
                    ),
                ),
            ),
        ),
        (
            "cloud_issue_updated_labels.json",
            dict(
                name="jira:issue_updated",
                type_name="issue_updated",
                timestamp_ms=1767265260789,
                issue_key="SHOP-311",
                project_key="SHOP",
                actor=BOT,
                changes=(
                    ChangeItem(
                        "labels",
                        "labels",
                        "checkout safari",
                        "checkout customer-impact-blocking safari",
                    ),
                ),
            ),
        ),
        (
            "cloud_issue_updated_rank.json",
            dict(
                name="jira:issue_updated",
                type_name="issue_updated",
                timestamp_ms=1767265261002,
                issue_key="SHOP-318",
                project_key="SHOP",
                actor=KWAME,
                changes=(ChangeItem("Rank", "customfield_10019", "", "Ranked higher"),),
            ),
        ),
        (
            "server_issue_created.json",
            dict(
                name="jira:issue_created",
                type_name=None,
                timestamp_ms=1767268800000,
                issue_key="SHOP-902",
                project_key="SHOP",
                actor=TOMAS,
                changes=(),
            ),
        ),
        (
            "relayed_issue_updated_string_timestamp.json",
            dict(
                name="jira:issue_updated",
                type_name="issue_generic",
                timestamp_ms=None,
                issue_key="SHOP-902",
                project_key="SHOP",
                actor=INES,
                changes=(ChangeItem("status", None, "Open", "In Progress"),),
            ),
        ),
        (
            "cloud_comment_created.json",
            dict(
                name="comment_created",
                type_name=None,
                timestamp_ms=1767272400321,
                issue_key="SHOP-311",
                project_key="SHOP",
                actor=None,
                changes=(),
            ),
        ),
        (
            "server_comment_created.json",
            dict(
                name="comment_created",
                type_name=None,
                timestamp_ms=1767272460000,
                issue_key=None,
                project_key=None,
                actor=None,
                changes=(),
            ),
        ),
    ],
)
def test_fixture_payload_parses(fixture: str, expected: dict[str, Any]) -> None:
    event = load_event(fixture)

    got = {name: getattr(event, name) for name in expected}
    assert got == expected


def test_event_keeps_the_raw_issue_with_custom_fields() -> None:
    event = load_event("cloud_issue_created.json")

    assert event.issue is not None
    assert event.issue["fields"]["customfield_10042"]["value"] == "Blocking"
    assert event.issue == json.loads(fixture_bytes("cloud_issue_created.json"))["issue"]


def test_comment_without_issue_has_no_raw_issue() -> None:
    assert load_event("server_comment_created.json").issue is None


@pytest.mark.parametrize(
    ("fixture", "is_issue_event"),
    [
        ("cloud_issue_created.json", True),
        ("cloud_issue_updated_rank.json", True),
        ("cloud_comment_created.json", False),
    ],
)
def test_is_issue_event(fixture: str, is_issue_event: bool) -> None:
    assert load_event(fixture).is_issue_event is is_issue_event


def test_changed_fields_lists_names_and_ids() -> None:
    event = load_event("cloud_issue_created.json")

    assert event.changed_fields() == {
        "summary",
        "Customer Impact",
        "customfield_10042",
    }


@pytest.mark.parametrize(
    ("fixture", "query", "expected"),
    [
        ("cloud_issue_updated_impact_field.json", {"field_id": "customfield_10042"}, True),
        ("cloud_issue_updated_impact_field.json", {"field_id": "customfield_99999"}, False),
        # the id wins over the name when the changelog carries one
        (
            "cloud_issue_updated_impact_field.json",
            {"field_id": "customfield_99999", "name": "Customer Impact"},
            False,
        ),
        ("cloud_issue_updated_impact_field.json", {"name": "customer impact"}, True),
        # older Server sends no fieldId: fall back to the display name
        ("relayed_issue_updated_string_timestamp.json", {"field_id": "status"}, False),
        (
            "relayed_issue_updated_string_timestamp.json",
            {"field_id": "status", "name": "Status"},
            True,
        ),
        ("server_issue_created.json", {"name": "labels"}, False),
    ],
)
def test_changes_field(fixture: str, query: dict[str, str], expected: bool) -> None:
    assert load_event(fixture).changes_field(**query) is expected


# --------------------------------------------------------------------------------------------
# Leniency where Jira varies


def minimal_update() -> dict[str, Any]:
    return {
        "webhookEvent": "jira:issue_updated",
        "issue": {"key": "SHOP-7", "fields": {"project": {"key": "SHOP"}}},
    }


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1767261600123, 1767261600123),
        (1767261600123.0, 1767261600123),
        ("1767261600123", None),
        (True, None),
        (None, None),
        ({"ms": 1}, None),
    ],
)
def test_timestamp_that_is_not_a_number_reads_as_none(timestamp: Any, expected: Any) -> None:
    data = minimal_update() | {"timestamp": timestamp}

    assert parse_event(data).timestamp_ms == expected


def test_unknown_keys_are_ignored_at_every_level() -> None:
    data = minimal_update()
    data["bulkOperationMetaData"] = {"sendMail": False}
    data["user"] = {"accountId": "abc", "accountType": "app", "locale": "nb_NO"}
    data["issue"]["fields"]["customfield_10500"] = [{"odd": True}]
    data["issue"]["fields"]["project"]["projectCategory"] = {"name": "Retail"}
    data["changelog"] = {"id": "1", "items": [{"field": "Rank", "tmpToAccountId": None}]}

    event = parse_event(data)

    assert event.actor == Person(account_id="abc")
    assert event.changes == (ChangeItem("Rank", None, None, None),)


def test_comment_event_with_a_slim_issue_needs_no_project() -> None:
    event = parse_event({"webhookEvent": "comment_created", "issue": {"key": "SHOP-7"}})

    assert (event.issue_key, event.project_key) == ("SHOP-7", None)


def test_changelog_without_items_has_no_changes() -> None:
    assert parse_event(minimal_update() | {"changelog": {"id": "9"}}).changes == ()


# --------------------------------------------------------------------------------------------
# Wrong shapes: 422 with every problem keyed by its field path


def without(path: str) -> dict[str, Any]:
    data = minimal_update()
    *parents, last = path.split(".")
    target = data
    for part in parents:
        target = target[part]
    del target[last]
    return data


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        (without("webhookEvent"), {"webhookEvent": MISSING}),
        (minimal_update() | {"webhookEvent": 42}, {"webhookEvent": ["Not a valid string."]}),
        (minimal_update() | {"webhookEvent": None}, {"webhookEvent": ["Field may not be null."]}),
        (without("issue"), {"issue": MISSING}),
        (minimal_update() | {"issue": None}, {"issue": MISSING}),
        ({"webhookEvent": "jira:issue_deleted"}, {"issue": MISSING}),
        (minimal_update() | {"issue": ["SHOP-7"]}, {"issue": ["Invalid input type."]}),
        (without("issue.key"), {"issue.key": MISSING}),
        (without("issue.fields"), {"issue.fields": MISSING}),
        (without("issue.fields.project"), {"issue.fields.project": MISSING}),
        (without("issue.fields.project.key"), {"issue.fields.project.key": MISSING}),
        (
            minimal_update() | {"changelog": {"items": {"field": "labels"}}},
            {"changelog.items": ["Not a valid list."]},
        ),
        (
            minimal_update() | {"changelog": {"items": [{"field": "labels"}, {"fieldId": "x"}]}},
            {"changelog.items.1.field": MISSING},
        ),
        (minimal_update() | {"user": "admin"}, {"user": ["Invalid input type."]}),
        (
            {
                "webhookEvent": "jira:issue_created",
                "issue": {"fields": {"project": {}}},
                "changelog": {"items": "Rank"},
            },
            {
                "issue.key": MISSING,
                "issue.fields.project.key": MISSING,
                "changelog.items": ["Not a valid list."],
            },
        ),
    ],
)
def test_wrong_shape_is_a_payload_error(data: dict[str, Any], errors: dict[str, list[str]]) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_event(data)

    assert caught.value.errors == errors
    assert caught.value.status == 422
    assert next(iter(errors)) in str(caught.value)


def test_parse_event_does_not_change_its_input() -> None:
    data = minimal_update() | {"changelog": {"items": [{"field": "labels", "from": None}]}}
    before = copy.deepcopy(data)

    parse_event(data)

    assert data == before


@pytest.mark.parametrize("data", [[], "jira:issue_created", None, 3])
def test_parse_event_wants_an_object(data: Any) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_event(data)

    assert list(caught.value.errors) == ["_schema"]


# --------------------------------------------------------------------------------------------
# Body decoding: 400 when it is not JSON, 422 when it is JSON but not an object


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "body is empty"),
        (b"  \r\n", "body is empty"),
        (b'{"webhookEvent": "caf\xe9"}', "body is not UTF-8"),
        (b'{"webhookEvent": ', "body is not JSON: unexpected end of data at line 1 column 18"),
        (
            b'{\n  "webhookEvent" "jira:issue_created"\n}',
            "body is not JSON: unexpected character, expected ':' after key at line 2 column 18",
        ),
        (b"[" * 100_000, "body is not JSON: depth limit exceeded at line 1 column 1026"),
        (
            b'{"timestamp": NaN}',
            "body is not JSON: unexpected character, expected a JSON value at line 1 column 15",
        ),
    ],
)
def test_body_that_is_not_json_is_a_body_error(body: bytes, message: str) -> None:
    with pytest.raises(BodyError) as caught:
        decode_body(body)

    assert str(caught.value) == message
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("body", "kind"),
    [(b"[]", "an array"), (b'"hi"', "a string"), (b"null", "null"), (b"7", "a number")],
)
def test_body_that_is_not_an_object_is_a_payload_error(body: bytes, kind: str) -> None:
    with pytest.raises(PayloadError) as caught:
        decode_body(body)

    assert caught.value.errors == {"_schema": [f"expected a JSON object, got {kind}"]}


def test_decode_body_returns_the_object() -> None:
    assert decode_body('{"webhookEvent": "comment_created", "x": "ø"}'.encode()) == {
        "webhookEvent": "comment_created",
        "x": "ø",
    }


def test_errors_are_value_errors_with_a_status() -> None:
    assert issubclass(BodyError, EventError)
    assert issubclass(PayloadError, EventError)
    assert issubclass(EventError, ValueError)
    assert (BodyError.status, PayloadError.status) == (400, 422)


# --------------------------------------------------------------------------------------------
# Routing


def make_event(
    name: str = "jira:issue_updated",
    *,
    project: str | None = "SHOP",
    actor: Person | None = KWAME,
    changes: tuple[str, ...] = ("labels",),
    issue: bool = True,
) -> WebhookEvent:
    return WebhookEvent(
        name=name,
        type_name=None,
        timestamp_ms=None,
        issue_key="SHOP-1" if issue else None,
        project_key=project if issue else None,
        actor=actor,
        changes=tuple(ChangeItem(field, None, None, None) for field in changes),
        issue={"key": "SHOP-1"} if issue else None,
    )


SERVER_BOT = Person(name="impact-bot", key="JIRAUSER10900")


@pytest.mark.parametrize(
    ("event", "service_account", "reason"),
    [
        (make_event("jira:issue_created", changes=()), BOT, None),
        (make_event("jira:issue_created", actor=BOT), BOT, None),
        (make_event(), BOT, None),
        (make_event(changes=()), BOT, None),
        (make_event(actor=None), BOT, None),
        (make_event(), None, None),
        (make_event(actor=BOT), None, None),
        (make_event(changes=("Rank", "labels")), BOT, None),
        (make_event(actor=BOT), BOT, "update made by the service account itself"),
        (
            make_event(actor=Person(key="JIRAUSER10900", display_name="Impact")),
            SERVER_BOT,
            "update made by the service account itself",
        ),
        (make_event(actor=Person(key="JIRAUSER10901")), SERVER_BOT, None),
        (make_event(changes=("Rank",)), BOT, "update only moves the rank"),
        (make_event(changes=("Rank", "Rank")), BOT, "update only moves the rank"),
        (make_event("comment_created"), BOT, "event comment_created is not triaged"),
        (make_event("jira:issue_deleted"), BOT, "event jira:issue_deleted is not triaged"),
        (make_event(project="FOO"), BOT, "project FOO is not configured"),
        (make_event("jira:issue_created", project="FOO"), BOT, "project FOO is not configured"),
        (make_event(issue=False), BOT, "no issue in payload"),
    ],
)
def test_should_triage(
    event: WebhookEvent, service_account: Person | None, reason: str | None
) -> None:
    assert should_triage(event, service_account=service_account, projects={"SHOP", "OPS"}) == reason


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("cloud_issue_created.json", None),
        ("cloud_issue_updated_impact_field.json", None),
        ("cloud_issue_updated_labels.json", "update made by the service account itself"),
        ("cloud_issue_updated_rank.json", "update only moves the rank"),
        ("server_issue_created.json", None),
        ("relayed_issue_updated_string_timestamp.json", None),
        ("cloud_comment_created.json", "event comment_created is not triaged"),
        ("server_comment_created.json", "event comment_created is not triaged"),
    ],
)
def test_fixture_routing(fixture: str, reason: str | None) -> None:
    event = load_event(fixture)

    assert should_triage(event, service_account=BOT, projects=["SHOP"]) == reason


def test_triaged_events() -> None:
    assert frozenset({"jira:issue_created", "jira:issue_updated"}) == TRIAGED_EVENTS


# --------------------------------------------------------------------------------------------
# Real deliveries from elsewhere (JIRA_PAYLOADS_DIR), when a folder of them is at hand


REAL_FILES = sorted(REAL_PAYLOADS.glob("*.json")) if REAL_PAYLOADS.is_dir() else []


@pytest.mark.skipif(not REAL_FILES, reason="JIRA_PAYLOADS_DIR names no folder of deliveries")
@pytest.mark.parametrize("path", REAL_FILES, ids=[p.name for p in REAL_FILES])
def test_real_delivery_parses(path: Path) -> None:
    event = parse_event(decode_body(path.read_bytes()))

    if event.is_issue_event:
        assert event.issue is not None
        issue = issue_from_json(event.issue, impact_field_id="customfield_10042")
        assert isinstance(issue, Issue)
        assert (issue.key, issue.project) == (event.issue_key, event.project_key)
