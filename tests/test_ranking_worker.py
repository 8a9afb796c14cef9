"""Ranking in the worker and the rerank command, through the recording ``FakeJira``: each issue
ranks by the level triage gives it now (not by its labels), the placement of the issues waiting
on a board (checked against the pure planner over any board and any arrival order), the full
rerank and its refusals, and the ``rerank`` command."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.rerank import rerank_command
from connector.errors import JiraForbiddenError, RankPartialError
from connector.protocol import BoardEntry
from impact.config import load_config
from impact.model import ImpactConfig, ProjectConfig, RankMode
from impact.ranking import PINNED_LABEL, Pending, gaps_on
from pipeline.placements import LocalPlacements
from pipeline.ranking import (
    BoardBusyError,
    BoardJudge,
    RankRefusedError,
    find_gaps,
    full_rank_boards,
    place_waiting,
    read_board,
    rerank,
    settled_clause,
)
from sandbox import jql as sandbox_jql
from sandbox.stack import data_paths
from tests.conftest import IMPACT_FIELD, ROOT, FakeJira, issue_payload, post_signed

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
SCORE = {"blocking": 100, "degraded": 70, "indirect": 40, "missing": 20, "none": 10}
BANDS = list(SCORE)  # highest first
BOARD = 1


@pytest.fixture
def shop(impact_config: ImpactConfig) -> ProjectConfig:
    found = impact_config.for_project("SHOP")
    assert found is not None and found.project.board == BOARD
    return found


def entry(key: str, band: str | None, *, pinned: bool = False, labelled: bool = True) -> BoardEntry:
    """An issue whose level is ``band`` (None: never triaged, no impact and no label); with
    ``labelled`` it carries that level's label already, as triage leaves it."""
    labels = [LABEL[band]] if band and labelled else ["checkout"]
    labels += [PINNED_LABEL] if pinned else []
    option = OPTION.get(band or "")
    fields = {IMPACT_FIELD: {"value": option} if option else None, "summary": key}
    return BoardEntry(key, tuple(labels), fields)


def judge_of(jira: FakeJira, config: ImpactConfig) -> BoardJudge:
    found = config.for_project("SHOP")
    assert found is not None
    return BoardJudge(jira, config, found)


def open_bands(jira: FakeJira, config: ImpactConfig) -> list[str]:
    """The band of each open, unpinned issue, top to bottom, as triage judges it."""
    review = read_board(BOARD, config, jira)
    return [j.band for j in review.issues if not j.pinned]


# ---- the level an issue has now, not its labels


def test_an_issue_ranks_by_its_field_not_by_labels_it_does_not_carry_yet(
    impact_config: ImpactConfig,
) -> None:
    jira = FakeJira()
    jira.boards[BOARD] = [
        entry("S-1", "blocking", labelled=False),  # the field is set, the label not yet
        BoardEntry("S-2", (LABEL["blocking"],), {IMPACT_FIELD: {"value": OPTION["none"]}}),
        entry("S-3", "degraded"),
    ]
    judged = {j.issue.key: j for j in read_board(BOARD, impact_config, jira).issues}
    assert [(k, j.band, j.labels_agree) for k, j in judged.items()] == [
        ("S-1", "blocking", False),
        ("S-2", "none", False),  # a person changed the field since triage labelled it
        ("S-3", "degraded", True),
    ]
    assert judged["S-1"].why == "blocking, set by a person in the field"


def test_a_rule_gives_the_band_of_an_issue_without_the_field(
    impact_config: ImpactConfig,
) -> None:
    jira = FakeJira()
    bug = {"issuetype": {"name": "Bug"}, "components": [{"name": "Checkout"}]}
    jira.boards[BOARD] = [BoardEntry("S-1", (), bug)]
    (judged,) = read_board(BOARD, impact_config, jira).issues
    assert (judged.band, judged.why) == (
        "degraded",
        "degraded, inferred by rule 'checkout or billing bug'",
    )


def test_a_rule_on_groups_asks_for_each_reporter_once(impact_config: ImpactConfig) -> None:
    groups_rule = replace(
        impact_config.rules[0], name="support", text=(), reporter_groups=("support",)
    )
    config = replace(impact_config, rules=(groups_rule,))
    ana = {"reporter": {"accountId": "ana", "displayName": "Ana"}}
    jira = FakeJira(groups={"ana": ("support",)})
    jira.boards[BOARD] = [BoardEntry(f"S-{n}", (), ana) for n in range(3)]
    bands = {j.band for j in read_board(BOARD, config, jira).issues}
    assert bands == {groups_rule.impact}
    assert jira.requests == ["GET groups/ana"]


POOL = [*LABEL.values(), "customer-impact-inferred", PINNED_LABEL, "checkout"]


@settings(max_examples=300)
@given(
    labels=st.lists(st.sampled_from(POOL), unique=True, max_size=4),
    score=st.sampled_from(list(SCORE.values())),
    above=st.booleans(),
)
def test_settled_clause_finds_the_unpinned_issues_labelled_for_those_bands(
    labels: list[str], score: int, above: bool
) -> None:
    config = load_config(ROOT / "config" / "impact.toml").for_project("SHOP")
    assert config is not None
    keep = (lambda s: s >= score) if above else (lambda s: s < score)
    clause = settled_clause(config, keep)
    kept_labels = {LABEL[band] for band in BANDS if keep(SCORE[band])}
    expected = bool(kept_labels & set(labels)) and PINNED_LABEL not in labels
    if clause is None:
        assert not kept_labels
        return
    issue = {"key": "S-1", "fields": {"labels": labels}}
    assert sandbox_jql.parse(clause, fields={}).matches(issue) is expected


# ---- placement of the issues waiting on a board


@st.composite
def burst(draw: st.DrawFn) -> tuple[list[BoardEntry], set[str], list[tuple[str, str, bool]]]:
    """A board in band order with pinned and Done issues anywhere, and issues arriving at its
    bottom: (board, done keys, arrivals as (key, band, labels written yet))."""
    bands = sorted(draw(st.lists(st.sampled_from(BANDS), max_size=12)), key=lambda b: -SCORE[b])
    board = [entry(f"S-{n}", band) for n, band in enumerate(bands)]
    done: set[str] = set()
    for n in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(board)))
        pinned = draw(st.booleans())
        key = f"P-{n}" if pinned else f"D-{n}"
        board.insert(at, entry(key, draw(st.sampled_from(BANDS)), pinned=pinned))
        if not pinned:
            done.add(key)  # a Done issue may sit anywhere: it is left out
    arrivals = [
        (f"N-{n}", draw(st.sampled_from(BANDS)), draw(st.booleans()))
        for n in range(draw(st.integers(1, 14)))
    ]
    return board, done, arrivals


@settings(max_examples=300, deadline=None)
@given(burst(), st.randoms(use_true_random=False))
def test_any_arrival_order_leaves_the_board_in_band_order(
    case: tuple[list[BoardEntry], set[str], list[tuple[str, str, bool]]], random: Any
) -> None:
    board, done, arrivals = case
    config = load_config(ROOT / "config" / "impact.toml")
    jira = FakeJira()
    jira.boards[BOARD], jira.done = list(board), done
    settled_order = {key: n for n, key in enumerate(e.key for e in board)}
    random.shuffle(arrivals)
    # Issues come to the bottom of the board as they are created, untriaged; triage takes them
    # in runs of any size, each waiting before its labels are written (some are written before
    # the run that places them, some after), and every run places all that wait.
    jira.boards[BOARD] += [entry(key, band, labelled=False) for key, band, _ in arrivals]
    untriaged = list(arrivals)
    while untriaged:
        size = random.randint(1, len(untriaged))
        taken, untriaged = untriaged[:size], untriaged[size:]
        label(jira, {key: band for key, band, labelled in taken if labelled})
        waiting = [Pending(key, SCORE[band], band) for key, band, _ in taken]
        placed = place_waiting(BOARD, waiting, judge_of(jira, config))
        assert placed.refused == () and set(placed.placed) == {p.key for p in waiting}
        label(jira, {key: band for key, band, _ in taken})

    rows = [e for e in jira.boards[BOARD] if e.key not in done and PINNED_LABEL not in e.labels]
    judged = judge_of(jira, config)
    scores = [judged.judge(e).plan.score for e in rows]
    assert scores == sorted(scores, reverse=True)
    order = [e.key for e in rows]
    for band in BANDS:  # each band: the settled issues in their order, then the arrivals'
        keys = [k for k, e in zip(order, rows, strict=True) if judged.judge(e).band == band]
        settled = [k for k in keys if k in settled_order]
        assert settled == sorted(settled, key=settled_order.__getitem__)
        assert keys[: len(settled)] == settled
        assert keys[len(settled) :] == [key for key, b, _ in arrivals if b == band]
    moved = [r for r in jira.board_requests if r.startswith("PUT")]
    pinned = [e.key for e in board if PINNED_LABEL in e.labels]
    assert not [r for r in moved if any(f" {p}" in r.split(":")[1] for p in pinned)]


def label(jira: FakeJira, bands: dict[str, str]) -> None:
    """Write the labels of these issues' levels, as triage's edit does."""
    jira.boards[BOARD] = [
        entry(e.key, bands[e.key]) if e.key in bands else e for e in jira.boards[BOARD]
    ]


@st.composite
def board_and_waiting(draw: st.DrawFn) -> tuple[list[BoardEntry], set[str], list[str]]:
    """A board in band order but for waiting issues anywhere (labelled or not), pinned issues
    anywhere, and settled issues a person dragged anywhere."""
    bands = sorted(draw(st.lists(st.sampled_from(BANDS), max_size=12)), key=lambda b: -SCORE[b])
    board = [entry(f"S-{n}", band) for n, band in enumerate(bands)]
    waiting = []
    for n in range(draw(st.integers(0, 6))):
        key = f"W-{n}"
        board.insert(
            draw(st.integers(0, len(board))),
            entry(key, draw(st.sampled_from(BANDS)), labelled=draw(st.booleans())),
        )
        waiting.append(key)
    for n in range(draw(st.integers(0, 3))):
        board.insert(
            draw(st.integers(0, len(board))),
            entry(f"P-{n}", draw(st.sampled_from(BANDS)), pinned=True),
        )
    for n in range(draw(st.integers(0, 2))):  # settled, and dragged out of its band by a person
        board.insert(
            draw(st.integers(0, len(board))), entry(f"X-{n}", draw(st.sampled_from(BANDS)))
        )
    return board, set(), waiting


@settings(max_examples=300, deadline=None)
@given(board_and_waiting())
def test_the_gaps_read_from_jira_are_those_of_the_whole_board(
    case: tuple[list[BoardEntry], set[str], list[str]],
) -> None:
    board, done, waiting = case
    config = load_config(ROOT / "config" / "impact.toml")
    jira = FakeJira()
    jira.boards[BOARD], jira.done = list(board), done
    judged = judge_of(jira, config)
    whole = [judged.judge(e).board_issue() for e in board]
    unsettled = [e.key for e in board if not judged.judge(e).labels_agree]
    scores = list(SCORE.values())
    found = find_gaps(BOARD, scores, waiting, judged, rank_field="customfield_10019")
    assert found == gaps_on(whole, [*waiting, *unsettled], scores)
    reads = [r for r in jira.board_requests if r.startswith("GET board")]
    assert len(reads) <= 2 * len(scores)


def test_a_burst_is_placed_in_a_call_per_band(impact_config: ImpactConfig) -> None:
    jira = FakeJira()
    jira.boards[BOARD] = [
        entry("S-1", "blocking"),
        entry("S-2", "degraded"),
        entry("S-3", "none"),
        *(entry(f"N-{n}", band) for n, band in enumerate(["none", "blocking", "degraded"] * 3)),
    ]
    waiting = [
        Pending(f"N-{n}", SCORE[band], band)
        for n, band in enumerate(["none", "blocking", "degraded"] * 3)
    ]
    placed = place_waiting(BOARD, waiting, judge_of(jira, impact_config))
    assert jira.board_keys(BOARD) == [
        "S-1", "N-1", "N-4", "N-7", "S-2", "N-2", "N-5", "N-8", "S-3", "N-0", "N-3", "N-6"
    ]  # fmt: skip
    assert [r for r in jira.board_requests if r.startswith("PUT")] == [
        "PUT rank 3 after S-1: N-1, N-4, N-7",
        "PUT rank 3 after S-2: N-2, N-5, N-8",
        "PUT rank 3 after S-3: N-0, N-3, N-6",
    ]
    assert len(placed.calls) == 3 and len(placed.placed) == 9
    # two reads a band (its last settled issue, the first of a lower band), none below "none"
    assert len([r for r in jira.board_requests if r.startswith("GET board/1/issue")]) == 5


def test_an_issue_labelled_but_still_waiting_is_never_an_anchor(
    impact_config: ImpactConfig,
) -> None:
    jira = FakeJira()
    jira.boards[BOARD] = [
        entry("S-1", "blocking"),
        entry("S-2", "none"),
        entry("N-1", "blocking"),  # labelled by triage, not placed yet: it waits
        entry("N-2", "blocking", labelled=False),
    ]
    waiting = [Pending("N-2", 100, "blocking"), Pending("N-1", 100, "blocking")]
    place_waiting(BOARD, waiting, judge_of(jira, impact_config))
    assert jira.board_keys(BOARD) == ["S-1", "N-2", "N-1", "S-2"]  # after S-1, not after N-1


def test_placement_skips_a_board_not_ordered_by_rank(impact_config: ImpactConfig) -> None:
    jira = FakeJira()
    jira.boards[BOARD] = [entry("S-1", "none"), entry("S-2", "blocking")]
    jira.board_jql = "project = SHOP ORDER BY created DESC"
    placed = place_waiting(BOARD, [Pending("S-2", 100, "blocking")], judge_of(jira, impact_config))
    assert placed.placed == () and placed.skipped is not None
    assert "not ordered by Rank" in placed.skipped
    assert jira.board_requests == ["GET board/1/configuration"]


def test_issues_jira_refuses_to_rank_are_reported_the_others_placed(
    impact_config: ImpactConfig,
) -> None:
    jira = FakeJira()
    jira.boards[BOARD] = [entry("S-1", "blocking"), entry("S-2", "none"), entry("N-1", "none")]
    jira.boards[BOARD].append(entry("N-2", "blocking"))
    jira.fail_with = RankPartialError("1 failed", failed={"N-2": "try again later"})
    placed = place_waiting(
        BOARD,
        [Pending("N-2", 100, "blocking"), Pending("N-1", 10, "none")],
        judge_of(jira, impact_config),
    )
    assert (placed.placed, placed.refused) == (("N-1",), ("N-2",))


def test_local_placements_say_what_failed(
    impact_config: ImpactConfig, caplog: pytest.LogCaptureFixture
) -> None:
    jira = FakeJira()
    jira.boards[BOARD] = [entry("S-1", "none"), entry("S-2", "blocking")]
    jira.fail_with = JiraForbiddenError("grant it the Schedule issues permission", status=403)
    local = LocalPlacements()
    local.wait(BOARD, Pending("S-2", 100, "blocking"))
    with caplog.at_level(logging.WARNING):
        outcome = local.place_all(impact_config, jira)
    assert "Schedule issues" in str(outcome[BOARD])
    assert "jira-impact rerank --board 1 --apply" in caplog.text
    assert local.boards == {}


# ---- full rerank


def shuffled_board(jira: FakeJira) -> None:
    jira.boards[BOARD] = [
        entry("S-1", "none"),
        entry("S-2", "blocking"),
        entry("S-3", "indirect"),
        entry("S-4", "none", pinned=True),
        entry("S-5", "degraded"),
        entry("S-6", None),  # never triaged: ranks as missing
        entry("S-7", "blocking"),
        entry("S-8", "none"),  # Done: left alone
        entry("S-9", "indirect"),
    ]
    jira.done = {"S-8"}


def test_rerank_dry_run_changes_nothing(impact_config: ImpactConfig) -> None:
    jira = FakeJira()
    shuffled_board(jira)
    before = jira.board_keys(BOARD)
    plan = rerank(BOARD, impact_config, jira, apply=False).plan
    assert plan.moved > 0 and plan.total == 8
    assert jira.board_keys(BOARD) == before
    assert not [r for r in jira.board_requests if r.startswith("PUT")]


def test_rerank_apply_orders_the_board_keeping_each_bands_order(
    impact_config: ImpactConfig,
) -> None:
    jira = FakeJira()
    shuffled_board(jira)
    plan = rerank(BOARD, impact_config, jira, apply=True).plan
    assert open_bands(jira, impact_config) == [
        "blocking", "blocking", "degraded", "indirect", "indirect", "missing", "none"
    ]  # fmt: skip
    keys = jira.board_keys(BOARD)
    assert keys.index("S-2") < keys.index("S-7") and keys.index("S-3") < keys.index("S-9")
    moved = {key for call in plan.calls for key in call.issues}
    assert not moved & {"S-4", "S-8"}  # pinned and Done issues are never moved
    assert len([r for r in jira.board_requests if r.startswith("PUT")]) == len(plan.calls)
    assert rerank(BOARD, impact_config, jira, apply=False).plan.moved == 0


def test_rerank_orders_issues_by_their_field_when_no_label_says_it_yet(
    impact_config: ImpactConfig,
) -> None:
    jira = FakeJira()
    jira.boards[BOARD] = [
        entry("S-1", "none", labelled=False),
        entry("S-2", "indirect", labelled=False),
        entry("S-3", "blocking", labelled=False),
    ]
    review = rerank(BOARD, impact_config, jira, apply=True)
    assert jira.board_keys(BOARD) == ["S-3", "S-2", "S-1"]
    assert review.disagreeing == ("S-1", "S-2", "S-3")
    assert "3 issue(s) carry labels that disagree" in review.describe()
    assert "`jira-impact backfill` fixes the labels" in review.describe()


def test_rerank_refuses_with_every_problem_and_what_to_fix(impact_config: ImpactConfig) -> None:
    jira = FakeJira()
    shuffled_board(jira)
    jira.board_jql = "project = SHOP"
    jira.schedule = False
    with pytest.raises(RankRefusedError) as caught:
        rerank(BOARD, impact_config, jira, apply=True)
    assert caught.value.problems == (
        "its filter 10000 is not ordered by Rank ('project = SHOP'): end the filter's query "
        "with ORDER BY Rank ASC (Board settings > General > Filter query)",
        "the service account lacks the Schedule issues permission in project SHOP: grant it "
        "in the project's permission scheme (Project settings > Permissions)",
    )
    assert not [r for r in jira.board_requests if "issue" in r]


def test_rerank_refuses_a_board_not_in_the_config(impact_config: ImpactConfig) -> None:
    with pytest.raises(RankRefusedError, match=r"board 7 is not in .*board = 7"):
        rerank(7, impact_config, FakeJira(), apply=False)


def test_rerank_sends_every_call_then_reports_what_still_failed(
    impact_config: ImpactConfig,
) -> None:
    jira = FakeJira()
    shuffled_board(jira)
    plan = rerank(BOARD, impact_config, jira, apply=False).plan
    assert len(plan.calls) >= 2
    jira.fail_with = RankPartialError("1 failed", failed={"S-7": "try again later"})
    with pytest.raises(RankPartialError) as caught:
        rerank(BOARD, impact_config, jira, apply=True)
    assert caught.value.failed == {"S-7": "try again later"}
    sent = [r for r in jira.board_requests if r.startswith("PUT")]
    assert len(sent) == len(plan.calls)


def test_rerank_stops_at_a_403(impact_config: ImpactConfig) -> None:
    jira = FakeJira()
    shuffled_board(jira)
    jira.fail_with = JiraForbiddenError("no Schedule issues", status=403)
    with pytest.raises(JiraForbiddenError):
        rerank(BOARD, impact_config, jira, apply=True)
    assert len([r for r in jira.board_requests if r.startswith("PUT")]) == 1


def test_full_rank_boards_are_those_of_projects_ranking_fully(
    impact_config: ImpactConfig,
) -> None:
    assert full_rank_boards(impact_config) == ()
    shop = replace(impact_config.projects[0], rank=RankMode.FULL)
    assert full_rank_boards(replace(impact_config, projects=(shop,))) == (BOARD,)


# ---- the command


@pytest.fixture
def command_jira(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeJira:
    """The command builds its connector from the environment: hand it the fake instead."""
    from connector.client import JiraConnector

    jira = FakeJira()
    shuffled_board(jira)
    monkeypatch.setattr(
        JiraConnector, "from_settings", classmethod(lambda cls, s, field, pace=None: jira)
    )
    for name, value in {
        "JIRA_URL": "https://jira.invalid",
        "JIRA_EMAIL": "bot@example.com",
        "JIRA_API_TOKEN": "token",
        "JIRA_WEBHOOK_SECRET": "a-test-secret",
        "IMPACT_CONFIG": str(ROOT / "config" / "impact.toml"),
        **data_paths(tmp_path),  # --apply holds the board's lock in the queue's store
    }.items():
        monkeypatch.setenv(name, value)
    return jira


def test_rerank_command_prints_the_plan_and_changes_nothing(command_jira: FakeJira) -> None:
    before = command_jira.board_keys(BOARD)
    result = CliRunner().invoke(rerank_command, ["--board", "1"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Rerank plan: ")
    assert "S-5  degraded  #5 -> #4  sat above S-7 (blocking, score 100)" in result.output
    assert "1 issue(s) carry labels that disagree" in result.output  # S-6, never triaged
    assert "Dry run: nothing was changed" in result.output
    assert command_jira.board_keys(BOARD) == before


def test_rerank_command_applies_on_request(
    command_jira: FakeJira, impact_config: ImpactConfig
) -> None:
    result = CliRunner().invoke(rerank_command, ["--board", "1", "--apply"])
    assert result.exit_code == 0, result.output
    assert "Applied: " in result.output
    assert open_bands(command_jira, impact_config)[0] == "blocking"


def test_rerank_command_exits_1_with_what_to_fix(command_jira: FakeJira) -> None:
    command_jira.schedule = False
    result = CliRunner().invoke(rerank_command, ["--board", "1"])
    assert result.exit_code == 1
    assert "board 1 cannot be ranked" in result.output
    assert "Schedule issues permission in project SHOP" in result.output


# ---- through triage


def test_triage_places_a_new_issue_at_the_bottom_of_its_band(client, jira: FakeJira) -> None:
    jira.boards[BOARD] = [
        entry("SHOP-1", "blocking"),
        entry("SHOP-2", "none"),
        entry("SHOP-311", None),  # new issues come last
    ]
    r = post_signed(client, issue_payload(impact="Blocks paying customers"))
    assert r.status_code == 202
    assert jira.requests == ["PUT issue/SHOP-311"]  # the body carries the issue: no read
    assert [r for r in jira.board_requests if r.startswith("PUT")] == [
        "PUT rank 1 after SHOP-1: SHOP-311"
    ]
    assert jira.board_keys(BOARD) == ["SHOP-1", "SHOP-311", "SHOP-2"]


def test_on_a_board_with_no_settled_issue_the_waiting_ones_line_up(
    impact_config: ImpactConfig,
) -> None:
    jira = FakeJira()
    jira.boards[BOARD] = [entry("N-1", "none"), entry("N-2", "blocking"), entry("N-3", "none")]
    waiting = [Pending("N-1", 10, "none"), Pending("N-2", 100, "blocking")]
    waiting.append(Pending("N-3", 10, "none"))
    judged = judge_of(jira, impact_config)
    assert find_gaps(BOARD, [10, 100], ["N-1", "N-2", "N-3"], judged) == {}
    place_waiting(BOARD, waiting, judged)
    assert jira.board_keys(BOARD) == ["N-2", "N-1", "N-3"]


def test_an_issue_that_starts_waiting_during_the_run_is_not_an_anchor(
    impact_config: ImpactConfig,
) -> None:
    """Another thread records N-9 as waiting and labels it while the run reads the board: the
    run sees it labelled, but checks the waiting list again before trusting its anchors."""
    jira = FakeJira()
    jira.boards[BOARD] = [entry("S-1", "none"), entry("N-1", "none"), entry("N-9", "none")]
    waiting_now = iter([{"N-1", "N-9"}, {"N-1", "N-9"}])
    place_waiting(
        BOARD,
        [Pending("N-1", 10, "none")],
        judge_of(jira, impact_config),
        waiting_now=lambda: next(waiting_now),
    )
    assert [r for r in jira.board_requests if r.startswith("PUT")] == ["PUT rank 1 after S-1: N-1"]


def test_an_issue_dragged_down_out_of_its_band_does_not_take_new_issues_with_it(
    impact_config: ImpactConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """A person dragged a blocking issue to the bottom: the last issue scoring at least
    "degraded" is now below every "none" one. A new degraded issue still goes above them."""
    jira = FakeJira()
    jira.boards[BOARD] = [
        entry("S-1", "blocking"),
        entry("S-2", "none"),
        entry("S-3", "blocking"),  # dragged to the bottom
        entry("N-1", "degraded"),
    ]
    with caplog.at_level(logging.WARNING):
        place_waiting(BOARD, [Pending("N-1", 70, "degraded")], judge_of(jira, impact_config))
    assert jira.board_keys(BOARD) == ["S-1", "N-1", "S-2", "S-3"]
    assert "board 1 is out of band order: S-2 ranks above S-3" in caplog.text


def test_a_run_whose_anchors_keep_starting_to_wait_gives_way(impact_config: ImpactConfig) -> None:
    """Every read finds only issues that started waiting meanwhile, more each time (a burst at
    full speed): the run places nothing and gives way, the issues still waiting."""
    jira = FakeJira()
    jira.boards[BOARD] = [entry(f"L-{n}", "none") for n in range(200)]
    jira.boards[BOARD].append(entry("N-1", "none", labelled=False))
    reads = iter(range(1, 10))

    def waiting_now() -> set[str]:  # the bottom of the board, a few more each time
        return {f"L-{n}" for n in range(200 - 10 * next(reads), 200)}

    with pytest.raises(BoardBusyError):
        judged = judge_of(jira, impact_config)
        place_waiting(BOARD, [Pending("N-1", 10, "none")], judged, waiting_now=waiting_now)
    assert not [r for r in jira.board_requests if r.startswith("PUT")]
