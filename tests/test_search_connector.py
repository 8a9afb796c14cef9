"""``JiraConnector.search_issues`` and ``time_limit`` against `responses`: every expected request
must be made, with exactly this query, and the network is never reached."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import responses
from responses import matchers

from connector.client import JiraConnector
from connector.errors import JiraError, JiraUnavailableError
from impact.model import FieldRef

CLOUD = "https://acme.atlassian.test"
DC = "https://jira.corp.test/jira"
API = "/rest/api/2"
JQL = 'project = SHOP AND resolutiondate >= "2025-01-01"'


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def connect(mocked: responses.RequestsMock, *, cloud: bool = True, **kw) -> JiraConnector:
    base = CLOUD if cloud else DC
    mocked.get(
        f"{base}{API}/serverInfo",
        json={
            "deploymentType": "Cloud" if cloud else "DataCenter",
            "versionNumbers": [1001, 0, 0] if cloud else [9, 12, 0],
        },
    )
    field = FieldRef(name="External customer impact")
    if cloud:
        return JiraConnector(CLOUD, field=field, email="bot@acme.test", api_token="t", **kw)
    return JiraConnector(DC, field=field, pat="dc-pat", **kw)


def issues(*numbers: int) -> list[dict]:
    return [{"key": f"SHOP-{n}", "fields": {"labels": []}} for n in numbers]


def test_cloud_search_reads_pages_of_a_hundred_by_token_up_to_the_limit(mocked):
    jira = connect(mocked)
    search = f"{CLOUD}{API}/search/jql"
    asked = {"jql": JQL, "fields": "labels,resolutiondate"}
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
    found = jira.search_issues(JQL, fields=("labels", "resolutiondate"), limit=120)
    assert [i["key"] for i in found] == [f"SHOP-{n}" for n in range(1, 121)]


def test_data_center_search_follows_start_at_to_the_total(mocked):
    jira = connect(mocked, cloud=False)
    search = f"{DC}{API}/search"
    asked = {"jql": JQL, "fields": "labels", "maxResults": "100"}
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
    assert [i["key"] for i in jira.search_issues(JQL, fields=("labels",), limit=5000)] == [
        "SHOP-1",
        "SHOP-2",
        "SHOP-3",
    ]


def test_a_time_limit_shortens_each_requests_timeout_and_stops_calls_once_spent(mocked):
    clock = [100.0]
    jira = connect(mocked, timeout=10.0, clock=lambda: clock[0])
    sent: list[float] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        sent.append(request.req_kwargs["timeout"])  # what requests was given
        clock[0] += 1.5  # each answer takes 1.5 s
        return 200, {}, '{"issues": [], "isLast": true}'

    mocked.add_callback(responses.GET, f"{CLOUD}{API}/search/jql", callback=answer)
    with jira.time_limit(2.0):
        jira.search_issues(JQL, fields=("labels",), limit=10)
        jira.search_issues(JQL, fields=("labels",), limit=10)  # 0.5 s left
        with pytest.raises(JiraUnavailableError, match="within the time limit"):
            jira.search_issues(JQL, fields=("labels",), limit=10)
    jira.search_issues(JQL, fields=("labels",), limit=10)  # the limit is over
    assert sent == [2.0, 0.5, 10.0]
    assert [c.path for c in jira.calls].count(f"{API}/search/jql") == 3  # the third never left


def test_an_answer_that_is_not_json_says_so(mocked):
    jira = connect(mocked)
    mocked.get(f"{CLOUD}{API}/search/jql", body="<html>a login page</html>", status=200)
    with pytest.raises(JiraError, match="not JSON"):
        jira.search_issues(JQL, fields=("labels",), limit=10)
