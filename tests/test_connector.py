"""JiraConnector against `responses`: one fixture per endpoint, every expected request must be
made, bodies and queries matched exactly, and the network is never reached."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import responses
from jira import JIRAError
from responses import matchers

from connector import errors
from connector.client import (
    ImpactField,
    JiraConnector,
    find_field,
)
from connector.edits import edit_body
from connector.pace import Pace
from connector.protocol import Call
from impact.decide import ASK_MARKER
from impact.model import FieldRef, ImpactClass, Person, Plan, Source

CLOUD = "https://acme.atlassian.test"
DC = "https://jira.corp.test/jira"  # Data Center under a context path
API = "/rest/api/2"
EMAIL, API_TOKEN, PAT = "bot@acme.test", "cloud-token-abc", "dc-pat-xyz"
BASIC = "Basic " + base64.b64encode(f"{EMAIL}:{API_TOKEN}".encode()).decode()
BEARER = f"Bearer {PAT}"

FIELD_NAME = "External customer impact"
FIELD_ID = "customfield_10042"
OPTION_SCHEMA = {
    "type": "option",
    "custom": "com.atlassian.jira.plugin.system.customfieldtypes:select",
}
FIELDS = [
    {"id": "summary", "name": "Summary", "custom": False, "schema": {"type": "string"}},
    {"id": "labels", "name": "Labels", "custom": False, "schema": {"type": "array"}},
    {"id": FIELD_ID, "name": FIELD_NAME, "custom": True, "schema": OPTION_SCHEMA},
]
ISSUE = {"id": "10001", "key": "SHOP-1", "fields": {"summary": "Checkout fails", "labels": []}}

Responder = Callable[..., responses.BaseResponse]


def authorization(expected: str) -> Callable[[requests.PreparedRequest], tuple[bool, str]]:
    """Matches the Authorization header whatever its case (the library sends it lowercase)."""

    def match(request: requests.PreparedRequest) -> tuple[bool, str]:
        sent = request.headers.get("Authorization")
        return sent == expected, f"Authorization {sent!r} is not {expected!r}"

    return match


def plan(**changes: Any) -> Plan:
    base: dict[str, Any] = {
        "issue_key": "SHOP-1",
        "level": "blocking",
        "source": Source.FIELD,
        "impact_class": ImpactClass.EXTERNAL,
        "score": 100,
    }
    return Plan(**(base | changes))


# ---- fixtures: one per endpoint


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def cloud_server_info(mocked: responses.RequestsMock) -> responses.BaseResponse:
    return mocked.get(
        f"{CLOUD}{API}/serverInfo",
        json={"deploymentType": "Cloud", "versionNumbers": [1001, 0, 0], "baseUrl": CLOUD},
        match=[authorization(BASIC)],
    )


@pytest.fixture
def dc_server_info(mocked: responses.RequestsMock) -> responses.BaseResponse:
    return mocked.get(
        f"{DC}{API}/serverInfo",
        json={"deploymentType": "DataCenter", "versionNumbers": [9, 12, 0], "baseUrl": DC},
        match=[authorization(BEARER)],
    )


@pytest.fixture
def fields(mocked: responses.RequestsMock) -> Callable[[list[dict[str, Any]]], Any]:
    def respond(answer: list[dict[str, Any]] = FIELDS) -> responses.BaseResponse:
        return mocked.get(f"{CLOUD}{API}/field", json=answer)

    return respond


@pytest.fixture
def cloud_myself(mocked: responses.RequestsMock) -> responses.BaseResponse:
    return mocked.get(
        f"{CLOUD}{API}/myself",
        json={"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Impact bot"},
    )


@pytest.fixture
def dc_myself(mocked: responses.RequestsMock) -> responses.BaseResponse:
    return mocked.get(
        f"{DC}{API}/myself",
        json={"name": "impact-bot", "key": "JIRAUSER10100", "displayName": "Impact bot"},
        match=[authorization(BEARER)],
    )


@pytest.fixture
def issue(mocked: responses.RequestsMock) -> responses.BaseResponse:
    return mocked.get(
        f"{CLOUD}{API}/issue/SHOP-1", json=ISSUE, match=[matchers.query_param_matcher({})]
    )


@pytest.fixture
def edit(mocked: responses.RequestsMock) -> Responder:
    """Expect the one edit, with exactly this body and query; answer as given."""

    def respond(
        expect: dict[str, Any] | None = None,
        *,
        query: dict[str, str] | None = None,
        status: int = 204,
        **answer: Any,
    ) -> responses.BaseResponse:
        match = [matchers.query_param_matcher({"notifyUsers": "false"} if query is None else query)]
        if expect is not None:
            match.append(matchers.json_params_matcher(expect))
        return mocked.put(f"{CLOUD}{API}/issue/SHOP-1", status=status, match=match, **answer)

    return respond


@pytest.fixture
def comment(mocked: responses.RequestsMock) -> Responder:
    def respond(text: str) -> responses.BaseResponse:
        return mocked.post(
            f"{CLOUD}{API}/issue/SHOP-1/comment",
            status=201,
            json={"id": "10500", "body": text},
            match=[matchers.json_params_matcher({"body": text})],
        )

    return respond


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library retries by sleeping; the connector must never get there."""

    def refuse(seconds: float) -> None:
        raise AssertionError(f"the connector slept {seconds}s")

    monkeypatch.setattr("jira.resilientsession.time.sleep", refuse)


def cloud(**kw: Any) -> JiraConnector:
    kw.setdefault("field", FieldRef(name=FIELD_NAME))
    return JiraConnector(CLOUD, email=EMAIL, api_token=API_TOKEN, **kw)


def data_center(**kw: Any) -> JiraConnector:
    return JiraConnector(DC, field=FieldRef(name=FIELD_NAME), pat=PAT, **kw)


# ---- construction and auth


def test_nothing_is_sent_until_first_use(mocked: responses.RequestsMock) -> None:
    connector = cloud()
    assert connector.apply_plan(plan()) == ()  # an empty plan makes no call
    assert len(mocked.calls) == 0
    assert connector.calls == []


def test_cloud_authenticates_with_email_and_api_token(
    cloud_server_info: responses.BaseResponse, cloud_myself: responses.BaseResponse
) -> None:
    connector = cloud()
    me = connector.service_account()
    assert me == Person(account_id="5b10ac8d82e05b22cc7d4ef5", display_name="Impact bot")
    assert connector.service_account() is me  # fetched once
    assert (cloud_server_info.call_count, cloud_myself.call_count) == (1, 1)


def test_data_center_authenticates_with_bearer_pat_and_records_paths_without_context(
    dc_server_info: responses.BaseResponse, dc_myself: responses.BaseResponse
) -> None:
    connector = data_center()
    me = connector.service_account()
    assert (me.name, me.key, me.account_id) == ("impact-bot", "JIRAUSER10100", None)
    assert [(c.method, c.path, c.status) for c in connector.calls] == [
        ("GET", f"{API}/serverInfo", 200),
        ("GET", f"{API}/myself", 200),
    ]


@pytest.mark.parametrize(
    ("kw", "problem"),
    [
        ({"email": EMAIL}, "Jira needs email"),
        ({"api_token": API_TOKEN}, "Jira needs email"),
        ({}, "Jira needs email"),
        ({"email": EMAIL, "api_token": API_TOKEN, "pat": PAT}, "not both"),
        ({"pat": PAT, "timeout": 0}, "timeout"),
    ],
)
def test_constructor_refuses_unusable_credentials(kw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        JiraConnector(CLOUD, field=FieldRef(name=FIELD_NAME), **kw)
    assert API_TOKEN not in str(caught.value) and PAT not in str(caught.value)


@pytest.mark.parametrize("url", ["acme.atlassian.test", "ftp://acme.test", "https://u:p@acme.test"])
def test_constructor_refuses_bad_urls(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        JiraConnector(url, field=FieldRef(name=FIELD_NAME), pat=PAT)


def test_repr_shows_url_and_auth_kind_but_no_secret() -> None:
    assert repr(cloud()) == f"JiraConnector(url='{CLOUD}', auth='basic')"
    assert repr(data_center()) == f"JiraConnector(url='{DC}', auth='pat')"
    assert API_TOKEN not in repr(cloud()) and PAT not in repr(data_center())


# ---- the impact field


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (FieldRef(name=FIELD_NAME), FIELD_ID),
        (FieldRef(id=FIELD_ID), FIELD_ID),
        (FieldRef(name="Customer impact (old)"), None),
        (FieldRef(id="customfield_99999"), None),
    ],
)
def test_field_is_found_by_name_or_id_with_one_request(
    cloud_server_info: responses.BaseResponse,
    fields: Callable[..., responses.BaseResponse],
    ref: FieldRef,
    expected: str | None,
) -> None:
    field_list = fields()
    connector = cloud(field=ref)
    assert connector.field_id() == expected
    assert connector.field_id() == expected
    assert field_list.call_count == 1


def test_a_shared_field_name_prefers_the_custom_field() -> None:
    system = {"id": "environment", "name": FIELD_NAME, "custom": False}
    assert find_field([system, *FIELDS], FieldRef(name=FIELD_NAME)) == ImpactField(FIELD_ID)


def test_an_ambiguous_field_name_names_the_ids_to_choose_from() -> None:
    twin = {"id": "customfield_10077", "name": FIELD_NAME, "custom": True}
    with pytest.raises(errors.JiraError, match="customfield_10042, customfield_10077"):
        find_field([*FIELDS, twin], FieldRef(name=FIELD_NAME))


# ---- reading


def test_get_issue_returns_jira_json(
    cloud_server_info: responses.BaseResponse, issue: responses.BaseResponse
) -> None:
    assert cloud().get_issue("SHOP-1") == ISSUE


def test_get_issue_refuses_a_key_that_would_bend_the_path(mocked: responses.RequestsMock) -> None:
    with pytest.raises(errors.JiraError, match="not an issue key"):
        cloud().get_issue("../../myself")


def test_user_groups_on_cloud_ask_by_account_id(
    cloud_server_info: responses.BaseResponse, mocked: responses.RequestsMock
) -> None:
    mocked.get(
        f"{CLOUD}{API}/user/groups",
        json=[{"name": "customers-support", "groupId": "g1"}, {"name": "staff", "groupId": "g2"}],
        match=[matchers.query_param_matcher({"accountId": "acc-1"})],
    )
    assert cloud().user_groups(Person(account_id="acc-1")) == ("customers-support", "staff")


def test_user_groups_on_data_center_ask_by_username(
    dc_server_info: responses.BaseResponse, mocked: responses.RequestsMock
) -> None:
    mocked.get(
        f"{DC}{API}/user",
        json={"name": "j.doe+x", "groups": {"size": 1, "items": [{"name": "jira-users"}]}},
        match=[matchers.query_param_matcher({"username": "j.doe+x", "expand": "groups"})],
    )
    assert data_center().user_groups(Person(name="j.doe+x")) == ("jira-users",)


# ---- writing


@pytest.mark.parametrize(
    ("changes", "body"),
    [
        (
            {
                "add_labels": ("customer-impact-blocking",),
                "remove_labels": ("needs-customer-impact",),
            },
            {
                "update": {
                    "labels": [
                        {"add": "customer-impact-blocking"},
                        {"remove": "needs-customer-impact"},
                    ]
                }
            },
        ),
        ({"priority": "Highest"}, {"fields": {"priority": {"name": "Highest"}}}),
        (
            {"add_labels": ("customer-impact-inferred",), "priority": "High"},
            {
                "update": {"labels": [{"add": "customer-impact-inferred"}]},
                "fields": {"priority": {"name": "High"}},
            },
        ),
    ],
)
def test_a_plan_is_one_edit_with_exactly_the_parts_it_needs(
    cloud_server_info: responses.BaseResponse,
    edit: Responder,
    changes: dict[str, Any],
    body: dict[str, Any],
) -> None:
    expected = edit(body)
    connector = cloud()
    made = connector.apply_plan(plan(**changes))
    assert expected.call_count == 1
    assert [str(c) for c in made] == [
        f"GET {API}/serverInfo -> 200",
        f"PUT {API}/issue/SHOP-1 -> 204",
    ]


def test_an_inferred_value_is_written_to_the_field_found_by_name(
    cloud_server_info: responses.BaseResponse,
    fields: Callable[..., responses.BaseResponse],
    edit: Responder,
) -> None:
    fields()
    edit({"fields": {FIELD_ID: {"value": "Blocks paying customers"}}})
    cloud().apply_plan(plan(field_value="Blocks paying customers", source=Source.RULE))


def test_a_multi_select_field_gets_a_list_of_options() -> None:
    body = edit_body(plan(field_value="Blocks"), field_id=FIELD_ID, multi_select=True)
    assert body == {"fields": {FIELD_ID: [{"value": "Blocks"}]}}


def test_no_value_is_written_when_the_field_is_absent(
    cloud_server_info: responses.BaseResponse,
    fields: Callable[..., responses.BaseResponse],
    mocked: responses.RequestsMock,
) -> None:
    fields([f for f in FIELDS if f["id"] != FIELD_ID])
    made = cloud().apply_plan(plan(field_value="Blocks paying customers"))
    assert [c.path for c in made] == [f"{API}/serverInfo", f"{API}/field"]


def test_users_are_notified_only_when_configured(
    cloud_server_info: responses.BaseResponse, edit: Responder
) -> None:
    edit({"fields": {"priority": {"name": "Highest"}}}, query={})
    cloud(notify_users=True).apply_plan(plan(priority="Highest"))


BOT_ID = "5b10ac8d82e05b22cc7d4ef5"


def existing_comments(mocked: responses.RequestsMock, *comments: dict[str, Any]) -> None:
    mocked.get(
        f"{CLOUD}{API}/issue/SHOP-1/comment",
        json={"startAt": 0, "maxResults": 100, "total": len(comments), "comments": list(comments)},
        match=[matchers.query_param_matcher({"orderBy": "-created", "maxResults": "100"})],
    )


ASK = f"Please set *External customer impact*.\n\n_({ASK_MARKER})_"


def test_the_ask_is_posted_before_the_edit_after_checking_it_was_not_made(
    mocked: responses.RequestsMock,
    cloud_server_info: responses.BaseResponse,
    cloud_myself: responses.BaseResponse,
    edit: Responder,
    comment: Responder,
) -> None:
    # A person quoting the marker does not count: only the service account's own ask does.
    existing_comments(mocked, {"body": ASK, "author": {"accountId": "someone-else"}})
    comment(ASK)
    edit({"update": {"labels": [{"add": "needs-customer-impact"}]}})
    connector = cloud()
    made = connector.apply_plan(
        plan(level=None, add_labels=("needs-customer-impact",), comment=ASK)
    )
    assert [(c.method, c.path, c.status) for c in made] == [
        ("GET", f"{API}/serverInfo", 200),
        ("GET", f"{API}/myself", 200),
        ("GET", f"{API}/issue/SHOP-1/comment", 200),
        ("POST", f"{API}/issue/SHOP-1/comment", 201),
        ("PUT", f"{API}/issue/SHOP-1", 204),
    ]
    assert connector.take_calls() == made
    assert connector.take_calls() == ()


def test_the_ask_is_never_posted_twice(
    mocked: responses.RequestsMock,
    cloud_server_info: responses.BaseResponse,
    cloud_myself: responses.BaseResponse,
    edit: Responder,
) -> None:
    # A retry after the ask went out but the edit failed: the edit is made, the ask is not.
    existing_comments(mocked, {"body": ASK, "author": {"accountId": BOT_ID}})
    edit({"update": {"labels": [{"add": "needs-customer-impact"}]}})
    made = cloud().apply_plan(plan(level=None, add_labels=("needs-customer-impact",), comment=ASK))
    assert ("POST", f"{API}/issue/SHOP-1/comment") not in [(c.method, c.path) for c in made]


# ---- failures


@pytest.mark.parametrize(
    ("status", "answer", "kind", "said"),
    [
        (
            400,
            {"json": {"errorMessages": [], "errors": {"labels": "Field 'labels' cannot be set."}}},
            errors.JiraBadRequestError,
            ("labels: Field 'labels' cannot be set.",),
        ),
        (
            422,
            {"json": {"errorMessages": ["Unprocessable"]}},
            errors.JiraBadRequestError,
            ("Unprocessable",),
        ),
        (401, {"body": ""}, errors.JiraAuthError, ()),
        (
            403,
            {
                "json": {"errorMessages": ["No permission"]},
                "headers": {"X-Authentication-Denied-Reason": "CAPTCHA_CHALLENGE"},
            },
            errors.JiraForbiddenError,
            ("CAPTCHA_CHALLENGE", "No permission"),
        ),
        (
            404,
            {"json": {"errorMessages": ["Issue does not exist"], "errors": {}}},
            errors.JiraNotFoundError,
            ("Issue does not exist",),
        ),
        (409, {"json": {"errorMessages": ["Conflict"]}}, errors.JiraConflictError, ("Conflict",)),
        (429, {"body": "", "headers": {"Retry-After": "30"}}, errors.JiraRateLimitError, ()),
        (
            503,
            {"json": {"message": "Down for upgrade"}, "headers": {"Retry-After": "120"}},
            errors.JiraServerError,
            ("Down for upgrade",),
        ),
        (
            502,
            {"body": "<html><body>Bad   gateway</body></html>"},
            errors.JiraServerError,
            ("<html><body>Bad gateway</body></html>",),
        ),
        (
            413,
            {"json": {"errorMessages": ["Too many comments"]}},
            errors.JiraError,
            ("Too many comments",),
        ),
    ],
)
def test_each_status_maps_to_its_error_with_jiras_words_and_no_retry(
    cloud_server_info: responses.BaseResponse,
    edit: Responder,
    no_sleep: None,
    status: int,
    answer: dict[str, Any],
    kind: type[errors.JiraError],
    said: tuple[str, ...],
) -> None:
    sent = edit(status=status, **answer)
    connector = cloud()
    with pytest.raises(errors.JiraError) as caught:
        connector.apply_plan(plan(priority="Highest"))
    error = caught.value
    assert type(error) is kind
    assert (error.status, error.messages) == (status, said)
    assert (error.method, error.path) == ("PUT", f"{API}/issue/SHOP-1")
    assert str(error).startswith(f"PUT {API}/issue/SHOP-1: Jira answered {status}")
    assert isinstance(error.__cause__, JIRAError)
    assert sent.call_count == 1  # the library did not retry
    assert connector.calls[-1] == Call("PUT", f"{API}/issue/SHOP-1", status, connector.calls[-1].ms)


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (429, "30", 30.0),
        (429, None, None),
        (429, "Wed, 21 Oct 2015 07:28:00 GMT", None),
        (503, "5", 5.0),
        (500, None, None),
    ],
)
def test_retry_after_is_read_in_seconds(
    cloud_server_info: responses.BaseResponse,
    edit: Responder,
    no_sleep: None,
    status: int,
    header: str | None,
    expected: float | None,
) -> None:
    edit(status=status, headers={"Retry-After": header} if header else {})
    with pytest.raises((errors.JiraRateLimitError, errors.JiraServerError)) as caught:
        cloud().apply_plan(plan(priority="Highest"))
    assert caught.value.retry_after == expected
    assert caught.value.retryable


@pytest.mark.parametrize(
    "failure",
    [requests.ConnectionError("connection refused"), requests.ReadTimeout("read timed out")],
)
def test_no_answer_is_unavailable_and_recorded(
    cloud_server_info: responses.BaseResponse,
    mocked: responses.RequestsMock,
    no_sleep: None,
    failure: Exception,
) -> None:
    mocked.get(f"{CLOUD}{API}/myself", body=failure)
    connector = cloud()
    with pytest.raises(errors.JiraUnavailableError) as caught:
        connector.service_account()
    assert caught.value.retryable and caught.value.status is None
    assert caught.value.__cause__ is failure
    assert connector.calls[-1].path == f"{API}/myself"
    assert connector.calls[-1].status is None


def test_an_unreachable_jira_fails_the_first_use_and_is_tried_again_next_time(
    mocked: responses.RequestsMock, no_sleep: None
) -> None:
    mocked.get(f"{CLOUD}{API}/serverInfo", body=requests.ConnectionError("no route to host"))
    connector = cloud()
    for _ in range(2):
        with pytest.raises(errors.JiraUnavailableError, match=f"GET {API}/serverInfo"):
            connector.field_id()
    assert [str(c) for c in connector.calls] == [f"GET {API}/serverInfo -> no answer"] * 2


def test_a_url_that_is_not_jira_says_so(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{CLOUD}{API}/serverInfo", body="<html>Sign in</html>", content_type="text/html")
    with pytest.raises(errors.JiraError, match="not JSON"):
        cloud().service_account()


def test_a_certificate_failure_is_not_worth_retrying(
    mocked: responses.RequestsMock, no_sleep: None
) -> None:
    mocked.get(f"{CLOUD}{API}/serverInfo", body=requests.exceptions.SSLError("bad certificate"))
    with pytest.raises(errors.JiraError, match="TLS") as caught:
        cloud().service_account()
    assert not caught.value.retryable


def test_a_person_without_the_needed_id_has_no_groups_and_costs_no_lookup(
    cloud_server_info: responses.BaseResponse,
) -> None:
    connector = cloud()
    assert connector.user_groups(Person(name="legacy-name")) == ()
    assert [c.path for c in connector.calls] == [f"{API}/serverInfo"]


def test_the_ask_is_posted_without_looking_when_nothing_could_have_asked_yet(
    cloud_server_info: responses.BaseResponse, edit: Responder, comment: Responder
) -> None:
    comment(ASK)
    edit({"update": {"labels": [{"add": "needs-customer-impact"}]}})
    made = cloud().apply_plan(
        plan(level=None, add_labels=("needs-customer-impact",), comment=ASK),
        may_have_asked=False,
    )
    assert [(c.method, c.path) for c in made] == [
        ("GET", f"{API}/serverInfo"),  # no GET myself, no GET comment
        ("POST", f"{API}/issue/SHOP-1/comment"),
        ("PUT", f"{API}/issue/SHOP-1"),
    ]


# ---- keeping to a pace: 429s are waited out, within bounds


def rate_limited(edit: Responder, *waits: int, reason: str = "jira-burst-based") -> None:
    """The edit answered 429 once per wait given (``Retry-After`` seconds), then 204."""
    for wait in waits:
        headers = {"Retry-After": str(wait), "RateLimit-Reason": reason}
        edit(status=429, headers=headers, json={"errorMessages": ["Rate limit exceeded."]})
    edit()


class Waits:
    """The connector's sleeps, recorded; they move the pace's clock on instead of waiting (the
    clock otherwise runs as time does, so the pace's own short spacing passes by itself)."""

    def __init__(self) -> None:
        self.ahead = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return time.monotonic() + self.ahead

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.ahead += seconds

    def pace(self) -> Pace:
        return Pace(max_in_flight=2, rate=1000.0, clock=self.clock)


def paced(waits: Waits, pace: Pace | None = None) -> JiraConnector:
    return cloud(pace=pace or waits.pace(), sleep=waits.sleep)


def test_with_a_pace_a_429_is_sent_again_after_retry_after_and_the_pace_slows(
    cloud_server_info: responses.BaseResponse, edit: Responder
) -> None:
    rate_limited(edit, 2)
    waits = Waits()
    pace = waits.pace()
    connector = paced(waits, pace)
    made = connector.apply_plan(plan(priority="Highest"))
    assert [(c.method, c.status) for c in made] == [("GET", 200), ("PUT", 429), ("PUT", 204)]
    assert waits.slept == [2.0]
    assert pace.rate < 1000.0  # every call of the process goes slower for a while


def test_a_429_for_one_issues_writes_waits_without_slowing_the_pace(
    cloud_server_info: responses.BaseResponse, edit: Responder
) -> None:
    rate_limited(edit, 1, reason="jira-per-issue-on-write")
    waits = Waits()
    pace = waits.pace()
    paced(waits, pace).apply_plan(plan(priority="Highest"))
    assert waits.slept == [1.0] and pace.rate == 1000.0


def test_a_call_rate_limited_too_often_is_raised_for_the_queue_to_retry(
    cloud_server_info: responses.BaseResponse, edit: Responder
) -> None:
    for _ in range(5):  # the README: a call is sent up to 5 times in all while Jira answers 429
        edit(status=429, headers={"Retry-After": "1"})
    waits = Waits()
    with pytest.raises(errors.JiraRateLimitError):
        paced(waits).apply_plan(plan(priority="Highest"))
    assert waits.slept == [1.0] * 4


@pytest.mark.parametrize(
    ("waits", "slept", "answered"),
    [((30, 30), [30.0, 30.0], True), ((30, 31), [30.0], False)],
)
def test_a_call_waits_no_more_than_60_s_in_all_for_the_rate_limit(
    cloud_server_info: responses.BaseResponse,
    edit: Responder,
    waits: tuple[int, ...],
    slept: list[float],
    answered: bool,
) -> None:
    """The README: "waiting no more than 60 s in all", then the queue retries the delivery:
    30 s and 30 s, and the third send is answered; 30 s, and a wait of 31 would pass 60."""
    for wait in waits:
        edit(status=429, headers={"Retry-After": str(wait)})
    recorded = Waits()
    if answered:
        edit()
        paced(recorded).apply_plan(plan(priority="Highest"))
    else:
        with pytest.raises(errors.JiraRateLimitError) as caught:
            paced(recorded).apply_plan(plan(priority="Highest"))
        assert caught.value.retry_after == waits[-1]
    assert recorded.slept == slept


def test_inside_a_time_limit_a_retry_after_past_it_is_raised_not_waited(
    cloud_server_info: responses.BaseResponse, edit: Responder
) -> None:
    for _ in range(3):
        edit(status=429, headers={"Retry-After": "2", "RateLimit-Reason": "jira-burst-based"})
    waits = Waits()
    connector = cloud(pace=waits.pace(), sleep=waits.sleep, clock=waits.clock)
    with pytest.raises(errors.JiraRateLimitError) as caught, connector.time_limit(5.0):
        connector.apply_plan(plan(priority="Highest"))
    assert waits.slept == [2.0, 2.0]  # a third wait of 2 s would end past the 5 s
    assert caught.value.retry_after == 2  # for the queue's retry to honour


def test_inside_a_time_limit_no_call_is_sent_when_the_pace_is_paused_past_it(
    cloud_server_info: responses.BaseResponse,
) -> None:
    waits = Waits()
    pace = waits.pace()
    connector = cloud(pace=pace, sleep=waits.sleep, clock=waits.clock)
    connector.is_cloud()
    pace.refused(8.0, "jira-burst-based")  # another thread was told to wait 8 s
    refused = pytest.raises(errors.JiraRateLimitError, match="not sent")
    with refused as caught, connector.time_limit(3):
        connector.apply_plan(plan(priority="Highest"))
    assert caught.value.retry_after == pytest.approx(8.0, abs=0.5)  # the queue retries after it
    assert [c.method for c in connector.take_calls()] == ["GET"]  # serverInfo only
    assert waits.slept == []


def test_inside_a_time_limit_nested_limits_keep_the_shorter(
    cloud_server_info: responses.BaseResponse,
) -> None:
    waits = Waits()
    connector = cloud(clock=waits.clock)
    with connector.time_limit(1.0), connector.time_limit(60.0):
        connector.is_cloud()
        waits.ahead += 2.0  # the outer limit has run out
        with pytest.raises(errors.JiraUnavailableError, match="time limit"):
            connector.apply_plan(plan(priority="Highest"))
