"""The Jira sandbox over real HTTP on 127.0.0.1: each endpoint as a client sees it."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from sandbox.app import RunningSandbox, make_server, start_in_thread
from sandbox.hooks import HookDispatcher
from sandbox.seed import SandboxState

IMPACT = "customfield_10042"
RANK = "customfield_10019"
SECRET = "It's a Secret to Everybody"
WAIT = 10  # seconds a test may wait for webhook deliveries to finish


def _start(flavour: str, seed: str = "demo") -> RunningSandbox:
    return start_in_thread(
        flavour=flavour, seed=seed, dispatcher=HookDispatcher(max_retries=3, backoff=0.01)
    )


@pytest.fixture
def cloud() -> Iterator[RunningSandbox]:
    with _start("cloud") as sandbox:
        yield sandbox


@pytest.fixture
def dc() -> Iterator[RunningSandbox]:
    with _start("dc") as sandbox:
        yield sandbox


def api(sandbox: RunningSandbox, user: str = "impact-bot") -> requests.Session:
    """A session authenticated the way the flavour expects (API token / PAT)."""
    session = requests.Session()
    account = sandbox.state.accounts[user]
    if sandbox.state.flavour == "cloud":
        session.auth = (account.email, account.api_token)
    else:
        session.headers["Authorization"] = f"Bearer {account.pat}"
    session.base_url = sandbox.url  # type: ignore[attr-defined]
    return session


def get(s: requests.Session, path: str, **kw: Any) -> requests.Response:
    return s.get(s.base_url + path, **kw)  # type: ignore[attr-defined]


def put(s: requests.Session, path: str, body: Any, **kw: Any) -> requests.Response:
    return s.put(s.base_url + path, json=body, **kw)  # type: ignore[attr-defined]


def post(s: requests.Session, path: str, body: Any, **kw: Any) -> requests.Response:
    return s.post(s.base_url + path, json=body, **kw)  # type: ignore[attr-defined]


def board_keys(sandbox: RunningSandbox, board: int = 1) -> list[str]:
    rows = requests.get(f"{sandbox.url}/_sandbox/board/{board}").json()["issues"]
    return [row["key"] for row in rows]


def control(sandbox: RunningSandbox, path: str, body: Any) -> requests.Response:
    return requests.post(f"{sandbox.url}/_sandbox{path}", json=body)


# ---------------------------------------------------------------- a webhook receiver


class Receiver:
    """A tiny HTTP server on 127.0.0.1 that records deliveries and answers scripted statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def register(
    sandbox: RunningSandbox,
    url: str,
    *,
    jql: str = "",
    secret: str | None = SECRET,
    events: tuple[str, ...] = ("jira:issue_created", "jira:issue_updated", "comment_created"),
) -> requests.Response:
    body: dict[str, Any] = {
        "name": "impact receiver",
        "url": url,
        "events": list(events),
        "filters": {"issue-related-events-section": jql},
        "excludeBody": False,
    }
    if secret:
        body["secret"] = secret
    return post(api(sandbox), "/rest/webhooks/1.0/webhook", body)


def settle(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    answer = requests.get(f"{sandbox.url}/_sandbox/deliveries", params={"wait": WAIT}).json()
    assert answer["idle"], "webhook deliveries did not finish"
    deliveries: list[dict[str, Any]] = answer["deliveries"]
    return deliveries


# ---------------------------------------------------------------- auth and server


@pytest.mark.parametrize(
    ("flavour", "auth", "headers", "status"),
    [
        ("cloud", None, {}, 401),
        ("cloud", ("impact-bot@example.com", "wrong"), {}, 401),
        ("cloud", ("impact-bot@example.com", "sandbox-token"), {}, 200),
        ("cloud", None, {"Authorization": "Bearer sandbox-pat"}, 401),
        ("dc", None, {"Authorization": "Bearer sandbox-pat"}, 200),
        ("dc", None, {"Authorization": "Bearer nope"}, 401),
        ("dc", ("impact-bot@example.com", "sandbox-token"), {}, 401),
    ],
)
def test_authentication_is_jiras(
    flavour: str, auth: Any, headers: dict[str, str], status: int
) -> None:
    with _start(flavour, "empty") as sandbox:
        answer = requests.get(f"{sandbox.url}/rest/api/2/myself", auth=auth, headers=headers)
    assert answer.status_code == status
    if status == 401:
        assert answer.json()["errorMessages"]


@pytest.mark.parametrize(
    ("flavour", "deployment", "major"), [("cloud", "Cloud", 1001), ("dc", "DataCenter", 9)]
)
def test_server_info_names_the_flavour(flavour: str, deployment: str, major: int) -> None:
    with _start(flavour, "empty") as sandbox:
        info = get(api(sandbox), "/rest/api/2/serverInfo").json()
    assert info["deploymentType"] == deployment
    assert info["versionNumbers"][0] == major
    assert info["baseUrl"] == sandbox.url


def test_myself_is_the_service_account_in_each_flavours_shape(
    cloud: RunningSandbox, dc: RunningSandbox
) -> None:
    cloud_me = get(api(cloud), "/rest/api/2/myself").json()
    dc_me = get(api(dc), "/rest/api/2/myself").json()
    assert cloud_me["accountId"] and "name" not in cloud_me
    assert cloud_me["emailAddress"] == "impact-bot@example.com"
    assert dc_me["name"] == "impact-bot" and dc_me["key"] and "accountId" not in dc_me


def test_fields_include_impact_select_and_rank(cloud: RunningSandbox) -> None:
    fields = {f["id"]: f for f in get(api(cloud), "/rest/api/2/field").json()}
    assert fields[IMPACT]["name"] == "External customer impact"
    assert fields[IMPACT]["schema"]["custom"].endswith(":select")
    assert fields[RANK]["name"] == "Rank"
    assert fields[RANK]["schema"]["custom"] == "com.pyxis.greenhopper.jira:gh-lexo-rank"
    assert {"summary", "labels", "priority", "status"} <= set(fields)


def test_priorities_are_the_five_defaults(cloud: RunningSandbox) -> None:
    found = get(api(cloud), "/rest/api/2/priority").json()
    assert [(p["id"], p["name"]) for p in found] == [
        ("1", "Highest"), ("2", "High"), ("3", "Medium"), ("4", "Low"), ("5", "Lowest")
    ]  # fmt: skip


def test_my_permissions_follow_grants(cloud: RunningSandbox) -> None:
    wanted = "BROWSE_PROJECTS,EDIT_ISSUES,ADD_COMMENTS,SCHEDULE_ISSUES"
    path = f"/rest/api/2/mypermissions?permissions={wanted}"
    before = get(api(cloud), path).json()["permissions"]
    control(cloud, "/permissions", {"user": "impact-bot", "revoke": ["SCHEDULE_ISSUES"]})
    after = get(api(cloud), path).json()["permissions"]
    assert all(p["havePermission"] for p in before.values())
    assert after["SCHEDULE_ISSUES"]["havePermission"] is False
    assert after["EDIT_ISSUES"]["havePermission"] is True


def test_user_groups_cloud_by_account_id_and_dc_by_username(
    cloud: RunningSandbox, dc: RunningSandbox
) -> None:
    ana = cloud.state.accounts["ana"].account_id
    cloud_groups = get(api(cloud), f"/rest/api/2/user/groups?accountId={ana}").json()
    dc_user = get(api(dc), "/rest/api/2/user?username=ana&expand=groups").json()
    assert "support" in [g["name"] for g in cloud_groups]
    assert "support" in [g["name"] for g in dc_user["groups"]["items"]]


# ---------------------------------------------------------------- issues


def test_create_then_get_puts_the_issue_at_the_bottom_of_the_board(cloud: RunningSandbox) -> None:
    body = {
        "fields": {
            "project": {"key": "SHOP"},
            "issuetype": {"name": "Bug"},
            "summary": "Checkout button missing",
            "labels": ["web"],
            IMPACT: {"value": "Blocks paying customers"},
        }
    }
    created = post(api(cloud), "/rest/api/2/issue", body)
    assert created.status_code == 201
    key = created.json()["key"]
    issue = get(api(cloud), f"/rest/api/2/issue/{key}").json()
    assert issue["fields"]["summary"] == "Checkout button missing"
    assert issue["fields"][IMPACT]["value"] == "Blocks paying customers"
    assert issue["fields"]["reporter"]["accountId"] == cloud.state.accounts["impact-bot"].account_id
    assert board_keys(cloud)[-1] == key


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fields": {"issuetype": {"name": "Bug"}, "summary": "x"}}, "project"),
        ({"fields": {"project": {"key": "SHOP"}, "summary": "x"}}, "issuetype"),
        ({"fields": {"project": {"key": "SHOP"}, "issuetype": {"name": "Bug"}}}, "summary"),
    ],
)
def test_create_without_a_required_field_is_400(
    cloud: RunningSandbox, body: dict[str, Any], field: str
) -> None:
    answer = post(api(cloud), "/rest/api/2/issue", body)
    assert answer.status_code == 400
    assert field in answer.json()["errors"]


def test_v3_shows_the_description_as_a_document(cloud: RunningSandbox) -> None:
    issue = get(api(cloud), "/rest/api/3/issue/SHOP-3?fields=description").json()
    assert issue["fields"]["description"]["type"] == "doc"
    assert "Since 09:00" in json.dumps(issue["fields"]["description"])


def test_concurrent_edits_are_all_kept(cloud: RunningSandbox) -> None:
    def add(n: int) -> int:
        body = {"update": {"labels": [{"add": f"l{n}"}]}}
        return put(api(cloud), "/rest/api/2/issue/SHOP-6", body).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(add, range(24)))
    labels = get(api(cloud), "/rest/api/2/issue/SHOP-6").json()["fields"]["labels"]
    assert statuses == [204] * 24
    assert sorted(labels) == sorted(f"l{n}" for n in range(24))


def test_missing_issue_is_404_in_jiras_words(cloud: RunningSandbox) -> None:
    answer = get(api(cloud), "/rest/api/2/issue/SHOP-999")
    assert answer.status_code == 404
    assert answer.json() == {
        "errorMessages": ["Issue does not exist or you do not have permission to see it."],
        "errors": {},
    }


@pytest.mark.parametrize(
    ("update", "labels"),
    [
        ([{"add": "needs-customer-impact"}], ["checkout", "needs-customer-impact"]),
        ([{"remove": "checkout"}], []),
        ([{"set": ["a", "b"]}], ["a", "b"]),
        ([{"add": "x"}, {"remove": "checkout"}], ["x"]),
    ],
)
def test_label_operations(cloud: RunningSandbox, update: list[Any], labels: list[str]) -> None:
    answer = put(
        api(cloud), "/rest/api/2/issue/SHOP-9?notifyUsers=false", {"update": {"labels": update}}
    )
    assert answer.status_code == 204
    assert get(api(cloud), "/rest/api/2/issue/SHOP-9").json()["fields"]["labels"] == labels


def test_label_with_a_space_is_400_and_changes_nothing(cloud: RunningSandbox) -> None:
    answer = put(
        api(cloud), "/rest/api/2/issue/SHOP-9", {"update": {"labels": [{"add": "two words"}]}}
    )
    assert answer.status_code == 400
    assert "labels" in answer.json()["errors"]
    assert get(api(cloud), "/rest/api/2/issue/SHOP-9").json()["fields"]["labels"] == ["checkout"]


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("priority", {"name": "Highest"}, "Highest"),
        ("priority", {"id": "4"}, "Low"),
        (
            IMPACT,
            {"value": "Indirect: feeds customer-facing work"},
            "Indirect: feeds customer-facing work",
        ),
        (IMPACT, {"id": "10103"}, "None: internal preference"),
        (IMPACT, None, None),
    ],
)
def test_priority_and_select_by_name_value_or_id(
    cloud: RunningSandbox, field: str, value: Any, shown: str | None
) -> None:
    assert (
        put(api(cloud), "/rest/api/2/issue/SHOP-3", {"fields": {field: value}}).status_code == 204
    )
    stored = get(api(cloud), "/rest/api/2/issue/SHOP-3").json()["fields"][field]
    assert (stored and (stored.get("name") or stored.get("value"))) == shown


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fields": {"priority": {"name": "Urgent"}}}, "priority"),
        ({"fields": {IMPACT: {"value": "Somewhat"}}}, IMPACT),
        ({"fields": {"customfield_99999": "x"}}, "customfield_99999"),
        ({"fields": {RANK: "0|a:"}}, RANK),
        ({"update": {"summary": [{"add": "x"}]}}, "summary"),
        ({"fields": {"labels": ["a"]}, "update": {"labels": [{"add": "b"}]}}, "labels"),
    ],
)
def test_invalid_edits_are_400_naming_the_field(
    cloud: RunningSandbox, body: dict[str, Any], field: str
) -> None:
    answer = put(api(cloud), "/rest/api/2/issue/SHOP-1", body)
    assert answer.status_code == 400
    assert set(answer.json()["errors"]) == {field}


def test_field_off_the_edit_screen_is_400(cloud: RunningSandbox) -> None:
    control(cloud, "/projects/SHOP/screen", {"remove": [IMPACT]})
    answer = put(api(cloud), "/rest/api/2/issue/SHOP-1", {"fields": {IMPACT: {"id": "10100"}}})
    meta = get(api(cloud), "/rest/api/2/issue/SHOP-1/editmeta").json()["fields"]
    assert answer.status_code == 400
    assert "not on the appropriate screen" in answer.json()["errors"][IMPACT]
    assert IMPACT not in meta


def test_editmeta_lists_operations_and_options(cloud: RunningSandbox) -> None:
    meta = get(api(cloud), "/rest/api/2/issue/SHOP-1/editmeta").json()["fields"]
    assert set(meta["labels"]["operations"]) == {"add", "set", "remove"}
    assert [o["value"] for o in meta[IMPACT]["allowedValues"]] == [
        "Blocks paying customers",
        "Degrades paying customers' experience",
        "Indirect: feeds customer-facing work",
        "None: internal preference",
    ]


def test_comments_are_added_and_paged(cloud: RunningSandbox) -> None:
    for text in ("first", "second", "third"):
        assert (
            post(api(cloud), "/rest/api/2/issue/SHOP-1/comment", {"body": text}).status_code == 201
        )
    page = get(api(cloud), "/rest/api/2/issue/SHOP-1/comment?startAt=1&maxResults=1").json()
    assert (page["startAt"], page["maxResults"], page["total"]) == (1, 1, 3)
    assert [c["body"] for c in page["comments"]] == ["second"]


def test_empty_comment_is_400(cloud: RunningSandbox) -> None:
    assert post(api(cloud), "/rest/api/2/issue/SHOP-1/comment", {"body": " "}).status_code == 400


def test_issue_properties_are_stored(cloud: RunningSandbox) -> None:
    path = "/rest/api/2/issue/SHOP-1/properties/impact.state"
    assert get(api(cloud), path).status_code == 404
    assert put(api(cloud), path, {"level": "blocking"}).status_code == 201
    assert put(api(cloud), path, {"level": "degraded"}).status_code == 200
    assert get(api(cloud), path).json() == {"key": "impact.state", "value": {"level": "degraded"}}


# ---------------------------------------------------------------- search


def test_cloud_search_jql_pages_with_tokens(cloud: RunningSandbox) -> None:
    keys: list[str] = []
    token = None
    for _ in range(10):  # 12 SHOP issues in pages of 5: three pages
        params = {"jql": "project = SHOP", "maxResults": 5, "fields": "key"}
        page = get(
            api(cloud),
            "/rest/api/2/search/jql",
            params=params | ({"nextPageToken": token} if token else {}),
        ).json()
        keys += [i["key"] for i in page["issues"]]
        token = page.get("nextPageToken")
        if page["isLast"]:
            break
    assert token is None
    assert keys == [f"SHOP-{n}" for n in range(1, 13)]


def test_cloud_search_jql_returns_only_ids_by_default(cloud: RunningSandbox) -> None:
    page = post(api(cloud), "/rest/api/2/search/jql", {"jql": "key = SHOP-3"}).json()
    assert page["issues"] == [{"id": cloud.state.issues["SHOP-3"]["id"]}]
    assert "nextPageToken" not in page and page["isLast"] is True


def test_cloud_search_jql_by_impact_field_name(cloud: RunningSandbox) -> None:
    jql = '"External customer impact" = "Blocks paying customers"'
    page = get(
        api(cloud), "/rest/api/2/search/jql", params={"jql": jql, "fields": "summary"}
    ).json()
    assert [i["key"] for i in page["issues"]] == ["SHOP-3"]


def test_cloud_old_search_is_gone(cloud: RunningSandbox) -> None:
    answer = get(api(cloud), "/rest/api/2/search", params={"jql": "project = SHOP"})
    assert answer.status_code == 410
    assert "search/jql" in answer.json()["errorMessages"][0]


def test_dc_search_pages_with_start_at_and_total(dc: RunningSandbox) -> None:
    page = get(
        api(dc),
        "/rest/api/2/search",
        params={"jql": "project = SHOP", "startAt": 10, "maxResults": 5},
    ).json()
    assert (page["startAt"], page["maxResults"], page["total"]) == (10, 5, 12)
    assert [i["key"] for i in page["issues"]] == ["SHOP-11", "SHOP-12"]
    assert (
        get(api(dc), "/rest/api/2/search/jql", params={"jql": "project = SHOP"}).status_code == 404
    )


@pytest.mark.parametrize(
    "jql", ["order by key", "", "assignee = currentUser()", "project = SHOP AND"]
)
def test_unbounded_or_unsupported_jql_is_400(cloud: RunningSandbox, jql: str) -> None:
    answer = get(api(cloud), "/rest/api/2/search/jql", params={"jql": jql})
    assert answer.status_code == 400
    assert answer.json()["errorMessages"]


# ---------------------------------------------------------------- boards and rank


def test_boards_are_listed_and_filtered_by_project(cloud: RunningSandbox) -> None:
    every = get(api(cloud), "/rest/agile/1.0/board").json()
    shop = get(api(cloud), "/rest/agile/1.0/board?projectKeyOrId=SHOP").json()
    assert every["total"] == 2
    assert [(b["id"], b["name"]) for b in shop["values"]] == [(1, "SHOP board")]


def test_board_configuration_names_filter_and_rank_field(cloud: RunningSandbox) -> None:
    config = get(api(cloud), "/rest/agile/1.0/board/1/configuration").json()
    assert config["ranking"] == {"rankCustomFieldId": 10019}
    board_filter = get(api(cloud), f"/rest/api/2/filter/{config['filter']['id']}").json()
    assert board_filter["jql"] == "project = SHOP ORDER BY Rank ASC"
    assert get(api(cloud), "/rest/agile/1.0/board/99/configuration").status_code == 404


def test_board_issues_come_in_rank_order_and_jql_narrows_them(cloud: RunningSandbox) -> None:
    page = get(api(cloud), "/rest/agile/1.0/board/1/issue", params={"maxResults": 50}).json()
    narrowed = get(
        api(cloud), "/rest/agile/1.0/board/1/issue", params={"jql": "issuetype = Bug"}
    ).json()
    ranks = [i["fields"][RANK] for i in page["issues"]]
    assert [i["key"] for i in page["issues"]] == board_keys(cloud)
    assert ranks == sorted(ranks) and page["total"] == 12
    assert [i["key"] for i in narrowed["issues"]] == [
        "SHOP-1",
        "SHOP-4",
        "SHOP-3",
        "SHOP-9",
        "SHOP-7",
    ]


@pytest.mark.parametrize(
    ("body", "expected_start"),
    [
        (
            {"issues": ["SHOP-3", "SHOP-5"], "rankBeforeIssue": "SHOP-6"},
            ["SHOP-3", "SHOP-5", "SHOP-6", "SHOP-2"],
        ),
        ({"issues": ["SHOP-3"], "rankAfterIssue": "SHOP-6"}, ["SHOP-6", "SHOP-3", "SHOP-2"]),
        (
            {"issues": ["SHOP-6"], "rankAfterIssue": "SHOP-2", "rankCustomFieldId": 10019},
            ["SHOP-2", "SHOP-6", "SHOP-1"],
        ),
    ],
)
def test_rank_before_or_after(
    cloud: RunningSandbox, body: dict[str, Any], expected_start: list[str]
) -> None:
    answer = put(api(cloud), "/rest/agile/1.0/issue/rank", body)
    assert answer.status_code == 204
    order = board_keys(cloud)
    assert order[: len(expected_start)] == expected_start
    assert sorted(order) == sorted(f"SHOP-{n}" for n in range(1, 13))


@pytest.mark.parametrize(
    "body",
    [
        {"issues": [f"SHOP-{n % 12 + 1}" for n in range(51)], "rankBeforeIssue": "SUP-1"},
        {"issues": ["SHOP-3"], "rankBeforeIssue": "SHOP-6", "rankAfterIssue": "SHOP-2"},
        {"issues": ["SHOP-3"]},
        {"issues": ["SHOP-3"], "rankBeforeIssue": "SHOP-6", "rank": "top"},
        {"issues": ["SHOP-3"], "rankBeforeIssue": "SHOP-6", "rankCustomFieldId": 10020},
        {"issues": ["SHOP-3"], "rankBeforeIssue": "SHOP-3"},
        {"issues": ["SHOP-404"], "rankBeforeIssue": "SHOP-3"},
    ],
)
def test_invalid_rank_requests_are_400(cloud: RunningSandbox, body: dict[str, Any]) -> None:
    before = board_keys(cloud)
    assert put(api(cloud), "/rest/agile/1.0/issue/rank", body).status_code == 400
    assert board_keys(cloud) == before


def test_rank_partial_failure_is_207_with_entries(cloud: RunningSandbox) -> None:
    control(cloud, "/faults", {"rank_fail": ["SHOP-5"]})
    answer = put(
        api(cloud),
        "/rest/agile/1.0/issue/rank",
        {"issues": ["SHOP-3", "SHOP-5"], "rankBeforeIssue": "SHOP-6"},
    )
    assert answer.status_code == 207
    entries = {e["issueKey"]: e for e in answer.json()["entries"]}
    assert entries["SHOP-3"]["status"] == 200
    assert entries["SHOP-5"]["status"] == 503 and entries["SHOP-5"]["errors"]
    assert board_keys(cloud)[:2] == ["SHOP-3", "SHOP-6"]
    # the failure was used up: the retry succeeds
    retry = put(
        api(cloud), "/rest/agile/1.0/issue/rank", {"issues": ["SHOP-5"], "rankAfterIssue": "SHOP-3"}
    )
    assert retry.status_code == 204
    assert board_keys(cloud)[:3] == ["SHOP-3", "SHOP-5", "SHOP-6"]


def test_rank_without_schedule_permission_is_403(cloud: RunningSandbox) -> None:
    control(cloud, "/permissions", {"user": "impact-bot", "revoke": ["SCHEDULE_ISSUES"]})
    answer = put(
        api(cloud),
        "/rest/agile/1.0/issue/rank",
        {"issues": ["SHOP-3"], "rankBeforeIssue": "SHOP-6"},
    )
    assert answer.status_code == 403
    assert answer.json()["errorMessages"]


# ---------------------------------------------------------------- webhooks


def test_registered_webhook_is_signed_and_verifiable(
    cloud: RunningSandbox, receiver: Receiver
) -> None:
    registered = register(cloud, receiver.url)
    assert registered.status_code == 201
    assert registered.json()["isSigned"] is True and registered.json()["self"]
    control(cloud, "/issues", {"as": "ana", "summary": "Pay button greyed out", "issuetype": "Bug"})
    settle(cloud)
    (delivery,) = receiver.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), delivery["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(delivery["headers"]["X-Hub-Signature"], expected)
    assert delivery["headers"]["X-Atlassian-Webhook-Identifier"]
    assert delivery["headers"]["X-Atlassian-Webhook-Flow"] == "Primary"
    assert "X-Atlassian-Webhook-Retry" not in delivery["headers"]
    payload = json.loads(delivery["body"])
    assert payload["webhookEvent"] == "jira:issue_created"
    assert payload["user"]["accountId"] == cloud.state.accounts["ana"].account_id


def test_unsigned_webhook_has_no_signature(cloud: RunningSandbox, receiver: Receiver) -> None:
    assert register(cloud, receiver.url, secret=None).json()["isSigned"] is False
    control(cloud, "/issues", {"summary": "Anything"})
    settle(cloud)
    assert "X-Hub-Signature" not in receiver.requests[0]["headers"]


def test_delivery_is_retried_after_500_with_the_same_identifier(cloud: RunningSandbox) -> None:
    receiver = Receiver(statuses=[500, 503, 200])
    try:
        register(cloud, receiver.url)
        control(cloud, "/issues", {"summary": "Retry me"})
        (record,) = settle(cloud)
    finally:
        receiver.close()
    assert (record["state"], record["attempts"], record["statuses"]) == (
        "delivered",
        3,
        [500, 503, 200],
    )
    identifiers = {r["headers"]["X-Atlassian-Webhook-Identifier"] for r in receiver.requests}
    retries = [r["headers"].get("X-Atlassian-Webhook-Retry") for r in receiver.requests]
    assert len(identifiers) == 1
    assert retries == [None, "1", "2"]


def test_delivery_is_not_retried_after_a_plain_4xx(cloud: RunningSandbox) -> None:
    receiver = Receiver(statuses=[401])
    try:
        register(cloud, receiver.url)
        control(cloud, "/issues", {"summary": "Refused"})
        (record,) = settle(cloud)
    finally:
        receiver.close()
    assert (record["state"], record["attempts"]) == ("rejected", 1)


def test_edits_echo_as_updates_with_changelog(cloud: RunningSandbox, receiver: Receiver) -> None:
    register(cloud, receiver.url)
    put(
        api(cloud),
        "/rest/api/2/issue/SHOP-1",
        {
            "update": {"labels": [{"add": "needs-customer-impact"}]},
            "fields": {"priority": {"name": "High"}},
        },
    )
    control(cloud, "/issues/SHOP-1/edit", {"as": "ana", "impact": "Blocks paying customers"})
    put(
        api(cloud),
        "/rest/agile/1.0/issue/rank",
        {"issues": ["SHOP-1"], "rankBeforeIssue": "SHOP-6"},
    )
    put(
        api(cloud),
        "/rest/agile/1.0/issue/rank",
        {"issues": ["SHOP-1"], "rankAfterIssue": "SHOP-11"},
    )
    settle(cloud)
    updates = [p for p in receiver.payloads() if p["webhookEvent"] == "jira:issue_updated"]
    items = [p["changelog"]["items"] for p in updates]
    bot = cloud.state.accounts["impact-bot"].account_id
    assert [p["user"]["accountId"] for p in updates] == [
        bot, cloud.state.accounts["ana"].account_id, bot, bot
    ]  # fmt: skip
    labels = next(i for i in items[0] if i["field"] == "labels")
    assert (labels["fromString"], labels["toString"]) == ("", "needs-customer-impact")
    priority = next(i for i in items[0] if i["field"] == "priority")
    assert (priority["fromString"], priority["toString"]) == ("Medium", "High")
    (impact,) = items[1]
    assert impact == {
        "field": "External customer impact", "fieldtype": "custom", "fieldId": IMPACT,
        "from": None, "fromString": None, "to": "10100", "toString": "Blocks paying customers",
    }  # fmt: skip
    assert [(i[0]["field"], i[0]["toString"]) for i in items[2:]] == [
        ("Rank", "Ranked higher"), ("Rank", "Ranked lower")
    ]  # fmt: skip
    assert all(p["issue"]["key"] == "SHOP-1" for p in updates)


def test_dc_payloads_use_names_and_omit_field_id(dc: RunningSandbox, receiver: Receiver) -> None:
    register(dc, receiver.url)
    put(api(dc), "/rest/api/2/issue/SHOP-1", {"update": {"labels": [{"add": "x"}]}})
    settle(dc)
    (payload,) = receiver.payloads()
    assert payload["user"]["name"] == "impact-bot" and "accountId" not in payload["user"]
    assert "fieldId" not in payload["changelog"]["items"][0]


def test_comments_send_comment_created(cloud: RunningSandbox, receiver: Receiver) -> None:
    register(cloud, receiver.url, events=("comment_created",))
    post(api(cloud), "/rest/api/2/issue/SHOP-2/comment", {"body": "Which pens exactly?"})
    settle(cloud)
    (payload,) = receiver.payloads()
    assert payload["comment"]["body"] == "Which pens exactly?"
    assert payload["issue"]["key"] == "SHOP-2"


def test_webhook_jql_filter_applies(cloud: RunningSandbox, receiver: Receiver) -> None:
    register(cloud, receiver.url, jql="project = SUP")
    control(cloud, "/issues", {"project": "SHOP", "summary": "not for this hook"})
    control(cloud, "/issues", {"project": "SUP", "summary": "for this hook"})
    settle(cloud)
    assert [p["issue"]["fields"]["summary"] for p in receiver.payloads()] == ["for this hook"]


def test_webhooks_are_listed_and_deleted(cloud: RunningSandbox, receiver: Receiver) -> None:
    hook = register(cloud, receiver.url).json()
    listed = get(api(cloud), "/rest/webhooks/1.0/webhook").json()
    assert [h["self"] for h in listed] == [hook["self"]]
    assert api(cloud).delete(hook["self"]).status_code == 204
    assert get(api(cloud), "/rest/webhooks/1.0/webhook").json() == []


def test_webhook_to_a_non_loopback_url_is_refused(cloud: RunningSandbox) -> None:
    answer = register(cloud, "https://example.com/hook")
    assert answer.status_code == 400
    assert "url" in answer.json()["errors"]


# ---------------------------------------------------------------- faults, log, control


def test_fault_429_with_retry_after_then_normal(cloud: RunningSandbox) -> None:
    control(
        cloud,
        "/faults",
        {"method": "GET", "path": "/issue/SHOP-1$", "status": 429, "retry_after": 3},
    )
    limited = get(api(cloud), "/rest/api/2/issue/SHOP-1")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "3"
    assert limited.headers["X-RateLimit-Reset"].endswith("Z")
    assert get(api(cloud), "/rest/api/2/issue/SHOP-1").status_code == 200


@pytest.mark.parametrize("status", [503, 500, 409])
def test_faults_answer_their_status_times_times(cloud: RunningSandbox, status: int) -> None:
    control(cloud, "/faults", {"path": "/rest/api/2/serverInfo", "status": status, "times": 2})
    seen = [get(api(cloud), "/rest/api/2/serverInfo").status_code for _ in range(3)]
    assert seen == [status, status, 200]


def test_delay_only_fault_still_answers(cloud: RunningSandbox) -> None:
    control(cloud, "/faults", {"path": "/serverInfo$", "delay_ms": 20})
    assert get(api(cloud), "/rest/api/2/serverInfo").status_code == 200
    assert requests.get(f"{cloud.url}/_sandbox/faults").json()["faults"] == []


# ---------------------------------------------------------------- a busy Jira


def test_the_burst_limit_answers_429_as_jira_does_and_counts_no_refused_call(
    cloud: RunningSandbox,
) -> None:
    assert control(cloud, "/faults", {"limits": {"rate": 0.5, "burst": 2}}).status_code == 201
    bot = api(cloud)
    first, second, third = (get(bot, "/rest/api/2/serverInfo") for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert second.headers["X-RateLimit-NearLimit"] == "true"  # the bucket is empty
    assert third.headers["RateLimit-Reason"] == "jira-burst-based"
    assert int(third.headers["Retry-After"]) >= 1
    assert third.json() == {"errorMessages": ["Rate limit exceeded."], "errors": {}}


def test_the_per_issue_write_limit_holds_back_writes_to_that_issue_only(
    cloud: RunningSandbox,
) -> None:
    limits = {"issue_writes": 1, "issue_window_s": 60}
    control(cloud, "/faults", {"limits": limits})
    bot = api(cloud)
    body = {"update": {"labels": [{"add": "x"}]}}
    assert put(bot, "/rest/api/2/issue/SHOP-1", body).status_code == 204
    refused = put(bot, "/rest/api/2/issue/SHOP-1", body)
    assert refused.status_code == 429
    assert refused.headers["RateLimit-Reason"] == "jira-per-issue-on-write"
    assert put(bot, "/rest/api/2/issue/SHOP-2", body).status_code == 204
    assert get(bot, "/rest/api/2/issue/SHOP-1").status_code == 200  # reads are not writes


def test_every_call_waits_the_latency_and_limits_are_cleared_with_the_faults(
    cloud: RunningSandbox,
) -> None:
    control(cloud, "/faults", {"limits": {"latency_ms": 60}})
    assert requests.get(f"{cloud.url}/_sandbox/faults").json()["limits"]["latency_ms"] == 60
    since = cloud.state.last_call
    get(api(cloud), "/rest/api/2/serverInfo")
    (call,) = cloud.state.calls_since(since)
    assert call["ms"] >= 60
    requests.delete(f"{cloud.url}/_sandbox/faults")
    assert requests.get(f"{cloud.url}/_sandbox/faults").json()["limits"]["latency_ms"] == 0


@pytest.mark.parametrize(
    "limits", [{"rate": -1}, {"latency_ms": 10**6}, {"issue_writes": 0}, {"speed": 3}]
)
def test_bad_limits_are_400(cloud: RunningSandbox, limits: dict[str, Any]) -> None:
    assert control(cloud, "/faults", {"limits": limits}).status_code == 400


def test_bad_fault_is_400(cloud: RunningSandbox) -> None:
    assert control(cloud, "/faults", {"path": "x", "status": 418}).status_code == 400


def test_calls_are_logged_with_user_and_body(cloud: RunningSandbox) -> None:
    last = requests.get(f"{cloud.url}/_sandbox/calls").json()["last"]
    put(
        api(cloud),
        "/rest/api/2/issue/SHOP-1?notifyUsers=false",
        {"update": {"labels": [{"add": "x"}]}},
    )
    (call,) = requests.get(f"{cloud.url}/_sandbox/calls", params={"since": last}).json()["calls"]
    assert (call["method"], call["path"], call["status"], call["user"]) == (
        "PUT", "/rest/api/2/issue/SHOP-1", 204, "impact-bot"
    )  # fmt: skip
    assert call["query"] == {"notifyUsers": "false"}
    assert call["json"] == {"update": {"labels": [{"add": "x"}]}}


def test_reset_brings_the_seed_back(cloud: RunningSandbox) -> None:
    control(cloud, "/issues", {"summary": "temporary"})
    assert control(cloud, "/reset", {"seed": "empty"}).status_code == 200
    assert board_keys(cloud) == []
    control(cloud, "/reset", {"seed": "demo"})
    assert len(board_keys(cloud)) == 12


def test_demo_seed_has_mixed_impact_in_mixed_order(cloud: RunningSandbox) -> None:
    rows = requests.get(f"{cloud.url}/_sandbox/board/1").json()["issues"]
    impacts = [r["impact"] for r in rows]
    assert None in impacts and "Blocks paying customers" in impacts
    assert impacts.index("None: internal preference") < impacts.index("Blocks paying customers")
    links = cloud.state.issues["SHOP-3"]["fields"]["issuelinks"]
    assert links[0]["outwardIssue"]["key"] == "SUP-1"


def test_non_loopback_hosts_are_refused() -> None:
    with pytest.raises(ValueError, match="loopback"):
        make_server(SandboxState(seed="empty"), host="0.0.0.0")


def test_runner_prints_its_url_and_serves() -> None:
    command = [sys.executable, "-m", "sandbox", "--port", "0", "--flavour", "dc", "--seed", "empty"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("SANDBOX_URL=http://127.0.0.1:")
        url = line.split("=", 1)[1]
        assert requests.get(f"{url}/_sandbox/health", timeout=5).json()["flavour"] == "dc"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_runner_refuses_a_public_host() -> None:
    command = [sys.executable, "-m", "sandbox", "--host", "0.0.0.0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "loopback" in done.stderr


# ---------------------------------------------------------------- issues resolved in the past


@pytest.mark.parametrize("flavour", ["cloud", "dc"])
def test_issues_created_and_resolved_at_given_times_are_found_by_their_resolution_date(flavour):
    with _start(flavour, seed="empty") as sandbox:
        made = control(
            sandbox,
            "/issues/bulk",
            {
                "issues": [
                    {"summary": "Old outage", "labels": ["customer-impact-blocking"],
                     "created": "2024-01-02T09:00:00+00:00", "resolved": "2024-01-03T10:30:00Z"},
                    {"summary": "Pens", "labels": ["internal-preference"],
                     "resolved": "2999-01-01T00:00:00"},
                    {"summary": "Still open"},
                ]
            },
        )  # fmt: skip
        assert made.status_code == 201, made.text
        old, pens, still_open = made.json()["keys"]
        session = api(sandbox)
        path = "/rest/api/2/search/jql" if flavour == "cloud" else "/rest/api/2/search"
        found = get(
            session,
            path,
            params={
                "jql": 'project = SHOP AND resolutiondate >= "2024-01-01" ORDER BY resolved ASC',
                "fields": "labels,resolutiondate,created,status,resolution",
            },
        )
        assert found.status_code == 200, found.text
        issues = {i["key"]: i["fields"] for i in found.json()["issues"]}
        assert list(issues) == [old, pens]
        assert issues[old]["resolutiondate"] == "2024-01-03T10:30:00.000+0000"
        assert issues[old]["created"] == "2024-01-02T09:00:00.000+0000"
        assert issues[old]["status"]["statusCategory"]["key"] == "done"
        assert issues[old]["resolution"]["name"] == "Done"
        assert issues[pens]["labels"] == ["internal-preference"]
        recent = get(session, path, params={"jql": "resolved >= -1w AND project = SHOP"})
        assert [i["id"] for i in recent.json()["issues"]] == [sandbox.state.issues[pens]["id"]]
        shown = get(session, f"/rest/api/2/issue/{still_open}").json()["fields"]
        assert shown.get("resolutiondate") is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"issues": []}, "issues must be a list of 1 to 1000 issue bodies"),
        ({"issues": ["SHOP-1"]}, "each issue body must be a JSON object"),
        ({"issues": [{"resolved": "last Tuesday"}]}, "resolved must be an ISO 8601 time"),
    ],
)
def test_bulk_creation_refuses_bad_bodies(body, message):
    with _start("cloud", seed="empty") as sandbox:
        answer = control(sandbox, "/issues/bulk", body)
        assert answer.status_code == 400
        assert message in answer.json()["errorMessages"][0]
        assert sandbox.state.issues == {}
