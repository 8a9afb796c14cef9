"""The priorities pages through Flask's test client and the recording fake Jira: who gets in,
what each page shows, the exports, the cache, and Jira failing."""

from __future__ import annotations

import csv
import html
import io
import itertools
import re
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from connector.errors import JiraServerError, JiraUnavailableError
from connector.protocol import BoardEntry
from pipeline.queue import DeliveryQueue, QueueDispatcher
from tests.conftest import IMPACT_FIELD, FakeJira
from webhooks import create_app
from webhooks.admin.auth import FAILED_LIMIT
from webhooks.priorities.exports import neutralised

ADMIN_TOKEN = "admin-token-0123456789abcdef"
VIEWER_TOKEN = "viewer-token-0123456789"
COOKIE = "jira_impact_viewer"
BLOCKS = "Blocks paying customers"
INDIRECT = "Indirect: feeds customer-facing work"
NONE = "None: internal preference"
PAGES = ["/priorities", "/priorities/1", "/priorities/1.json", "/priorities/1.csv"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def impact(option: str) -> dict[str, object]:
    return {IMPACT_FIELD: {"value": option}}


def created(days: int) -> str:
    stamp = datetime.now(UTC) - timedelta(days=days)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def in_this_week(share: float) -> float:
    """Days ago that lie ``share`` of the way back to this week's Monday, 00:00 UTC: in this
    week's bar whatever the day the tests run (a fixed few hours would fall in last week's on
    a Monday morning)."""
    now = datetime.now(UTC)
    monday = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(now.weekday())
    return (now - monday).total_seconds() / 86400 * share


def resolved_issue(key: str, label: str, days_ago: float) -> dict:
    when = datetime.now(UTC) - timedelta(days=days_ago)
    return {
        "key": key,
        "fields": {
            "project": {"key": "SHOP"},
            "labels": [label],
            "resolutiondate": when.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        },
    }


@pytest.fixture
def jira() -> FakeJira:
    fake = FakeJira()
    reporter = {"reporter": {"accountId": "5f1", "displayName": "Ben Carter"}}
    fake.boards[1] = [
        BoardEntry("SHOP-1", ("internal-preference",), {**impact(NONE), **reporter,
                   "summary": "Black pens for logistics", "created": created(3)}),
        BoardEntry("SHOP-2", (), {"summary": "Flip-chart markers", **impact(INDIRECT)}),
        BoardEntry("SHOP-3", (), {"summary": "<script>alert('x')</script> rename a channel"}),
        # labelled an internal preference, but its field says blocking now
        BoardEntry("SHOP-4", ("internal-preference",), {"summary": "Payments down",
                   **impact(BLOCKS), "created": created(20)}),
        BoardEntry("SHOP-5", (), {"summary": "=HYPERLINK(\"http://evil.test\")", **impact(NONE)}),
    ]  # fmt: skip
    fake.issues = {
        "SHOP-90": resolved_issue("SHOP-90", "customer-impact-degraded", in_this_week(0.3)),
        "SHOP-91": resolved_issue("SHOP-91", "internal-preference", in_this_week(0.6)),
        "SHOP-92": resolved_issue("SHOP-92", "customer-impact-blocking", 7 + in_this_week(0.5)),
        "SHOP-93": resolved_issue("SHOP-93", "needs-customer-impact", 7 + in_this_week(0.5)),
        # never triaged: not counted
        "SHOP-94": resolved_issue("SHOP-94", "checkout", 7 + in_this_week(0.5)),
        "SHOP-95": resolved_issue("SHOP-95", "customer-impact-blocking", 200),  # too old
    }
    return fake


@pytest.fixture
def page_settings(store_settings):
    return replace(store_settings, admin_token=ADMIN_TOKEN, viewer_token=VIEWER_TOKEN)


def build(settings, config, dlog, huey, jira):
    dispatcher = QueueDispatcher(log=dlog, queue=DeliveryQueue(huey))
    app = create_app(
        {"SETTINGS": settings, "IMPACT": config, "DISPATCHER": dispatcher, "TESTING": True}
    )
    app.extensions["impact.admin.jira"] = lambda: jira
    return app


@pytest.fixture
def app(page_settings, impact_config, dlog, huey, jira):
    return build(page_settings, impact_config, dlog, huey, jira)


@pytest.fixture
def client(app):
    return app.test_client()


def log_in(client, token=VIEWER_TOKEN, next_path=""):
    return client.post("/priorities/login", data={"token": token, "next": next_path})


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


# --------------------------------------------------------------------------------------------
# Who gets in


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_token(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert 'realm="jira-customer-impact priorities"' in response.headers["WWW-Authenticate"]
    page = response.get_data(as_text=True)
    assert "a viewer token or the admin token" in page
    assert "SHOP-1" not in page


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("token", [VIEWER_TOKEN, ADMIN_TOKEN])
def test_the_viewer_or_the_admin_token_opens_every_page(client, path, token):
    response = client.get(path, headers=bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.headers["Cache-Control"] == "no-store"


def test_the_viewer_token_opens_no_admin_page(client):
    assert client.get("/admin/", headers=bearer(VIEWER_TOKEN)).status_code == 401
    assert log_in(client).status_code == 303
    assert client.get("/priorities/1").status_code == 200
    # the viewer's session cookie is for these pages alone, even sent to the admin pages
    cookie = client.get_cookie(COOKIE, path="/priorities").value
    client.set_cookie("jira_impact_admin", cookie, path="/admin")
    assert client.get("/admin/").status_code == 401
    assert client.post("/admin/login", data={"token": VIEWER_TOKEN}).status_code == 401


def test_the_login_form_sets_a_session_cookie_for_these_pages(client):
    refused = log_in(client, "not-a-token-at-all")
    assert refused.status_code == 401
    assert "That is not a viewer token or the admin token." in refused.get_data(as_text=True)
    response = log_in(client, next_path="/priorities/1")
    assert (response.status_code, response.headers["Location"]) == (303, "/priorities/1")
    cookie = response.headers["Set-Cookie"]
    for flag in (f"{COOKIE}=", "HttpOnly", "SameSite=Strict", "Path=/priorities"):
        assert flag in cookie
    assert VIEWER_TOKEN not in cookie
    assert client.get("/priorities/1.json").status_code == 200


def test_after_login_only_a_page_of_these_is_a_destination(client):
    assert log_in(client, next_path="https://evil.test/").headers["Location"] == "/priorities"
    assert log_in(client, next_path="/admin/").headers["Location"] == "/priorities"


def test_logout_needs_csrf_and_ends_the_session_for_a_copy_of_the_cookie(client, app):
    log_in(client)
    cookie = client.get_cookie(COOKIE, path="/priorities").value
    page = client.get("/priorities").get_data(as_text=True)
    assert client.post("/priorities/logout").status_code == 403
    assert client.post("/priorities/logout", data={"csrf_token": csrf_of(page)}).status_code == 303
    other = app.test_client()
    other.set_cookie(COOKIE, cookie, path="/priorities")
    assert other.get("/priorities").status_code == 401


def test_wrong_tokens_here_and_at_the_admin_pages_share_one_throttle(client):
    for _ in range(FAILED_LIMIT // 2):
        assert client.get("/priorities", headers=bearer("wrong-token-000000")).status_code == 401
    for _ in range(FAILED_LIMIT - FAILED_LIMIT // 2):
        assert log_in(client, "wrong-token-000000").status_code == 401
    # the admin token opens these pages too: guessing here spends the admin pages' attempts
    assert client.get("/admin/", headers=bearer(ADMIN_TOKEN)).status_code == 429
    throttled = client.get("/priorities", headers=bearer(VIEWER_TOKEN))
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "900"


def test_public_pages_need_no_token_but_the_admin_pages_still_do(
    page_settings, impact_config, dlog, huey, jira
):
    settings = replace(page_settings, public_priorities=True)
    client = build(settings, impact_config, dlog, huey, jira).test_client()
    for path in PAGES:
        assert client.get(path).status_code == 200, path
    assert "Log out" not in client.get("/priorities").get_data(as_text=True)
    assert client.get("/admin/").status_code == 401


def test_without_a_viewer_token_only_the_admin_token_opens_them(
    page_settings, impact_config, dlog, huey, jira
):
    settings = replace(page_settings, viewer_token=None)
    client = build(settings, impact_config, dlog, huey, jira).test_client()
    assert "the admin token" in client.get("/priorities").get_data(as_text=True)
    assert client.get("/priorities/1", headers=bearer(ADMIN_TOKEN)).status_code == 200
    assert client.get("/priorities/1", headers=bearer(VIEWER_TOKEN)).status_code == 401


def test_with_no_token_at_all_the_pages_are_closed_and_say_how_to_open_them(
    page_settings, impact_config, dlog, huey, jira
):
    settings = replace(page_settings, viewer_token=None, admin_token=None)
    client = build(settings, impact_config, dlog, huey, jira).test_client()
    response = client.get("/priorities", headers=bearer("anything-at-all"))
    assert response.status_code == 401
    assert "PUBLIC_PRIORITIES=1" in response.get_data(as_text=True)
    assert log_in(client, "anything-at-all").status_code == 401


def test_no_token_ever_appears_in_a_page_or_a_log(client, jira, caplog):
    jira.boards[1].append(BoardEntry("SHOP-6", (), {"summary": f"mentions {VIEWER_TOKEN}"}))
    log_in(client)
    client.get("/priorities", headers=bearer("wrong-token-000000"))
    for path in PAGES:
        text = client.get(path).get_data(as_text=True)
        assert VIEWER_TOKEN not in text and ADMIN_TOKEN not in text, path
    assert "SHOP-6" in client.get("/priorities/1").get_data(as_text=True)
    assert VIEWER_TOKEN not in caplog.text and ADMIN_TOKEN not in caplog.text


# --------------------------------------------------------------------------------------------
# What the pages show


def test_the_board_page_shows_two_columns_and_the_issues_that_need_an_impact(client):
    page = client.get("/priorities/1", headers=bearer(VIEWER_TOKEN)).get_data(as_text=True)
    sections = {
        name: page.split(f'id="col-{name}"', 1)[1].split("</section>", 1)[0]
        for name in ("external", "internal-preference", "missing")
    }
    keys = {name: re.findall(r">(SHOP-\d+)</a>", text) for name, text in sections.items()}
    assert keys == {
        "external": ["SHOP-4", "SHOP-2"],  # blocking first, whatever its labels say
        "internal-preference": ["SHOP-1", "SHOP-5"],
        "missing": ["SHOP-3"],
    }
    assert "set by a person in the field" in sections["external"]
    assert "blocking, set by a person" not in sections["external"]  # the level is beside it
    assert "Ben Carter" in sections["internal-preference"]
    assert ">3 d<" in sections["internal-preference"]  # SHOP-1's age
    assert 'href="https://jira.invalid/browse/SHOP-4"' in sections["external"]
    balance = page.split('id="balance"', 1)[1].split("</section>", 1)[0]
    assert re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", balance))).count("%") == 3
    assert "<strong>2</strong> serve paying customers <span>(40 %)</span>" in balance


def test_jira_text_is_escaped_and_the_page_runs_no_script(client):
    response = client.get("/priorities/1", headers=bearer(VIEWER_TOKEN))
    page = response.get_data(as_text=True)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; rename a channel" in page
    assert "<script" not in page
    csp = response.headers["Content-Security-Policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp


def test_the_chart_is_inline_svg_named_and_styled_under_the_pages_nonce(client):
    response = client.get("/priorities/1", headers=bearer(VIEWER_TOKEN))
    page = response.get_data(as_text=True)
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    svgs = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    assert len(svgs) == 2
    for svg in svgs:
        assert 'role="img"' in svg and "<title " in svg and "<desc " in svg
        assert f'<style type="text/css" nonce="{nonce}">' in svg
        assert "style=" not in svg.replace('<style type="text/css"', "")
    assert "Issues resolved per week, by class" in svgs[0]
    # the numbers are in a table as well: this week one served customers, one did not
    table = page.split('class="week-table"', 1)[1]
    rows = re.findall(r"<tr>\s*<th scope=\"row\">(.*?)</tr>", table, flags=re.S)
    assert len(rows) == 12
    cells = lambda row: re.findall(r'<td class="num">([^<]*)</td>', row)  # noqa: E731
    assert cells(rows[-1]) == ["1", "1", "0", "2", "50 %"]
    assert cells(rows[-2]) == ["1", "0", "1", "2", "50 %"]
    assert cells(rows[0]) == ["0", "0", "0", "0", "–"]


def test_the_json_gives_the_columns_and_the_weeks(client, jira):
    data = client.get("/priorities/1.json", headers=bearer(VIEWER_TOKEN)).get_json()
    assert data["board"] == 1
    assert {name: [i["key"] for i in rows] for name, rows in data["columns"].items()} == {
        "external": ["SHOP-4", "SHOP-2"],
        "internal-preference": ["SHOP-1", "SHOP-5"],
        "missing": ["SHOP-3"],
    }
    first = data["columns"]["external"][0]
    assert {k: first[k] for k in ("key", "summary", "level", "why", "class")} == {
        "key": "SHOP-4",
        "summary": "Payments down",
        "level": "blocking",
        "why": "set by a person in the field",
        "class": "external",
    }
    assert data["classes"]["external"] == {"count": 2, "share": 0.4}
    assert len(data["weeks"]) == 12
    this_week = data["weeks"][-1]
    assert {k: this_week[k] for k in ("external", "internal-preference", "missing")} == {
        "external": 1,
        "internal-preference": 1,
        "missing": 0,
    }
    assert this_week["external_share"] == 0.5
    search = [r for r in jira.requests if r.startswith("GET search")]
    assert len(search) == 1 and 'project = "SHOP" AND labels in (' in search[0]


def test_the_csv_has_one_row_per_issue_and_no_formula(client):
    response = client.get("/priorities/1.csv", headers=bearer(VIEWER_TOKEN))
    assert response.mimetype == "text/csv"
    assert "priorities-board-1.csv" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["key", "summary", "level", "class", "why", "status", "assignee"]
    assert [row[0] for row in rows[1:]] == [f"SHOP-{n}" for n in range(1, 6)]  # board order
    assert rows[5] == [
        "SHOP-5",
        '\'=HYPERLINK("http://evil.test")',
        "none",
        "internal-preference",
        "set by a person in the field",
        "",
        "",
    ]


@pytest.mark.parametrize(
    ("cell", "shown"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
     ("\tx", "'\tx"), ("Pens", "Pens"), ("a=b", "a=b")],
)  # fmt: skip
def test_a_cell_a_spreadsheet_would_run_is_shown_as_text(cell, shown):
    assert neutralised(cell) == shown


def test_the_index_counts_each_boards_open_issues_per_level(client):
    page = client.get("/priorities", headers=bearer(VIEWER_TOKEN)).get_data(as_text=True)
    heads = re.findall(r'<th scope="col" class="num">([^<]+)</th>', page)
    assert heads == ["blocking", "degraded", "indirect", "none", "missing", "Open"]
    row = page.split('<th scope="row" class="mono">SHOP</th>', 1)[1].split("</tr>", 1)[0]
    assert re.findall(r'<td class="num">(\d+)</td>', row) == ["1", "0", "1", "2", "1", "5"]
    assert 'href="/priorities/1"' in row


def test_an_unknown_board_is_404(client):
    assert client.get("/priorities/7", headers=bearer(VIEWER_TOKEN)).status_code == 404
    answer = client.get("/priorities/7.json", headers=bearer(VIEWER_TOKEN))
    assert (answer.status_code, answer.get_json()["error"]) == (404, "unknown_board")


# --------------------------------------------------------------------------------------------
# Cache and failure


def test_pages_read_jira_once_a_minute_within_the_time_limit(client, jira):
    for path in PAGES * 2:
        assert client.get(path, headers=bearer(VIEWER_TOKEN)).status_code == 200
    board_reads = [r for r in jira.board_requests if r.startswith("GET board/1/issue")]
    assert len(board_reads) == 1
    assert len([r for r in jira.requests if r.startswith("GET search")]) == 1
    assert jira.time_limits == [10.0, 10.0]  # the index's read, then the board page's search


def test_without_a_cache_every_page_reads_again(page_settings, impact_config, dlog, huey, jira):
    settings = replace(page_settings, priorities_cache_seconds=0.0)
    client = build(settings, impact_config, dlog, huey, jira).test_client()
    for _ in range(2):
        client.get("/priorities/1", headers=bearer(VIEWER_TOKEN))
    assert len([r for r in jira.board_requests if r.startswith("GET board/1/issue")]) == 2


class FailingBoard(FakeJira):
    """Its board reads fail; each waits for ``go`` first (set already unless a test clears it)."""

    def __init__(self) -> None:
        super().__init__()
        self.boards[1] = []
        self.go = threading.Event()
        self.go.set()

    def board_issues(self, board_id, **kw):
        self.board_requests.append(f"GET board/{board_id}/issue")
        assert self.go.wait(30), "the second view never asked"
        raise JiraUnavailableError("Jira did not answer within the time limit")


@pytest.mark.parametrize("path", PAGES)
def test_jira_down_or_slow_is_a_502_that_says_so(page_settings, impact_config, dlog, huey, path):
    failing = FailingBoard()
    client = build(page_settings, impact_config, dlog, huey, failing).test_client()
    response = client.get(path, headers=bearer(VIEWER_TOKEN))
    said = response.get_data(as_text=True)
    if path == "/priorities":  # the list comes from the config: it shows, without counts
        assert response.status_code == 200
        assert "Jira did not answer; the boards&#39; counts will show once it does." in said
    else:
        assert response.status_code == 502
        assert "Jira did not answer, so board 1 could not be shown" in said
    assert "within the time limit" not in said  # Jira's own words: the log's, not the viewer's
    # nothing is kept of a failure: the next view reads again
    client.get(path, headers=bearer(VIEWER_TOKEN))
    assert [r for r in failing.board_requests if r.endswith("/issue")] == ["GET board/1/issue"] * 2


def test_a_view_that_waited_for_a_failing_read_fails_at_once(
    page_settings, impact_config, dlog, huey
):
    failing = FailingBoard()
    failing.go.clear()
    app = build(page_settings, impact_config, dlog, huey, failing)
    ticks = itertools.count()

    def clock() -> float:  # the first view asks at 0, the second at 1: then the read fails
        tick = next(ticks)
        if tick == 1:
            failing.go.set()
        return float(tick)

    app.extensions["impact.priorities.clock"] = clock
    answers: list[int] = []

    def view() -> None:
        answers.append(
            app.test_client().get("/priorities/1", headers=bearer(VIEWER_TOKEN)).status_code
        )

    first = threading.Thread(target=view)
    first.start()
    assert wait_for(lambda: failing.board_requests), "the first view never read"
    second = threading.Thread(target=view)
    second.start()
    for thread in (first, second):
        thread.join(30)
    assert answers == [502, 502]
    read = [r for r in failing.board_requests if r.endswith("/issue")]
    assert read == ["GET board/1/issue"]  # the second did not read


def wait_for(check, tries: int = 300):
    for _ in range(tries):
        if check():
            return True
        threading.Event().wait(0.05)
    return False


def test_a_failing_search_fails_the_board_page_not_the_csv(client, jira):
    jira.fail_with = JiraServerError("Jira answered 503 SERVICE UNAVAILABLE", status=503)
    response = client.get("/priorities/1", headers=bearer(VIEWER_TOKEN))
    assert response.status_code == 502
    assert "Jira failed (503: an error on Jira&#39;s side)" in response.get_data(as_text=True)
    assert client.get("/priorities/1.csv", headers=bearer(VIEWER_TOKEN)).status_code == 200
