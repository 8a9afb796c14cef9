"""The backfill run with the recording ``FakeJira`` and a small search over a dict of issues:
what a dry run and an applied run do, resuming, limits, rate limits and failures, the summary."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from commands import backfill as backfill_module
from commands.backfill import (
    CHANGED,
    FAILED,
    GONE,
    SKIPPED,
    UNCHANGED,
    Backfill,
    IssueResult,
    Progress,
    SummaryRow,
    format_table,
    summarise,
)
from connector.errors import (
    JiraAuthError,
    JiraBadRequestError,
    JiraError,
    JiraRateLimitError,
    JiraServerError,
)
from connector.protocol import BoardEntry
from impact.ranking import Pending
from pipeline.placements import PlacementQueue
from tests.conftest import IMPACT_FIELD, issue_payload

JQL = "project = SHOP"
BLOCKING = "Blocks paying customers"
NONE = "None: internal preference"


def issue(
    key: str, *, impact: str | None = None, labels: tuple[str, ...] = (), **fields: Any
) -> Any:
    raw = copy.deepcopy(issue_payload(key=key, impact=impact, labels=labels, **fields)["issue"])
    raw["fields"]["project"]["key"] = key.rpartition("-")[0]
    return raw


class FakeSearch:
    """Serves ``issues`` in order; ``extra_keys`` are listed but cannot be read (deleted since);
    ``failures[key]`` are raised, one per read of a batch holding ``key``."""

    def __init__(self, issues: Sequence[Mapping[str, Any]], extra_keys: Sequence[str] = ()) -> None:
        self.by_key = {str(i["key"]): i for i in issues}
        self.keys = [*self.by_key, *extra_keys]
        self.failures: dict[str, list[JiraError]] = {}
        self.listings: list[str] = []
        self.reads: list[tuple[str, ...]] = []

    def issue_keys(self, jql: str) -> list[str]:
        self.listings.append(jql)
        return list(self.keys)

    def issues(self, keys: Sequence[str], *, fields: Sequence[str]) -> list[Mapping[str, Any]]:
        self.reads.append(tuple(keys))
        for key in keys:
            if self.failures.get(key):
                raise self.failures[key].pop(0)
        return [self.by_key[k] for k in keys if k in self.by_key]


@pytest.fixture
def search() -> FakeSearch:
    return FakeSearch(
        [
            issue("SHOP-1", impact=BLOCKING),
            issue("SHOP-2"),
            issue("SHOP-3", impact=NONE, labels=("internal-preference",), priority={"name": "Low"}),
            issue("SHOP-4", impact=NONE),
        ]
    )


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make(jira, search, config, *, tmp_path, sleeps, **options) -> Backfill:
    progress = Progress.for_jql(tmp_path, jql=JQL, jira_url="https://jira.invalid")
    return Backfill(
        jira,
        search,
        config,
        progress=progress,
        sleep=sleeps.append,
        jitter=lambda: 0.0,
        **options,
    )


def statuses(results: Sequence[IssueResult]) -> dict[str, str]:
    return {r.key: r.status for r in results}


def test_a_dry_run_decides_every_issue_and_changes_nothing(
    jira, search, impact_config, tmp_path, sleeps
):
    run = make(jira, search, impact_config, tmp_path=tmp_path, sleeps=sleeps)

    report = run.run(JQL)

    assert statuses(report.results) == {
        "SHOP-1": CHANGED,
        "SHOP-2": CHANGED,
        "SHOP-3": UNCHANGED,
        "SHOP-4": CHANGED,
    }
    assert report.results[0].plan is not None and report.results[0].plan.level == "blocking"
    assert jira.applied == []
    assert jira.requests == []
    assert list(tmp_path.iterdir()) == []  # a dry run keeps no progress


def test_apply_carries_out_each_changed_plan_and_forgets_a_finished_run(
    jira, search, impact_config, tmp_path, sleeps
):
    run = make(jira, search, impact_config, tmp_path=tmp_path, sleeps=sleeps, apply=True)

    report = run.run(JQL)

    assert [plan.issue_key for plan in jira.applied] == ["SHOP-1", "SHOP-2", "SHOP-4"]
    assert "POST comment/SHOP-2" in jira.requests  # the ask, as the config says
    assert report.left == 0 and report.stopped is None
    assert list(tmp_path.iterdir()) == []


def test_no_comments_leaves_the_ask_out(jira, search, impact_config, tmp_path, sleeps):
    run = make(
        jira, search, impact_config, tmp_path=tmp_path, sleeps=sleeps, apply=True, comments=False
    )

    run.run(JQL)

    assert not any(r.startswith("POST comment") for r in jira.requests)
    assert "needs-customer-impact" in jira.applied[1].add_labels


def test_a_new_or_reclassified_issue_waits_on_its_board_as_triage_makes_it_wait(
    jira, impact_config, tmp_path, sleeps, huey
):
    """It waits in the queue's store before it is labelled, for the worker's placement run
    (which holds the board's lock): backfill never places issues beside the worker."""
    placements = PlacementQueue(huey, delay=2.0, lease=60.0)
    search = FakeSearch([issue("SHOP-1", impact=BLOCKING)])
    run = make(
        jira, search, impact_config, tmp_path=tmp_path, sleeps=sleeps, apply=True,
        placements=placements,
    )  # fmt: skip

    run.run(JQL)

    _records, waiting = placements.waiting(1)
    assert waiting == [Pending("SHOP-1", 100, "blocking")]
    assert huey.pending_count() == 1  # the board's placement run, for the worker
    assert jira.board_requests == []


def test_no_rank_labels_without_moving_the_issue(jira, impact_config, tmp_path, sleeps):
    jira.boards[1] = [
        BoardEntry("SHOP-8", ("customer-impact-blocking",), {IMPACT_FIELD: {"value": BLOCKING}}),
        BoardEntry("SHOP-9"),
        BoardEntry("SHOP-1"),
    ]
    search = FakeSearch([issue("SHOP-1", impact=BLOCKING)])
    run = make(
        jira, search, impact_config, tmp_path=tmp_path, sleeps=sleeps, apply=True, rank=False
    )

    report = run.run(JQL)

    assert [plan.issue_key for plan in jira.applied] == ["SHOP-1"]
    assert summarise(report.results, impact_config)[-1].rank == 0
    assert jira.board_requests == []
    assert jira.board_keys(1) == ["SHOP-8", "SHOP-9", "SHOP-1"]


def test_a_run_with_the_same_jql_skips_what_an_earlier_one_finished(
    jira, search, impact_config, tmp_path, sleeps
):
    first = make(jira, search, impact_config, tmp_path=tmp_path, sleeps=sleeps, apply=True)
    first.run(JQL, limit=2)
    assert [plan.issue_key for plan in jira.applied] == ["SHOP-1", "SHOP-2"]
    jira.applied.clear()

    report = make(jira, search, impact_config, tmp_path=tmp_path, sleeps=sleeps, apply=True).run(
        JQL
    )

    assert report.done_before == 2
    assert [r.key for r in report.results] == ["SHOP-3", "SHOP-4"]
    assert search.reads[-1] == ("SHOP-3", "SHOP-4")
    assert [plan.issue_key for plan in jira.applied] == ["SHOP-4"]


def test_a_limit_leaves_the_rest_and_keeps_progress(jira, search, impact_config, tmp_path, sleeps):
    run = make(jira, search, impact_config, tmp_path=tmp_path, sleeps=sleeps, apply=True)

    report = run.run(JQL, limit=3)

    assert len(report.results) == 3
    assert report.left == 1
    assert run.progress is not None and run.progress.done() == {"SHOP-1", "SHOP-2", "SHOP-3"}


def test_an_interrupted_run_keeps_what_finished(jira, search, impact_config, tmp_path, sleeps):
    run = make(jira, search, impact_config, tmp_path=tmp_path, sleeps=sleeps, apply=True)

    def ctrl_c_after_two(result: IssueResult) -> None:
        if result.key == "SHOP-2":
            raise KeyboardInterrupt

    report = run.run(JQL, on_result=ctrl_c_after_two)

    assert report.stopped == "interrupted"
    assert report.left == 2
    assert run.progress is not None and run.progress.done() == {"SHOP-1", "SHOP-2"}


def test_rate_limits_are_waited_out_for_as_long_as_jira_asks(
    jira, search, impact_config, tmp_path, sleeps
):
    search.failures["SHOP-1"] = [
        JiraRateLimitError("Jira answered 429", retry_after=7.0),
        JiraServerError("Jira answered 503", retry_after=3.0, status=503),
    ]
    run = make(jira, search, impact_config, tmp_path=tmp_path, sleeps=sleeps)

    report = run.run(JQL)

    assert sleeps == [7.0, 3.0]
    assert report.stopped is None
    assert len(report.results) == 4


def test_when_jira_keeps_failing_the_run_stops_and_keeps_its_progress(
    jira, search, impact_config, tmp_path, sleeps, monkeypatch
):
    monkeypatch.setattr(backfill_module, "BATCH", 1)
    search.failures["SHOP-3"] = [JiraRateLimitError("Jira answered 429", retry_after=1.0)] * 6
    run = make(jira, search, impact_config, tmp_path=tmp_path, sleeps=sleeps, apply=True)

    report = run.run(JQL)

    assert len(sleeps) == 5  # six attempts in all
    assert report.stopped is not None and "kept failing after 6 attempts" in report.stopped
    assert [r.key for r in report.results] == ["SHOP-1", "SHOP-2"]
    assert report.left == 2
    assert run.progress is not None and run.progress.done() == {"SHOP-1", "SHOP-2"}


def test_an_issue_jira_refuses_fails_alone_and_is_tried_again_next_run(
    jira, search, impact_config, tmp_path, sleeps
):
    jira.fail_with = JiraBadRequestError("Jira answered 400", status=400)  # the first write
    run = make(jira, search, impact_config, tmp_path=tmp_path, sleeps=sleeps, apply=True)

    report = run.run(JQL)

    assert statuses(report.results)["SHOP-1"] == FAILED
    assert "400" in (report.results[0].error or "")
    assert [plan.issue_key for plan in jira.applied] == ["SHOP-2", "SHOP-4"]
    assert sleeps == []
    assert run.progress is not None and "SHOP-1" not in run.progress.done()


def test_refused_credentials_stop_the_run_at_once(jira, search, impact_config, tmp_path, sleeps):
    search.failures["SHOP-1"] = [JiraAuthError("Jira answered 401", status=401)]
    run = make(jira, search, impact_config, tmp_path=tmp_path, sleeps=sleeps, apply=True)

    report = run.run(JQL)

    assert report.results == []
    assert report.stopped is not None and "credentials" in report.stopped
    assert sleeps == []


def test_other_projects_are_skipped_and_deleted_issues_are_gone(
    jira, impact_config, tmp_path, sleeps
):
    search = FakeSearch([issue("OPS-1"), issue("SHOP-1")], extra_keys=["SHOP-2"])
    run = make(jira, search, impact_config, tmp_path=tmp_path, sleeps=sleeps, apply=True)

    report = run.run("project in (OPS, SHOP)")

    assert statuses(report.results) == {"OPS-1": SKIPPED, "SHOP-1": CHANGED, "SHOP-2": GONE}
    assert [plan.issue_key for plan in jira.applied] == ["SHOP-1"]


# ---- progress file


def test_progress_is_kept_per_jql_and_survives_a_cut_short_line(tmp_path):
    progress = Progress.for_jql(tmp_path, jql=JQL, jira_url="https://a.test")
    progress.mark("SHOP-1")
    progress.mark("SHOP-2")
    with progress.path.open("a") as file:
        file.write('{"done": "SHO')  # a crash mid-write

    assert progress.done() == {"SHOP-1", "SHOP-2"}
    assert (
        Progress.for_jql(tmp_path, jql="project = OPS", jira_url="https://a.test").done() == set()
    )
    assert Progress.for_jql(tmp_path, jql=JQL, jira_url="https://b.test").done() == set()
    progress.clear()
    assert progress.done() == set()


def test_a_file_for_another_jql_under_the_same_name_is_not_trusted(tmp_path):
    progress = Progress.for_jql(tmp_path, jql=JQL, jira_url="https://a.test")
    progress.path.write_text(json.dumps({"jql": "other", "jira": "https://a.test"}) + "\n")
    with progress.path.open("a") as file:
        file.write(json.dumps({"done": "SHOP-1"}) + "\n")

    assert progress.done() == set()


# ---- summary


def test_summary_counts_per_level_and_total(jira, search, impact_config, tmp_path, sleeps):
    report = make(jira, search, impact_config, tmp_path=tmp_path, sleeps=sleeps).run(JQL)

    rows = {row.impact: row for row in summarise(report.results, impact_config)}

    assert list(rows) == ["blocking", "degraded", "indirect", "none", "missing", "total"]
    assert rows["blocking"] == SummaryRow("blocking", 1, 1, 0, 1, 1, 0, 0, 1)
    assert rows["none"] == SummaryRow("none", 2, 1, 0, 1, 1, 0, 0, 1)
    assert rows["missing"] == SummaryRow("missing", 1, 1, 0, 1, 0, 0, 1, 1)
    assert rows["total"].issues == 4 and rows["total"].changed == 3


def test_table_columns_line_up():
    rows = [SummaryRow("blocking", 12, 3), SummaryRow("total", 12, 3)]
    lines = format_table(rows, applied=False).splitlines()
    assert lines[0].split() == [
        "impact", "issues", "to", "change", "by", "rule", "labels", "priority", "field",
        "comment", "rank",
    ]  # fmt: skip
    assert len({len(line) for line in lines}) == 1
    assert lines[1].split() == ["blocking", "12", "3", "0", "0", "0", "0", "0", "0"]
    assert "changed" in format_table(rows, applied=True).splitlines()[0]
