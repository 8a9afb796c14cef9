"""The connector's board methods against `responses`: one fixture per endpoint, exact queries and
bodies (``rankCustomFieldId`` included), every expected request made, the network never reached.
Plus the pure helpers: the "ordered by Rank" check and the retry of a 207's failed issues."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import responses
from hypothesis import given
from hypothesis import strategies as st
from responses import matchers

from connector import errors
from connector.boards import (
    RANK_PATH,
    failed_entries,
    order_by_keys,
    orders_by_rank,
    retry_calls,
)
from connector.client import JiraConnector
from connector.protocol import BoardEntry, BoardSetup
from impact.config import load_config
from impact.model import FieldRef
from impact.ranking import RankCall, apply_calls
from pipeline.ranking import RankRefusedError, plan_board
from tests.conftest import ROOT

CLOUD = "https://acme.atlassian.test"
DC = "https://jira.corp.test/jira"
AGILE = "/rest/agile/1.0"
API = "/rest/api/2"
RANK_FIELD = 10019
RANKED_JQL = "project = SHOP ORDER BY Rank ASC"
BUSY = "JIRA Agile cannot execute the rank operation at this time. Please try again later."

Responder = Callable[..., responses.BaseResponse]


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def server_info(mocked: responses.RequestsMock) -> responses.BaseResponse:
    return mocked.get(
        f"{CLOUD}{API}/serverInfo",
        json={"deploymentType": "Cloud", "versionNumbers": [1001, 0, 0], "baseUrl": CLOUD},
    )


@pytest.fixture
def configuration(mocked: responses.RequestsMock) -> responses.BaseResponse:
    return mocked.get(
        f"{CLOUD}{AGILE}/board/12/configuration",
        json={
            "id": 12,
            "name": "SHOP board",
            "filter": {"id": "10040", "self": f"{CLOUD}{API}/filter/10040"},
            "ranking": {"rankCustomFieldId": RANK_FIELD},
        },
    )


@pytest.fixture
def saved_filter(mocked: responses.RequestsMock) -> Responder:
    def respond(jql: str = RANKED_JQL) -> responses.BaseResponse:
        return mocked.get(f"{CLOUD}{API}/filter/10040", json={"id": "10040", "jql": jql})

    return respond


@pytest.fixture
def board_page(mocked: responses.RequestsMock) -> Responder:
    """Expect one page of the board's issues with exactly this query; answer with these keys."""

    def respond(
        jql: str, start: int, size: int, keys: list[str], total: int
    ) -> responses.BaseResponse:
        query = {"jql": jql, "fields": "labels", "startAt": str(start), "maxResults": str(size)}
        issues = [{"key": key, "fields": {"labels": [f"l-{key}"]}} for key in keys]
        return mocked.get(
            f"{CLOUD}{AGILE}/board/12/issue",
            json={"startAt": start, "maxResults": size, "total": total, "issues": issues},
            match=[matchers.query_param_matcher(query)],
        )

    return respond


@pytest.fixture
def rank(mocked: responses.RequestsMock) -> Responder:
    """Expect one rank call with exactly this body; answer 204, or 207 with entries."""

    def respond(body: dict[str, Any], *, failed: tuple[str, ...] = ()) -> responses.BaseResponse:
        match = [matchers.json_params_matcher(body)]
        if not failed:
            return mocked.put(f"{CLOUD}{RANK_PATH}", status=204, match=match)
        entries = [
            {"issueId": 10000 + n, "issueKey": key, "status": 503, "errors": [BUSY]}
            if key in failed
            else {"issueId": 10000 + n, "issueKey": key, "status": 200}
            for n, key in enumerate(body["issues"])
        ]
        return mocked.put(f"{CLOUD}{RANK_PATH}", status=207, json={"entries": entries}, match=match)

    return respond


def cloud() -> JiraConnector:
    return JiraConnector(
        CLOUD, field=FieldRef(name="Impact"), email="bot@acme.test", api_token="token"
    )


# ---- board configuration and filter


def test_board_setup_reads_the_rank_field_and_filter_once(
    server_info: responses.BaseResponse,
    configuration: responses.BaseResponse,
    saved_filter: Responder,
) -> None:
    filter_read = saved_filter()
    connector = cloud()
    setup = connector.board_setup(12)
    assert setup == BoardSetup(
        12, RANK_FIELD, "10040", RANKED_JQL, ordered_by_rank=True, name="SHOP board"
    )
    assert connector.board_setup(12) is setup  # kept: no second request
    assert (configuration.call_count, filter_read.call_count) == (1, 1)


def test_board_setup_tells_a_filter_not_ordered_by_rank(
    server_info: responses.BaseResponse,
    configuration: responses.BaseResponse,
    saved_filter: Responder,
) -> None:
    saved_filter("project = SHOP ORDER BY created DESC")
    assert cloud().board_setup(12).ordered_by_rank is False


@pytest.mark.parametrize(
    ("jql", "ordered"),
    [
        ("project = SHOP ORDER BY Rank ASC", True),
        ("project = SHOP order by rank", True),
        ('project = SHOP ORDER BY "Rank" asc, created DESC', True),
        ("project = SHOP ORDER BY cf[10019]", True),
        ("project = SHOP ORDER BY cf[10020]", False),
        ("project = SHOP ORDER BY Rank DESC", False),
        ("project = SHOP ORDER BY priority DESC, Rank ASC", False),
        ("project = SHOP", False),
        ('summary ~ "order by rank"', False),
        ('summary ~ "x, order by rank" ORDER BY created', False),
    ],
)
def test_a_board_filter_must_be_ordered_by_rank_first(jql: str, ordered: bool) -> None:
    assert orders_by_rank(jql, RANK_FIELD) is ordered


def test_order_by_keys_reads_fields_and_directions() -> None:
    jql = 'labels = "a,b" ORDER BY "Story Points" DESC, key'
    assert order_by_keys(jql) == (("story points", "desc"), ("key", "asc"))


# ---- the board's issues


def test_board_issues_follow_the_pages_jira_gives(
    server_info: responses.BaseResponse, board_page: Responder
) -> None:
    jql = "statusCategory != Done ORDER BY Rank ASC"
    # Jira may cap a page below what was asked: paging follows what came back.
    board_page(jql, 0, 500, ["SHOP-1", "SHOP-2"], total=5)
    board_page(jql, 2, 500, ["SHOP-3", "SHOP-4"], total=5)
    board_page(jql, 4, 500, ["SHOP-5"], total=5)
    found = cloud().board_issues(12, jql=jql)
    assert [e.key for e in found] == ["SHOP-1", "SHOP-2", "SHOP-3", "SHOP-4", "SHOP-5"]
    assert found[0] == BoardEntry("SHOP-1", ("l-SHOP-1",))


def test_board_issues_ask_for_no_more_than_the_limit(
    server_info: responses.BaseResponse, board_page: Responder
) -> None:
    jql = 'key = "SHOP-9" ORDER BY Rank DESC'
    board_page(jql, 0, 2, ["SHOP-9", "SHOP-3"], total=40)
    assert [e.key for e in cloud().board_issues(12, jql=jql, limit=2)] == ["SHOP-9", "SHOP-3"]


def test_board_issues_stop_on_an_empty_page(
    server_info: responses.BaseResponse, board_page: Responder
) -> None:
    board_page("x = 1", 0, 500, [], total=3)  # total says more, the page says none: stop
    assert cloud().board_issues(12, jql="x = 1") == ()


# ---- permission


@pytest.mark.parametrize("held", [True, False])
def test_schedule_permission_is_asked_for_the_project(
    server_info: responses.BaseResponse, mocked: responses.RequestsMock, held: bool
) -> None:
    mocked.get(
        f"{CLOUD}{API}/mypermissions",
        json={
            "permissions": {"SCHEDULE_ISSUES": {"key": "SCHEDULE_ISSUES", "havePermission": held}}
        },
        match=[
            matchers.query_param_matcher({"projectKey": "SHOP", "permissions": "SCHEDULE_ISSUES"})
        ],
    )
    assert cloud().can_schedule("SHOP") is held


# ---- ranking


def test_a_rank_call_carries_the_boards_rank_field(
    server_info: responses.BaseResponse,
    configuration: responses.BaseResponse,
    saved_filter: Responder,
    rank: Responder,
) -> None:
    saved_filter()
    rank({"issues": ["SHOP-7", "SHOP-3"], "rankAfterIssue": "SHOP-1", "rankCustomFieldId": 10019})
    made = cloud().rank_issues(12, RankCall(("SHOP-7", "SHOP-3"), after="SHOP-1"))
    assert [str(c) for c in made] == [
        f"GET {API}/serverInfo -> 200",
        f"GET {AGILE}/board/12/configuration -> 200",
        f"GET {API}/filter/10040 -> 200",
        f"PUT {RANK_PATH} -> 204",
    ]


def test_a_207_is_retried_once_for_the_failed_issues_only(
    server_info: responses.BaseResponse,
    configuration: responses.BaseResponse,
    saved_filter: Responder,
    rank: Responder,
) -> None:
    saved_filter()
    first = rank(
        {
            "issues": ["A-1", "A-2", "A-3", "A-4"],
            "rankBeforeIssue": "A-9",
            "rankCustomFieldId": 10019,
        },
        failed=("A-2",),
    )
    # A-2 belongs before A-3, which moved: it goes there, alone.
    retry = rank({"issues": ["A-2"], "rankBeforeIssue": "A-3", "rankCustomFieldId": 10019})
    made = cloud().rank_issues(12, RankCall(("A-1", "A-2", "A-3", "A-4"), before="A-9"))
    assert [c.status for c in made if c.path == RANK_PATH] == [207, 204]
    assert (first.call_count, retry.call_count) == (1, 1)


def test_what_still_fails_after_the_retry_is_reported(
    server_info: responses.BaseResponse,
    configuration: responses.BaseResponse,
    saved_filter: Responder,
    rank: Responder,
) -> None:
    saved_filter()
    body = {"issues": ["A-1", "A-2", "A-3"], "rankAfterIssue": "A-0", "rankCustomFieldId": 10019}
    rank(body, failed=("A-1", "A-3"))
    rank({"issues": ["A-1"], "rankAfterIssue": "A-0", "rankCustomFieldId": 10019})
    rank({"issues": ["A-3"], "rankAfterIssue": "A-2", "rankCustomFieldId": 10019}, failed=("A-3",))
    with pytest.raises(errors.RankPartialError) as caught:
        cloud().rank_issues(12, RankCall(("A-1", "A-2", "A-3"), after="A-0"))
    assert caught.value.failed == {"A-3": BUSY}
    assert "1 of 3 issues could not be ranked after A-0, even on a retry: A-3" in str(caught.value)
    assert caught.value.retryable


def test_a_403_names_the_schedule_issues_permission(
    server_info: responses.BaseResponse,
    configuration: responses.BaseResponse,
    saved_filter: Responder,
    mocked: responses.RequestsMock,
) -> None:
    saved_filter()
    said = "You do not have the permission to rank issues."
    mocked.put(f"{CLOUD}{RANK_PATH}", status=403, json={"errorMessages": [said], "errors": {}})
    with pytest.raises(errors.JiraForbiddenError) as caught:
        cloud().rank_issues(12, RankCall(("A-1",), after="A-0"))
    assert "grant it the Schedule issues permission" in str(caught.value)
    assert caught.value.messages == (said,)
    assert not caught.value.retryable


def test_data_center_boards_live_under_the_context_path(mocked: responses.RequestsMock) -> None:
    mocked.get(
        f"{DC}{API}/serverInfo", json={"deploymentType": "DataCenter", "versionNumbers": [9]}
    )
    mocked.get(
        f"{DC}{AGILE}/board/12/configuration",
        json={"filter": {"id": "10040"}, "ranking": {"rankCustomFieldId": 10100}},
    )
    mocked.get(f"{DC}{API}/filter/10040", json={"jql": "project = OPS ORDER BY cf[10100]"})
    mocked.put(
        f"{DC}{RANK_PATH}",
        status=204,
        match=[
            matchers.json_params_matcher(
                {"issues": ["OPS-2"], "rankBeforeIssue": "OPS-1", "rankCustomFieldId": 10100}
            )
        ],
    )
    connector = JiraConnector(DC, field=FieldRef(name="Impact"), pat="pat")
    assert connector.board_setup(12).ordered_by_rank
    made = connector.rank_issues(12, RankCall(("OPS-2",), before="OPS-1"))
    assert [c.path for c in made] == [RANK_PATH]  # the setup was read already


# ---- refusals (the rerank's checks, through the real connector)


def test_rerank_refuses_a_filter_not_ordered_by_rank_and_says_what_to_fix(
    server_info: responses.BaseResponse,
    configuration: responses.BaseResponse,
    saved_filter: Responder,
    mocked: responses.RequestsMock,
) -> None:
    saved_filter("project = SHOP ORDER BY priority DESC")
    mocked.get(
        f"{CLOUD}{API}/mypermissions",
        json={"permissions": {"SCHEDULE_ISSUES": {"havePermission": False}}},
    )
    config = load_config(ROOT / "config" / "impact.toml")
    config = replace(config, projects=(replace(config.projects[0], board=12),))
    with pytest.raises(RankRefusedError) as caught:
        plan_board(12, config, cloud())
    message = str(caught.value)
    assert "not ordered by Rank ('project = SHOP ORDER BY priority DESC')" in message
    assert "ORDER BY Rank ASC" in message
    assert "lacks the Schedule issues permission in project SHOP" in message
    assert not caught.value.retryable


# ---- pure: 207 answers and their retry


def test_failed_entries_keep_jiras_words() -> None:
    answer = {
        "entries": [
            {"issueId": 1, "issueKey": "A-1", "status": 200},
            {"issueId": 2, "issueKey": "A-2", "status": 503, "errors": [BUSY]},
            {"issueId": 3, "status": 500},
        ]
    }
    assert failed_entries(answer) == {"A-2": BUSY, "3": "status 500"}
    assert failed_entries(None) == {}


@given(
    st.integers(1, 12).flatmap(
        lambda n: st.tuples(
            st.just(n), st.lists(st.booleans(), min_size=n, max_size=n), st.booleans()
        )
    )
)
def test_retrying_the_failed_issues_lands_them_where_the_call_meant(
    case: tuple[int, list[bool], bool],
) -> None:
    size, fails, after = case
    board = [f"B-{i}" for i in range(size + 4)]
    moving = tuple(board[2 : 2 + size][::-1])  # reversed: they really move
    anchor = board[-1] if after else board[0]
    call = RankCall(moving, after=anchor) if after else RankCall(moving, before=anchor)
    failed = [key for key, fail in zip(moving, fails, strict=True) if fail]
    succeeded = tuple(key for key in moving if key not in failed)
    partly = [RankCall(succeeded, before=call.before, after=call.after)] if succeeded else []
    retried = apply_calls(apply_calls(board, partly), retry_calls(call, failed))
    assert retried == apply_calls(board, [call])
    assert sum(len(c.issues) for c in retry_calls(call, failed)) == len(failed)
