"""The priorities pages end to end: the Procfile's web process against the Jira sandbox, seeded
with the demo board and with issues resolved over the past weeks (as triage labelled them).

What a colleague gets over HTTP, the JQL the sandbox must answer, the Jira calls a page makes
and the minute they are kept, and Jira failing or slow (the sandbox's faults and limits).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.stack import BOT_TOKEN, Stack
from tests.test_priorities import ADMIN_TOKEN, VIEWER_TOKEN, bearer

pytestmark = pytest.mark.e2e

BOARD_ISSUES = "/rest/agile/1.0/board/1/issue"
SEARCH = "/rest/api/2/search/jql"
# (weeks back, label, how many): what was resolved, as triage labelled it
HISTORY = [
    (0, "customer-impact-blocking", 1),
    (0, "internal-preference", 1),
    (1, "customer-impact-degraded", 3),
    (1, "needs-customer-impact", 1),
    (4, "internal-preference", 2),
    (11, "customer-impact-indirect", 1),
    (13, "customer-impact-blocking", 4),  # before the 12 weeks: not counted
]
COLUMN = {
    "customer-impact-blocking": "external",
    "customer-impact-degraded": "external",
    "customer-impact-indirect": "external",
    "internal-preference": "internal-preference",
    "needs-customer-impact": "missing",
}


def seed_history(stack: Stack, now: datetime) -> Counter[tuple[str, str]]:
    """Issues resolved at a Monday noon ``weeks back`` from this week's (never after now);
    the counts the chart should show, by (week's Monday, column)."""
    monday = (now - timedelta(days=now.weekday())).replace(hour=12, minute=0, second=0)
    bodies, expected = [], Counter()
    for back, label, count in HISTORY:
        when = min(monday - timedelta(weeks=back), now - timedelta(minutes=5))
        for n in range(count):
            bodies.append(
                {"summary": f"Resolved {label} {back}.{n}", "labels": [label],
                 "created": (when - timedelta(days=3)).isoformat(), "resolved": when.isoformat()}
            )  # fmt: skip
            if back < 12:
                expected[
                    (when.date() - timedelta(days=when.weekday())).isoformat(), COLUMN[label]
                ] += 1
    stack.control("POST", "/issues/bulk", json={"issues": bodies})
    return expected


def priorities_stack(folder, **env: str) -> Stack:
    env = {
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "VIEWER_TOKEN": VIEWER_TOKEN,
        "PRIORITIES_READ_SECONDS": "1",
        "WEB_CONCURRENCY": "1",  # one process, one cache: what a page reads twice is countable
        **env,
    }
    return Stack(folder, seed="demo", processes=("web",), env=env)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Keeping nothing, so that each test sees Jira's answers as they are then, whatever ran
    before it (the minute's cache has a test and a stack of its own)."""
    with priorities_stack(tmp_path_factory.mktemp("stack"), PRIORITIES_CACHE_SECONDS="0") as s:
        s.expected = seed_history(s, datetime.now(UTC))  # type: ignore[attr-defined]
        yield s


@pytest.fixture
def fresh(tmp_path):
    """A web process that has read nothing yet, so has no last good data to show while Jira
    fails (one that read the board before shows that, with its age, instead of a 502)."""
    with priorities_stack(tmp_path / "stack", PRIORITIES_CACHE_SECONDS="0") as s:
        yield s


def get(stack: Stack, path: str, token: str | None = VIEWER_TOKEN, **kw):
    headers = bearer(token) if token else {}
    return stack.http.get(f"{stack.app_url}{path}", headers=headers, timeout=30, **kw)


def calls_to(stack: Stack, since: int, path: str) -> int:
    return sum(1 for call in stack.calls(since) if call["path"] == path)


def test_a_slow_jira_is_a_502_within_the_time_limit(fresh):
    stack = fresh
    # every call takes 0.7 s: each is within its timeout, but not the page's reads together
    stack.control("POST", "/faults", json={"limits": {"latency_ms": 700}})
    try:
        response = get(stack, "/priorities/1")
    finally:
        stack.control("DELETE", "/faults")
    assert response.status_code == 502
    assert "Jira did not answer" in response.text
    assert "within the time limit" not in response.text  # Jira's detail is for the log
    # one answer that never comes is cut at the time limit as well
    stack.control("POST", "/faults", json={"path": BOARD_ISSUES, "delay_ms": 5000})
    try:
        response = get(stack, "/priorities/1.json")
    finally:
        stack.control("DELETE", "/faults")
    assert response.status_code == 502
    assert response.json()["error"] == "jira_unavailable"


def test_jira_failing_is_a_502_that_says_so(fresh):
    stack = fresh
    stack.control("POST", "/faults", json={"path": BOARD_ISSUES, "status": 503, "times": 3})
    try:
        for path in ("/priorities/1", "/priorities/1.csv"):
            response = get(stack, path)
            assert response.status_code == 502, path
            assert "Jira failed (503: an error on Jira" in response.text
        listed = get(stack, "/priorities")  # its boards come from the config: it still shows
        assert listed.status_code == 200
        assert "Jira failed (503" in listed.text and 'href="/priorities/1"' in listed.text
    finally:
        stack.control("DELETE", "/faults")


def test_the_board_in_two_columns_and_the_weeks_from_the_resolved_issues(stack):
    since = stack.last_call()
    response = get(stack, "/priorities/1.json")
    assert response.status_code == 200, response.text
    data = response.json()
    keys = {name: [i["key"] for i in rows] for name, rows in data["columns"].items()}
    # the demo board: SHOP-3's field says blocking, SHOP-1 and SHOP-9 are checkout bugs (a
    # rule), SHOP-10 is done and left out; no issue carries a label yet, each shows the level
    # it has now
    assert keys["external"][:2] == ["SHOP-3", "SHOP-1"]
    assert "SHOP-9" in keys["external"]
    assert keys["internal-preference"] == ["SHOP-2"]
    assert "SHOP-6" in keys["missing"]
    assert not any("SHOP-10" in found for found in keys.values())
    first = data["columns"]["external"][0]
    assert first["why"] == "set by a person in the field"
    assert first["reporter"] == "Ana Sousa"
    assert first["url"].endswith("/browse/SHOP-3")
    shown = Counter()
    for week in data["weeks"]:
        for column in ("external", "internal-preference", "missing"):
            if week[column]:
                shown[week["week"], column] = week[column]
    assert shown == stack.expected
    assert len(data["weeks"]) == 12
    # one paginated read of the board and one search
    assert calls_to(stack, since, BOARD_ISSUES) == 1
    assert calls_to(stack, since, SEARCH) == 1


def test_what_was_read_is_kept_a_minute(tmp_path):
    with priorities_stack(tmp_path / "stack") as stack:  # the default cache: 60 s
        seed_history(stack, datetime.now(UTC))
        since = stack.last_call()
        assert get(stack, "/priorities/1").status_code == 200
        assert (calls_to(stack, since, BOARD_ISSUES), calls_to(stack, since, SEARCH)) == (1, 1)
        since = stack.last_call()
        for path in ("/priorities", "/priorities/1", "/priorities/1.csv", "/priorities/1.json"):
            assert get(stack, path).status_code == 200, path
        assert calls_to(stack, since, BOARD_ISSUES) == 0
        assert calls_to(stack, since, SEARCH) == 0


def test_the_csv_and_the_html_over_http(stack):
    rows = list(csv.reader(io.StringIO(get(stack, "/priorities/1.csv").text)))
    assert rows[0] == ["key", "summary", "level", "class", "why", "status", "assignee"]
    shop3 = next(row for row in rows if row[0] == "SHOP-3")
    assert shop3[1:5] == [
        "Outage: product search returns no results",
        "blocking",
        "external",
        "set by a person in the field",
    ]
    page = get(stack, "/priorities/1").text
    assert page.count("<svg ") == 2 and "<script" not in page


def test_access_over_http_and_no_token_in_the_log(stack):
    assert get(stack, "/priorities/1", token=None).status_code == 401
    assert get(stack, "/priorities/1", token=ADMIN_TOKEN).status_code == 200
    assert get(stack, "/admin/", token=VIEWER_TOKEN).status_code == 401
    assert get(stack, "/priorities", token="not-the-viewer-token").status_code == 401
    log = stack.log("web")
    assert "priorities: an Authorization header with a wrong token was refused" in log
    for secret in (VIEWER_TOKEN, ADMIN_TOKEN, BOT_TOKEN, stack.secret):
        assert secret not in log
