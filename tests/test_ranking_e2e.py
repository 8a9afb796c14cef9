"""Board ranking end to end: the Jira sandbox in its own process on 127.0.0.1, the real connector
over HTTP, and the ``rerank`` command as an admin runs it. Assertions read the sandbox's board
(its rank order) and its request log (every rank call the product sent, with its body)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from commands.rerank import rerank_command
from connector.client import JiraConnector
from connector.errors import JiraForbiddenError
from impact.config import load_config
from impact.model import FieldRef, ProjectConfig
from impact.ranking import PINNED_LABEL, Pending
from pipeline.ranking import BoardJudge, place_waiting, read_board
from sandbox.stack import Stack, data_paths

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "impact.toml"
RANK_PATH = "/rest/agile/1.0/issue/rank"
LABEL = {
    "blocking": "customer-impact-blocking",
    "degraded": "customer-impact-degraded",
    "indirect": "customer-impact-indirect",
    "missing": "needs-customer-impact",
    "none": "internal-preference",
}
OPTION = {
    "blocking": "Blocks paying customers",
    "degraded": "Degrades paying customers' experience",
    "indirect": "Indirect: feeds customer-facing work",
    "none": "None: internal preference",
}
CREDENTIALS = {
    "cloud": {"JIRA_EMAIL": "impact-bot@example.com", "JIRA_API_TOKEN": "sandbox-token"},
    "dc": {"JIRA_PAT": "sandbox-pat"},
}


class Sandbox(Stack):
    """The sandbox alone (no web or worker: the tests call the connector and the command), and
    what these tests ask of it."""

    def __init__(self, workdir: Path, flavour: str) -> None:
        super().__init__(workdir, flavour=flavour, seed="empty", processes=())

    @property
    def url(self) -> str:
        return self.sandbox_url

    def control(self, method: str, path: str, body: Any = None) -> Any:
        return super().control(method, path, json=body)

    def env(self) -> dict[str, str]:
        return {
            "JIRA_URL": self.url,
            "JIRA_WEBHOOK_SECRET": "e2e-test-secret",
            "IMPACT_CONFIG": str(CONFIG),
            **CREDENTIALS[self.flavour],
            **data_paths(self.workdir),  # rerank --apply holds the board's lock in the queue's
        }

    def connector(self) -> JiraConnector:
        settings = self.env()
        return JiraConnector(
            self.url,
            field=FieldRef(name="External customer impact"),
            email=settings.get("JIRA_EMAIL"),
            api_token=settings.get("JIRA_API_TOKEN"),
            pat=settings.get("JIRA_PAT"),
        )

    def seed(self, bands: list[str], *, pinned: tuple[int, ...] = (), done: tuple[int, ...] = ()):
        """Issues on the SHOP board in this order, each with the impact of its band and its
        label, as triage leaves them ("" for an issue never triaged: no impact, no label)."""
        keys = []
        for n, band in enumerate(bands):
            labels = [LABEL[band]] if band else ["checkout"]
            labels += [PINNED_LABEL] if n in pinned else []
            fields = {"summary": f"issue {n}", "labels": labels, "impact": OPTION.get(band)}
            answer = self.control("POST", "/issues", fields)
            keys.append(answer["key"])
            if n in done:
                self.control("POST", f"/issues/{answer['key']}/edit", {"status": "Done"})
        return keys

    def board(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "/board/1")["issues"])

    def keys(self) -> list[str]:
        return [row["key"] for row in self.board()]

    def rank_bodies(self, since: int) -> list[dict[str, Any]]:
        calls = self.control("GET", f"/calls?since={since}")["calls"]
        return [c["json"] for c in calls if c["method"] == "PUT" and c["path"] == RANK_PATH]

    def rerank(self, *args: str) -> Result:
        return CliRunner().invoke(rerank_command, ["--board", "1", *args], env=self.env())


@pytest.fixture(scope="module", params=["cloud", "dc"])
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.mktemp("ranking"), request.param) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(running: Sandbox) -> Sandbox:
    running.control("POST", "/reset", {"seed": "empty"})
    return running


@pytest.fixture(scope="module")
def shop() -> ProjectConfig:
    found = load_config(CONFIG).for_project("SHOP")
    assert found is not None and found.project.board == 1
    return found


def open_bands(sandbox: Sandbox, shop: ProjectConfig) -> list[tuple[str, str]]:
    """(key, band) of the board's open, unpinned issues, top to bottom, as triage judges them."""
    review = read_board(1, load_config(CONFIG), sandbox.connector())
    return [(j.issue.key, j.band) for j in review.issues if not j.pinned]


OUT_OF_ORDER = ["none", "blocking", "indirect", "none", "degraded", "", "blocking", "none",
                "indirect", "degraded", "missing", "blocking"]  # fmt: skip
ORDER = ["blocking", "degraded", "indirect", "missing", "none"]


def test_rerank_shows_the_plan_then_applies_it(sandbox: Sandbox, shop: ProjectConfig) -> None:
    keys = sandbox.seed(OUT_OF_ORDER, pinned=(3,), done=(7,))
    before = sandbox.keys()
    since = sandbox.last_call()

    shown = sandbox.rerank()
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("Rerank plan: ")
    assert "Dry run: nothing was changed" in shown.output
    assert sandbox.keys() == before
    assert sandbox.rank_bodies(since) == []

    bands_before = [(k, b) for k, b in open_bands(sandbox, shop)]
    applied = sandbox.rerank("--apply")
    assert applied.exit_code == 0, applied.output
    assert "Applied: " in applied.output
    after = open_bands(sandbox, shop)
    # Band order, and inside each band the order the team had.
    assert after == sorted(bands_before, key=lambda kb: ORDER.index(kb[1]))
    sent = sandbox.rank_bodies(since)
    assert sent and all(body["rankCustomFieldId"] == 10019 for body in sent)
    moved = {key for body in sent for key in body["issues"]}
    assert keys[3] not in moved and keys[7] not in moved  # pinned and Done stay where they were
    again = sandbox.rerank()
    assert "already in band order" in again.output


def test_a_207_is_retried_for_the_failed_issues_then_reported(
    sandbox: Sandbox, shop: ProjectConfig
) -> None:
    bands = ["blocking", "none", "none", "blocking", "blocking", "degraded"]
    keys = sandbox.seed(bands)  # the two "none" issues go after the last, in one call
    sandbox.control("POST", "/faults", {"rank_fail": [keys[2]], "times": 1})
    since = sandbox.last_call()
    applied = sandbox.rerank("--apply")
    assert applied.exit_code == 0, applied.output
    assert sandbox.rank_bodies(since) == [
        {"issues": [keys[1], keys[2]], "rankAfterIssue": keys[5], "rankCustomFieldId": 10019},
        {"issues": [keys[2]], "rankAfterIssue": keys[1], "rankCustomFieldId": 10019},  # the retry
    ]
    assert sandbox.keys() == [keys[0], keys[3], keys[4], keys[5], keys[1], keys[2]]

    sandbox.control("POST", "/reset", {"seed": "empty"})
    keys = sandbox.seed(bands)
    sandbox.control("POST", "/faults", {"rank_fail": [keys[2]], "times": 2})
    failed = sandbox.rerank("--apply")
    assert failed.exit_code == 1
    assert f"could not be ranked, even on a retry: {keys[2]} (JIRA Agile cannot" in failed.output
    assert sandbox.keys()[-2:] == [keys[5], keys[1]]  # what did not fail moved


def test_without_schedule_issues_the_rerank_is_refused(sandbox: Sandbox) -> None:
    sandbox.seed(["none", "blocking"])
    sandbox.control("POST", "/permissions", {"user": "impact-bot", "revoke": ["SCHEDULE_ISSUES"]})
    since = sandbox.last_call()
    refused = sandbox.rerank("--apply")
    assert refused.exit_code == 1
    assert "board 1 cannot be ranked" in refused.output
    assert "lacks the Schedule issues permission in project SHOP" in refused.output
    assert sandbox.rank_bodies(since) == []


def test_a_rank_call_answered_403_names_the_permission(sandbox: Sandbox) -> None:
    keys = sandbox.seed(["none", "blocking"])
    sandbox.control("POST", "/permissions", {"user": "impact-bot", "revoke": ["SCHEDULE_ISSUES"]})
    from impact.ranking import RankCall

    with pytest.raises(JiraForbiddenError) as caught:
        sandbox.connector().rank_issues(1, RankCall((keys[1],), before=keys[0]))
    assert "grant it the Schedule issues permission" in str(caught.value)
    assert caught.value.status == 403


def test_a_board_filter_not_ordered_by_rank_is_refused(sandbox: Sandbox) -> None:
    sandbox.seed(["none", "blocking"])
    changed = sandbox.http.put(
        f"{sandbox.url}/rest/api/2/filter/10000",
        json={"jql": "project = SHOP ORDER BY created DESC"},
        **_as_person(sandbox),
        timeout=10,
    )
    assert changed.ok, changed.text  # the bundled sandbox changes filters as Jira does
    refused = sandbox.rerank()
    assert refused.exit_code == 1
    assert "is not ordered by Rank ('project = SHOP ORDER BY created DESC')" in refused.output
    assert "ORDER BY Rank ASC" in refused.output


def _as_person(sandbox: Sandbox) -> dict[str, Any]:
    if sandbox.flavour == "dc":
        return {"headers": {"Authorization": "Bearer ana-pat"}}
    return {"auth": ("ana@example.com", "ana-token")}


def test_waiting_issues_are_placed_at_the_bottom_of_their_bands(
    sandbox: Sandbox, shop: ProjectConfig
) -> None:
    keys = sandbox.seed(["blocking", "degraded", "degraded", "indirect", "none", "none"])
    bands = ["none", "degraded", "blocking"]
    new = sandbox.seed(bands)  # triaged and labelled, not placed yet
    waiting = [
        Pending(key, shop.level(band).score, band) for key, band in zip(new, bands, strict=True)
    ]
    connector = sandbox.connector()
    since = sandbox.last_call()
    placed = place_waiting(1, waiting, BoardJudge(connector, load_config(CONFIG), shop))
    assert set(placed.placed) == set(new)
    assert sandbox.rank_bodies(since) == [
        {"issues": [new[2]], "rankAfterIssue": keys[0], "rankCustomFieldId": 10019},
        {"issues": [new[1]], "rankAfterIssue": keys[2], "rankCustomFieldId": 10019},
        {"issues": [new[0]], "rankAfterIssue": keys[5], "rankCustomFieldId": 10019},
    ]
    assert sandbox.keys() == [
        keys[0], new[2], keys[1], keys[2], new[1], keys[3], keys[4], keys[5], new[0]
    ]  # fmt: skip
