"""Shared test fixtures. ``FakeJira`` is the one recording fake of ``connector.protocol.Jira``
that every test above the connector uses."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from connector.boards import orders_by_rank
from connector.errors import JiraError, JiraNotFoundError
from connector.protocol import BoardEntry, BoardSetup, Call
from impact.config import load_config
from impact.model import ImpactConfig, Person, Plan
from impact.ranking import RankCall, apply_calls
from pipeline.delivery_log import DeliveryLog, make_engine, migrate
from pipeline.queue import make_huey
from sandbox import jql as sandbox_jql
from service.settings import Settings
from webhooks import create_app
from webhooks.signature import sign

# The session's checks of itself: no writes outside temporary folders, no hidden skip under CI.
pytest_plugins = ["tests.guard"]

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECRET = "test-webhook-secret"
IMPACT_FIELD = "customfield_10042"
BOT = Person(account_id="557058:bot", display_name="Impact Bot")
# The command line and `make run` read settings from .env; a developer's own must not reach the
# tests (nor the processes they start): a test that wants one names it.
os.environ["ENV_FILE"] = os.devnull


class Requests(list[str]):
    """A fake's record of requests, noting in ``fake.unlimited`` those made outside every time
    limit."""

    def __init__(self, fake: FakeJira) -> None:
        super().__init__()
        self.fake = fake

    def append(self, request: str) -> None:
        super().append(request)
        if self.fake._limit is None:
            self.fake.unlimited.append(request)


class FakeJira:
    """Serves issues from a dict and records every request the product would make.

    Boards (``connector.protocol.Boards``): ``boards`` maps a board id to its issues in rank
    order, each with the fields it has (its labels, else ``fields``); keys in ``done`` are Done;
    the board's filter is ``board_jql``; JQL is evaluated with the sandbox's evaluator, so
    ``ORDER BY Rank`` follows the board's order. Board requests are recorded apart, in
    ``board_requests``. Searches (``search_issues``) run on ``issues`` with the same evaluator;
    ``time_limit`` records the seconds it was given in ``time_limits``; the requests made
    outside every time limit are also in ``unlimited``."""

    def __init__(
        self,
        *,
        field_id: str | None = IMPACT_FIELD,
        account: Person = BOT,
        issues: Mapping[str, Mapping[str, Any]] | None = None,
        groups: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self._field_id = field_id
        self.account = account
        self.issues = dict(issues or {})
        self.groups = dict(groups or {})
        self.unlimited: list[str] = []
        self._limit: float | None = None  # the time limit calls are made in now
        self.requests: list[str] = Requests(self)  # "GET issue/SHOP-1", "PUT issue/SHOP-1", ...
        self.applied: list[Plan] = []
        self.fail_with: JiraError | None = None  # raised by the next write
        self.boards: dict[int, list[BoardEntry]] = {}
        self.done: set[str] = set()
        self.board_jql = "project = SHOP ORDER BY Rank ASC"
        self.schedule = True  # the Schedule issues permission
        self.board_requests: list[str] = Requests(self)  # "GET board/1/issue <jql>", "PUT rank …"
        self.time_limits: list[float] = []

    def field_id(self) -> str | None:
        return self._field_id

    def service_account(self) -> Person:
        return self.account

    def get_issue(self, key: str) -> Mapping[str, Any]:
        self.requests.append(f"GET issue/{key}")
        if key not in self.issues:
            raise JiraNotFoundError("Issue does not exist", status=404)
        return self.issues[key]

    def user_groups(self, person: Person) -> tuple[str, ...]:
        self.requests.append(f"GET groups/{person.account_id or person.name}")
        return self.groups.get(person.account_id or person.name or "", ())

    def apply_plan(self, plan: Plan, *, may_have_asked: bool = True) -> tuple[Call, ...]:
        if plan.is_empty:
            return ()
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error
        self.applied.append(plan)
        calls = []  # in the connector's order: the ask first, then the edit
        if plan.comment and may_have_asked:  # the connector looks for an earlier ask
            self.requests.append(f"GET comments/{plan.issue_key}")
            calls.append(Call("GET", f"/rest/api/2/issue/{plan.issue_key}/comment", 200))
        if plan.comment:
            self.requests.append(f"POST comment/{plan.issue_key}")
            calls.append(Call("POST", f"/rest/api/2/issue/{plan.issue_key}/comment", 201))
        if plan.add_labels or plan.remove_labels or plan.priority or plan.field_value:
            self.requests.append(f"PUT issue/{plan.issue_key}")
            calls.append(Call("PUT", f"/rest/api/2/issue/{plan.issue_key}", 204))
        return tuple(calls)

    def search_issues(
        self, jql: str, *, fields: Sequence[str], limit: int
    ) -> tuple[Mapping[str, Any], ...]:
        self.requests.append(f"GET search {jql}")
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error
        query = sandbox_jql.parse(jql, fields={"External customer impact": IMPACT_FIELD})
        found = [issue for issue in self.issues.values() if query.matches(issue)]
        return tuple(
            {"key": i["key"], "fields": {f: i["fields"].get(f) for f in fields}}
            for i in query.sort(found)[:limit]
        )

    @contextlib.contextmanager
    def time_limit(self, seconds: float) -> Iterator[None]:
        self.time_limits.append(seconds)
        previous, self._limit = self._limit, seconds
        try:
            yield
        finally:
            self._limit = previous

    # ---- boards

    def board_setup(self, board_id: int) -> BoardSetup:
        self.board_requests.append(f"GET board/{board_id}/configuration")
        if board_id not in self.boards:
            raise JiraNotFoundError("Board does not exist", status=404)
        return BoardSetup(board_id, 10019, "10000", self.board_jql, orders_by_rank(self.board_jql))

    def board_issues(
        self,
        board_id: int,
        *,
        jql: str,
        limit: int | None = None,
        fields: Sequence[str] = ("labels",),
    ) -> tuple[BoardEntry, ...]:
        self.board_requests.append(f"GET board/{board_id}/issue {jql}")
        board = self.boards[board_id]
        category = {key: "done" for key in self.done}
        issues = [
            {
                "key": entry.key,
                "id": str(10000 + n),
                "fields": {
                    **(entry.fields or {}),
                    "labels": list(entry.labels),
                    "status": {"statusCategory": {"key": category.get(entry.key, "new")}},
                    "customfield_10019": f"0|{n:06d}:",
                },
            }
            for n, entry in enumerate(board)
        ]
        query = sandbox_jql.parse(jql, fields={"External customer impact": IMPACT_FIELD})
        found = query.sort([issue for issue in issues if query.matches(issue)])
        return tuple(
            BoardEntry(issue["key"], tuple(issue["fields"]["labels"]), issue["fields"])
            for issue in found[:limit]
        )

    def can_schedule(self, project_key: str) -> bool:
        self.board_requests.append(f"GET mypermissions {project_key}")
        return self.schedule

    def rank_issues(self, board_id: int, call: RankCall) -> tuple[Call, ...]:
        self.board_requests.append(f"PUT rank {call.describe()}")
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error
        board = {entry.key: entry for entry in self.boards[board_id]}
        order = apply_calls(list(board), [call])
        self.boards[board_id] = [board[key] for key in order]
        return (Call("PUT", "/rest/agile/1.0/issue/rank", 204),)

    def board_keys(self, board_id: int) -> list[str]:
        return [entry.key for entry in self.boards[board_id]]


def load_payload(name: str, *, fresh: bool = True) -> dict[str, Any]:
    """A delivery from our fixture files; ``fresh``: stamped now, as Jira would send it today
    (the receiver refuses a body older than WEBHOOK_MAX_AGE_SECONDS)."""
    payload: dict[str, Any] = json.loads((FIXTURES / "payloads" / name).read_text())
    if fresh and isinstance(payload.get("timestamp"), int):
        payload["timestamp"] = int(time.time() * 1000)
    return payload


def issue_payload(
    *,
    event: str = "jira:issue_created",
    key: str = "SHOP-311",
    impact: str | None = None,
    labels: tuple[str, ...] = ("checkout",),
    actor: Person | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A Cloud-shaped delivery from our fixture file, varied for one test."""
    payload = copy.deepcopy(load_payload("cloud_issue_created.json"))
    payload["webhookEvent"] = event
    issue = payload["issue"]
    issue["key"] = key
    issue["fields"]["labels"] = list(labels)
    issue["fields"][IMPACT_FIELD] = {"value": impact} if impact else None
    issue["fields"]["issuelinks"] = []
    issue["fields"].update(fields)
    if actor is not None:
        payload["user"] = {"accountId": actor.account_id, "displayName": actor.display_name}
    return payload


@pytest.fixture
def impact_config() -> ImpactConfig:
    return load_config(ROOT / "config" / "impact.toml")


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env(
        {
            "JIRA_URL": "https://jira.invalid",
            "JIRA_EMAIL": "bot@example.com",
            "JIRA_API_TOKEN": "jira-api-token",
            "JIRA_WEBHOOK_SECRET": SECRET,
        }
    )


@pytest.fixture
def store_settings(settings, tmp_path) -> Settings:
    """The settings with the delivery log and the queue in files of this test's own."""
    return replace(
        settings,
        database_url=f"sqlite:///{tmp_path}/var/impact.db",
        queue_path=str(tmp_path / "var" / "queue.db"),
    )


@pytest.fixture
def dlog(store_settings) -> Iterator[DeliveryLog]:
    """The delivery log of ``store_settings``, migrated."""
    engine = make_engine(store_settings.database_url)
    migrate(engine)
    yield DeliveryLog(engine)
    engine.dispose()


@pytest.fixture
def huey(store_settings):
    return make_huey(store_settings)


@pytest.fixture
def jira() -> FakeJira:
    return FakeJira()


@pytest.fixture
def app(settings, impact_config, jira):
    return create_app(
        {"SETTINGS": settings, "IMPACT": impact_config, "JIRA": jira, "TESTING": True}
    )


@pytest.fixture
def client(app):
    return app.test_client()


def post_signed(
    client, payload: Any, *, secret: str = SECRET, headers: Mapping[str, str] | None = None
):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    all_headers = {"Content-Type": "application/json", "X-Hub-Signature": sign(body, secret=secret)}
    all_headers.update(headers or {})
    return client.post("/webhooks/jira", data=body, headers=all_headers)
