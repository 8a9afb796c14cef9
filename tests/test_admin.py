"""The admin pages through Flask's test client: who gets in, what the pages show, replay with
CSRF, and no secret in any page."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest

from connector.errors import JiraServerError
from connector.protocol import BoardEntry
from pipeline.delivery import Delivery
from pipeline.delivery_log import DeliveryLog
from pipeline.queue import DeliveryQueue, QueueDispatcher, make_huey
from tests.conftest import IMPACT_FIELD, FakeJira, issue_payload
from webhooks import create_app
from webhooks.admin import bp as admin_bp
from webhooks.admin.auth import (
    COOKIE,
    FAILED_LIMIT,
    FAILED_WINDOW_SECONDS,
    AdminAuth,
    safe_next,
)
from webhooks.health import delivery_stores

ADMIN_TOKEN = "admin-token-0123456789abcdef"
T0 = 1_700_000_000.0
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CALLS = "attempt 1 at 2023-11-14T22:13:21.000Z, 41 ms:\n  PUT /rest/api/2/issue/SHOP-1 -> 204"


@dataclass(frozen=True)
class Finding:  # the shape of jira_setup.check.Finding
    ok: bool
    subject: str
    message: str
    fix: str | None = None


@pytest.fixture
def admin_settings(store_settings):
    return replace(store_settings, admin_token=ADMIN_TOKEN)


@pytest.fixture
def board_jira() -> FakeJira:
    jira = FakeJira()
    outage = {"summary": "Outage: customers cannot pay"}
    jira.boards[1] = [
        BoardEntry("SHOP-1", ("internal-preference",), impact("None: internal preference")),
        BoardEntry("SHOP-2", ("customer-impact-blocking", "customer-impact-inferred"), outage),
        BoardEntry("SHOP-3", ("needs-customer-impact",)),
        BoardEntry("SHOP-4", ()),
        BoardEntry(
            "SHOP-5",
            ("customer-impact-degraded", "rank-pinned"),
            impact("Degrades paying customers' experience"),
        ),
    ]
    return jira


def impact(option: str) -> dict[str, object]:
    return {IMPACT_FIELD: {"value": option}}


def build_app(settings, config, dlog, huey, jira, findings=()):
    dispatcher = QueueDispatcher(log=dlog, queue=DeliveryQueue(huey))
    app = create_app(
        {"SETTINGS": settings, "IMPACT": config, "DISPATCHER": dispatcher, "TESTING": True}
    )
    if admin_bp.name not in app.blueprints:  # until create_app registers it
        app.register_blueprint(admin_bp)
    app.extensions["impact.admin.jira"] = lambda: jira
    app.extensions["impact.admin.checks"] = lambda settings, config, jira: list(findings)
    return app


@pytest.fixture
def app(admin_settings, impact_config, dlog, huey, board_jira):
    findings = [
        Finding(True, "Jira", "reached as Impact Bot"),
        Finding(False, "Impact field", "no field named 'External customer impact'", "create it"),
    ]
    return build_app(admin_settings, impact_config, dlog, huey, board_jira, findings)


@pytest.fixture
def client(app):
    return app.test_client()


def seed(dlog, n, key, status, *, ident=None, plan=None, error=None, calls=None):
    """A delivery row in ``status``, as the receiver and the worker would leave it."""
    delivery = Delivery(
        id=ident or f"wh-{n}",
        event="jira:issue_created",
        issue_key=key,
        body=json.dumps(issue_payload(key=key)),
        received_at=T0 + n,
    )
    dlog.admit(delivery)
    if status != "queued":
        assert dlog.claim(delivery.id, now=T0 + n, lease=60) is not None
        if status != "running":
            dlog.finish(
                delivery.id, status, now=T0 + n + 1, plan=plan, attempt_log=calls, error=error
            )
    return delivery.id


@pytest.fixture
def seeded(dlog):
    seed(dlog, 1, "SHOP-1", "done", plan="SHOP-1: degraded (rule checkout)", calls=CALLS)
    seed(dlog, 2, "SHOP-2", "dead", error="gave up after 12 attempt(s): Jira 503: unavailable")
    seed(dlog, 3, "SHOP-1", "queued")
    seed(dlog, 4, "SHOP-3", "failed", ident="sha256:" + "ab" * 32, error="Jira 404: no issue")
    return dlog


def listed(page: str) -> list[str]:
    """The delivery identifiers a list page shows, in order."""
    return re.findall(r'<small class="mono">([^<]+)</small>', page)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


def log_in(client, token=ADMIN_TOKEN, next_path=""):
    return client.post("/admin/login", data={"token": token, "next": next_path})


PAGES = [
    "/admin/",
    "/admin/deliveries",
    "/admin/deliveries?status=dead&issue=SHOP-2",
    "/admin/dead",
    "/admin/delivery?id=wh-1",
    "/admin/delivery?id=sha256:" + "ab" * 32,
    "/admin/boards",
    "/admin/boards/1",
    "/admin/check",
]


# --------------------------------------------------------------------------------------------
# Who gets in


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_401_without_the_token(client, seeded, path):
    response = client.get(path)
    assert response.status_code == 401
    assert 'Bearer realm="jira-customer-impact admin"' in response.headers["WWW-Authenticate"]
    page = response.get_data(as_text=True)
    assert '<label for="token">Admin token</label>' in page
    assert "SHOP-1" not in page


@pytest.mark.parametrize(
    "header",
    ["Bearer wrong-token", f"Basic {ADMIN_TOKEN}", f"Bearer {ADMIN_TOKEN}x", "Bearer "],
)
def test_a_wrong_authorization_header_is_401(client, seeded, header):
    response = client.get("/admin/deliveries", headers={"Authorization": header})
    assert response.status_code == 401
    assert "wh-1" not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", PAGES)
def test_the_bearer_token_opens_every_page(client, seeded, path):
    response = client.get(path, headers=BEARER)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_without_admin_token_set_the_pages_are_off(admin_settings, impact_config, dlog, huey):
    app = build_app(replace(admin_settings, admin_token=None), impact_config, dlog, huey, None)
    client = app.test_client()
    response = client.get("/admin/", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 401
    assert "ADMIN_TOKEN</code> is not set" in response.get_data(as_text=True)
    assert log_in(client, "anything").status_code == 401
    assert COOKIE not in response.headers.get("Set-Cookie", "")


def test_the_login_form_sets_a_signed_session_cookie(client, seeded):
    refused = log_in(client, "not-the-token")
    assert refused.status_code == 401
    assert "That is not the admin token." in refused.get_data(as_text=True)
    assert "Set-Cookie" not in refused.headers

    response = log_in(client)
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/admin"):
        assert flag in cookie
    assert ADMIN_TOKEN not in cookie
    assert client.get("/admin/deliveries").status_code == 200
    assert client.get("/admin/login").status_code == 303  # already in


@pytest.mark.parametrize(
    ("headers", "secure"), [({}, False), ({"X-Forwarded-Proto": "https"}, True)]
)
def test_the_cookie_is_secure_behind_https(client, headers, secure):
    response = client.post("/admin/login", data={"token": ADMIN_TOKEN}, headers=headers)
    assert ("; Secure" in response.headers["Set-Cookie"]) is secure


def test_a_tampered_or_foreign_cookie_is_refused(client, seeded):
    log_in(client)
    value = client.get_cookie(COOKIE, path="/admin").value
    client.set_cookie(
        COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"), path="/admin"
    )
    assert client.get("/admin/").status_code == 401
    signed_by_other_token = AdminAuth("another-admin-token").new_session()
    client.set_cookie(COOKIE, signed_by_other_token, path="/admin")
    assert client.get("/admin/").status_code == 401


def test_sessions_expire():
    cookie = AdminAuth(ADMIN_TOKEN).new_session()
    assert AdminAuth(ADMIN_TOKEN).session_id(cookie)
    assert AdminAuth(ADMIN_TOKEN, max_age=-1).session_id(cookie) is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/admin/deliveries?status=dead", "/admin/deliveries?status=dead"),
        ("//evil.example/admin/", "/admin/"),
        ("https://evil.example/admin/", "/admin/"),
        ("/admin\\evil", "/admin/"),
        ("", "/admin/"),
    ],
)
def test_login_goes_back_only_inside_the_admin_pages(client, given, expected):
    assert safe_next(given, "/admin/") == expected
    response = log_in(client, next_path=given)
    assert response.headers["Location"] == expected


def test_the_login_page_remembers_the_page_asked_for(client):
    page = client.get("/admin/deliveries?status=dead").get_data(as_text=True)
    assert 'name="next" value="/admin/deliveries?status=dead"' in page


def test_logout_needs_csrf_and_ends_the_session(client, seeded):
    log_in(client)
    page = client.get("/admin/").get_data(as_text=True)
    assert client.post("/admin/logout").status_code == 403
    response = client.post("/admin/logout", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 303
    assert client.get("/admin/").status_code == 401


def test_the_stylesheet_needs_no_token(client):
    assert client.get("/admin/static/admin.css").status_code == 200


# --------------------------------------------------------------------------------------------
# Deliveries, replay


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["sha256:" + "ab" * 32, "wh-3", "wh-2", "wh-1"]),
        ("?status=dead", ["wh-2"]),
        ("?status=queued", ["wh-3"]),
        ("?issue=SHOP-1", ["wh-3", "wh-1"]),
        ("?issue=+shop-1+", ["wh-3", "wh-1"]),
        ("?status=done&issue=SHOP-1", ["wh-1"]),
        ("?status=done&issue=SHOP-2", []),
        ("?status=nonsense", ["sha256:" + "ab" * 32, "wh-3", "wh-2", "wh-1"]),
    ],
)
def test_deliveries_filter_by_status_and_issue(client, seeded, query, expected):
    response = client.get("/admin/deliveries" + query, headers=BEARER)
    assert response.status_code == 200
    assert listed(response.get_data(as_text=True)) == expected


def test_the_list_shows_status_plan_calls_and_errors(client, seeded):
    page = client.get("/admin/deliveries", headers=BEARER).get_data(as_text=True)
    assert "SHOP-1: degraded (rule checkout)" in page
    assert "1 Jira call</summary>" in page
    assert "PUT /rest/api/2/issue/SHOP-1 -&gt; 204" in page
    assert "gave up after 12 attempt(s): Jira 503: unavailable" in page
    assert '<span class="status status-dead">dead</span>' in page


def test_the_dead_page_lists_dead_and_failed_with_a_replay_button(client, seeded):
    page = client.get("/admin/dead", headers=BEARER).get_data(as_text=True)
    assert listed(page) == ["sha256:" + "ab" * 32, "wh-2"]
    assert page.count(">Replay</button>") == 2


def test_a_queued_delivery_page_refreshes_itself_and_offers_no_replay(client, seeded):
    page = client.get("/admin/delivery?id=wh-3", headers=BEARER).get_data(as_text=True)
    assert '<meta http-equiv="refresh"' in page
    assert ">Replay</button>" not in page
    done = client.get("/admin/delivery?id=wh-1", headers=BEARER).get_data(as_text=True)
    assert '<meta http-equiv="refresh"' not in done
    assert ">Replay</button>" in done


def test_an_unknown_delivery_is_404(client, seeded):
    assert client.get("/admin/delivery?id=nope", headers=BEARER).status_code == 404


def waiting_of(page: str) -> int:
    """The overview's count of deliveries accepted and not yet taken by a worker."""
    found = re.search(r"Accepted, not yet taken by a worker[^:]*: <strong>(\d+)</strong>", page)
    assert found, "the overview shows no waiting count"
    return int(found.group(1))


def accept(app, n):
    """``n`` deliveries taken by the web process, as the receiver does; no worker runs."""
    _log, queue = delivery_stores(app)
    for i in range(n):
        body = f'{{"n": {i}}}'
        assert queue.accept(Delivery(f"in-{i}", "jira:issue_created", "SHOP-9", body, T0 + i))


def test_the_overview_shows_deliveries_waiting_in_the_inbox_beside_the_log(app, client, seeded):
    accept(app, 2)
    page = client.get("/admin/", headers=BEARER).get_data(as_text=True)
    assert waiting_of(page) == 2
    assert "Deliveries by status" in page  # the log's counts, as before


def test_the_overview_shows_the_waiting_count_when_the_log_is_down(app, client, tmp_path):
    accept(app, 3)
    app.extensions["impact.deliveries"] = DeliveryLog.from_url(f"sqlite:///{tmp_path}/x.db")
    page = client.get("/admin/", headers=BEARER).get_data(as_text=True)
    assert waiting_of(page) == 3
    assert "The delivery log or the queue did not answer: OperationalError" in page


def test_replay_from_a_session_is_refused_without_its_csrf_token(client, seeded, huey):
    log_in(client)
    page = client.get("/admin/dead").get_data(as_text=True)
    other = build_other_session_token(client.application)
    for form in ({}, {"csrf_token": "0" * 64}, {"csrf_token": other}):
        response = client.post("/admin/replay", data=form | {"id": "wh-2"})
        assert response.status_code == 403
        assert "CSRF" in response.get_data(as_text=True)
    assert seeded.get("wh-2").status == "dead"
    assert huey.pending_count() == 0

    form = {"id": "wh-2", "csrf_token": csrf_of(page)}
    response = client.post("/admin/replay", data=form)
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/delivery?id=wh-2&notice=replayed"
    assert seeded.get("wh-2").status == "queued"
    assert seeded.get("wh-2").attempts == 0
    assert huey.pending_count() == 1
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Queued again" in shown


def build_other_session_token(app) -> str:
    """The CSRF token of another session: valid somewhere, not in this session."""
    other = app.test_client()
    log_in(other)
    return csrf_of(other.get("/admin/").get_data(as_text=True))


def test_replay_with_the_bearer_header_needs_no_csrf(client, seeded, huey):
    ident = "sha256:" + "ab" * 32
    response = client.post("/admin/replay", data={"id": ident}, headers=BEARER)
    assert response.status_code == 303
    assert seeded.get(ident).status == "queued"
    assert huey.pending_count() == 1


def test_replay_of_a_queued_delivery_changes_nothing(client, seeded, huey):
    response = client.post("/admin/replay", data={"id": "wh-3"}, headers=BEARER)
    assert response.headers["Location"].endswith("notice=not-replayed")
    assert huey.pending_count() == 0


def test_replay_without_a_token_is_401_and_changes_nothing(client, seeded, huey):
    assert client.post("/admin/replay", data={"id": "wh-2"}).status_code == 401
    assert seeded.get("wh-2").status == "dead"
    assert huey.pending_count() == 0


# --------------------------------------------------------------------------------------------
# Boards, check


def band_sections(page: str) -> dict[str, str]:
    """Each band's section of the board page, by band name, in page order."""
    parts = re.split(r'<section aria-labelledby="band-([a-z-]+)">', page)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_the_board_page_shows_order_by_band_reasons_and_the_plan(client, board_jira):
    page = client.get("/admin/boards/1", headers=BEARER).get_data(as_text=True)
    sections = band_sections(page)
    assert list(sections) == ["blocking", "degraded", "indirect", "missing", "none"]
    assert "SHOP-2" in sections["blocking"]
    assert "blocking, inferred by rule &#39;outage reported&#39;" in sections["blocking"]
    assert "pinned (label rank-pinned): never moved" in sections["degraded"]
    assert "No open issue in this band." in sections["indirect"]
    missing = sections["missing"]
    assert missing.index("SHOP-3") < missing.index("SHOP-4")  # the board's own order
    assert "no impact stated and no rule matched" in missing
    assert "labels not written yet (needs-customer-impact)" in missing  # SHOP-4, not triaged
    assert "none, set by a person in the field" in sections["none"]
    assert "#1" in sections["none"]  # SHOP-1 is first on the board
    assert "Rerank plan:" in page
    assert re.search(r"SHOP-1</th>\s*<td>[^<]*</td>\s*<td>moves #1 → #4: sat above SHOP-2", page)
    assert re.search(r"SHOP-2</th>\s*<td>[^<]*</td>\s*<td>stays</td>", page)
    assert board_jira.board_requests[:2] == [
        "GET board/1/configuration",
        "GET board/1/issue statusCategory != Done ORDER BY Rank ASC",
    ]
    assert not [r for r in board_jira.board_requests if r.startswith("PUT")]


def test_the_board_page_says_what_stops_ranking(client, board_jira):
    board_jira.board_jql = "project = SHOP ORDER BY created DESC"
    board_jira.schedule = False
    page = client.get("/admin/boards/1", headers=BEARER).get_data(as_text=True)
    assert "is not ordered by Rank" in page
    assert "lacks the Schedule issues permission in project SHOP" in page


def test_a_board_not_in_the_config_is_404_and_jira_failing_is_502(client, board_jira):
    assert client.get("/admin/boards/7", headers=BEARER).status_code == 404
    board_jira.boards.clear()  # the fake answers 404 for the board
    response = client.get("/admin/boards/1", headers=BEARER)
    assert response.status_code == 502
    assert "Jira did not give the board" in response.get_data(as_text=True)


def test_the_check_page_lists_findings_with_fixes(client):
    page = client.get("/admin/check", headers=BEARER).get_data(as_text=True)
    assert "1 problem found." in page
    assert "reached as Impact Bot" in page
    assert "no field named &#39;External customer impact&#39;" in page
    assert "create it" in page


def test_the_check_page_survives_a_failing_check(app, client):
    def failing(settings, config, jira):
        raise JiraServerError("Service unavailable", status=503)

    app.extensions["impact.admin.checks"] = failing
    response = client.get("/admin/check", headers=BEARER)
    assert response.status_code == 502
    assert "The check could not run" in response.get_data(as_text=True)


# --------------------------------------------------------------------------------------------
# No secret in any page


def test_no_secret_in_any_page_even_when_the_data_holds_one(
    admin_settings, impact_config, dlog, huey, board_jira
):
    secrets = admin_settings.secrets()
    assert ADMIN_TOKEN in secrets and "jira-api-token" in secrets
    seed(dlog, 1, "SHOP-1", "dead", error=f"Jira 401: token {admin_settings.jira_api_token} bad")
    findings = [Finding(False, "Webhook", f"secret {admin_settings.webhook_secret} is weak")]
    app = build_app(admin_settings, impact_config, dlog, huey, board_jira, findings)
    client = app.test_client()
    log_in(client)
    pages = {path: client.get(path).get_data(as_text=True) for path in PAGES}
    pages["login"] = app.test_client().get("/admin/login").get_data(as_text=True)
    for path, page in pages.items():
        for secret in secrets:
            assert secret not in page, f"{path} shows a secret"
    assert "Jira 401: token [redacted] bad" in pages["/admin/dead"]
    assert "secret [redacted] is weak" in pages["/admin/check"]


# --------------------------------------------------------------------------------------------
# Hardening: logout, throttling, the cookie, identifiers in links


def web_process(settings, impact_config, dlog):
    """Another web process of the same deployment: its own app and queue, the same stores."""
    return build_app(settings, impact_config, dlog, make_huey(settings), FakeJira()).test_client()


def test_logout_ends_the_session_in_every_web_process(
    client, seeded, admin_settings, impact_config, dlog, huey
):
    log_in(client)
    cookie = client.get_cookie(COOKIE, path="/admin").value
    other = web_process(admin_settings, impact_config, dlog)
    other.set_cookie(COOKIE, cookie, path="/admin")
    assert other.get("/admin/").status_code == 200
    page = client.get("/admin/").get_data(as_text=True)
    assert client.post("/admin/logout", data={"csrf_token": csrf_of(page)}).status_code == 303
    # A copy of the old cookie, kept from before the logout, opens nothing anywhere.
    for web in (client, other):
        web.set_cookie(COOKIE, cookie, path="/admin")
        assert web.get("/admin/").status_code == 401
    log_in(client)  # a new session is fine
    assert client.get("/admin/").status_code == 200


def test_wrong_tokens_are_throttled_per_address_in_every_web_process(
    client, seeded, admin_settings, impact_config, dlog, huey, caplog
):
    attacker = {"REMOTE_ADDR": "203.0.113.9"}
    other = web_process(admin_settings, impact_config, dlog)
    for n in range(FAILED_LIMIT):
        web = client if n % 2 else other  # the count is shared, whichever process answers
        wrong = web.post("/admin/login", data={"token": f"guess-{n}"}, environ_base=attacker)
        assert wrong.status_code == 401
    assert "client 203.0.113.9, failed attempt 10 of 10" in caplog.text
    right = client.post("/admin/login", data={"token": ADMIN_TOKEN}, environ_base=attacker)
    assert right.status_code == 429
    assert right.headers["Retry-After"] == str(FAILED_WINDOW_SECONDS)
    bearer = other.get("/admin/", headers=BEARER, environ_base=attacker)
    assert bearer.status_code == 429
    neighbour = {"REMOTE_ADDR": "198.51.100.4"}
    assert log_in(client).status_code == 303  # the test client's own address: not throttled
    assert client.get("/admin/", headers=BEARER, environ_base=neighbour).status_code == 200


def test_the_client_address_comes_from_x_forwarded_for_only_behind_trusted_proxies(
    admin_settings, impact_config, dlog, caplog
):
    forged = {"X-Forwarded-For": "192.0.2.77"}
    direct = web_process(admin_settings, impact_config, dlog)
    direct.post("/admin/login", data={"token": "nope"}, headers=forged)
    assert "client 127.0.0.1," in caplog.text and "192.0.2.77" not in caplog.text
    proxied = replace(admin_settings, trusted_proxies=1)
    behind = web_process(proxied, impact_config, dlog)
    behind.post("/admin/login", data={"token": "nope"}, headers=forged)
    assert "client 192.0.2.77, failed attempt 1 of" in caplog.text


def test_admin_cookie_secure_marks_the_cookie_secure_without_a_proxy_header(
    admin_settings, impact_config, dlog
):
    forced = replace(admin_settings, admin_cookie_secure=True)
    client = web_process(forced, impact_config, dlog)
    response = log_in(client)
    assert "Secure" in response.headers["Set-Cookie"]


@pytest.mark.parametrize("ident", ["x/../../wh-2", "../wh-2", "..", "a?b#c&id=wh-2", "wh-2/.."])
def test_an_identifier_with_path_characters_links_to_and_replays_itself_only(
    client, seeded, huey, ident
):
    """A sender chooses the identifier. Put in a path, a browser resolves its '..' and the
    Replay button replays another delivery: in the query or the form, it stays whole."""
    seed(seeded, 9, "SHOP-9", "dead", ident=ident)
    page = client.get("/admin/dead", headers=BEARER).get_data(as_text=True)
    hrefs = re.findall(r'href="(/admin/delivery\?[^"]+)"', page)
    linked = [
        parse_qs(urlsplit(urljoin("http://h/admin/dead", html.unescape(h))).query) for h in hrefs
    ]
    assert {"id": [ident]} in linked
    actions = set(re.findall(r'<form method="post" action="([^"]+)">', page)) - {"/admin/logout"}
    assert actions == {"/admin/replay"}
    assert f'<input type="hidden" name="id" value="{html.escape(ident)}">' in page
    response = client.post("/admin/replay", data={"id": ident}, headers=BEARER)
    assert seeded.get(ident).status == "queued"
    assert seeded.get("wh-2").status == "dead"
    shown = client.get(response.headers["Location"], headers=BEARER).get_data(as_text=True)
    assert html.escape(ident) in shown and "Queued again" in shown
