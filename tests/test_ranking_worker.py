"""Ranking in the worker and the rerank command, through the recording ``FakeJira``: bands read
from labels, the placement of one issue (checked against the planner's ``plan_placement``), the
full rerank and its refusals, and the ``rerank`` command."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.rerank import rerank_command
from connector.errors import JiraForbiddenError, RankPartialError
from connector.protocol import BoardEntry
from impact.config import load_config
from impact.model import (
    ImpactClass,
    ImpactConfig,
    Plan,
    ProjectConfig,
    RankIntent,
    RankMode,
    Source,
)
from impact.ranking import PINNED_LABEL, BoardIssue, apply_calls, plan_placement
from pipeline.ranking import (
    RankRefusedError,
    band_clause,
    band_of,
    board_issue,
    full_rank_boards,
    place,
    placement_call,
    rerank,
)
from sandbox import jql as sandbox_jql
from tests.conftest import ROOT, FakeJira, issue_payload, post_signed

LABEL = {
    "blocking": "customer-impact-blocking",
    "degraded": "customer-impact-degraded",
    "indirect": "customer-impact-indirect",
    "missing": "needs-customer-impact",
    "none": "internal-preference",
}
SCORE = {"blocking": 100, "degraded": 70, "indirect": 40, "missing": 20, "none": 10}
BANDS = list(SCORE)  # highest first
BOARD = 1


@pytest.fixture
def shop(impact_config: ImpactConfig) -> ProjectConfig:
    found = impact_config.for_project("SHOP")
    assert found is not None and found.project.board == BOARD
    return found


def entry(key: str, band: str | None, *, pinned: bool = False) -> BoardEntry:
    """``band`` None: an issue with no managed label (it ranks as missing)."""
    labels = (LABEL[band],) if band else ("checkout",)
    return BoardEntry(key, labels + ((PINNED_LABEL,) if pinned else ()))


def rank_plan(key: str, band: str) -> Plan:
    level = None if band == "missing" else band
    return Plan(
        issue_key=key,
        level=level,
        source=Source.FIELD,
        impact_class=ImpactClass.EXTERNAL,
        score=SCORE[band],
        add_labels=(LABEL[band],),
        rank=RankIntent(band, SCORE[band]),
    )


def bands_in_order(jira: FakeJira, shop: ProjectConfig) -> list[str]:
    """The band of each open, unpinned issue, top to bottom."""
    board = [board_issue(e, shop) for e in jira.boards[BOARD] if e.key not in jira.done]
    return [issue.band for issue in board if not issue.pinned]


# ---- bands from labels


@pytest.mark.parametrize(
    ("labels", "band"),
    [
        (["customer-impact-degraded"], ("degraded", 70)),
        (["internal-preference", "customer-impact-blocking"], ("blocking", 100)),  # highest
        (["needs-customer-impact", "customer-impact-inferred"], ("missing", 20)),
        (["checkout"], ("missing", 20)),  # no managed label: the missing band
        ([], ("missing", 20)),
        (["customer-impact-inferred", "customer-impact-indirect"], ("indirect", 40)),
    ],
)
def test_band_of_reads_the_level_label(
    shop: ProjectConfig, labels: list[str], band: tuple[str, int]
) -> None:
    assert band_of(labels, shop) == band


def test_rank_pinned_label_pins() -> None:
    config = _config()
    assert board_issue(entry("S-1", "none", pinned=True), config) == BoardIssue(
        "S-1", 10, "none", pinned=True
    )


def _config() -> ProjectConfig:
    found = load_config(ROOT / "config" / "impact.toml").for_project("SHOP")
    assert found is not None
    return found


POOL = [*LABEL.values(), "customer-impact-inferred", PINNED_LABEL, "checkout"]
PICKS = [
    ("above", lambda s, t: t > s),
    ("below", lambda s, t: t < s),
    ("same", lambda s, t: t == s),
    ("at least", lambda s, t: t >= s),
]


@settings(max_examples=300)
@given(
    labels=st.lists(st.sampled_from(POOL), unique=True, max_size=4),
    score=st.sampled_from(list(SCORE.values())),
    pick=st.sampled_from(PICKS),
)
def test_band_clause_matches_what_band_of_reads(
    labels: list[str], score: int, pick: tuple[str, object]
) -> None:
    config = _config()
    _, compare = pick
    keep = lambda t: compare(score, t)  # type: ignore[operator]  # noqa: E731
    clause = band_clause(config, keep)
    _, band_score = band_of(labels, config)
    expected = keep(band_score) and PINNED_LABEL not in labels
    if clause is None:
        assert not expected
        return
    issue = {"key": "S-1", "fields": {"labels": labels}}
    assert sandbox_jql.parse(clause, fields={}).matches(issue) is expected


# ---- placement: against the planner


@st.composite
def sorted_but_one(draw: st.DrawFn) -> tuple[list[BoardEntry], set[str], str, str]:
    """A board in band order but for the issue "X" (anywhere, in any band), with pinned and
    Done issues anywhere; returns (board, done keys, X's band, X's key)."""
    bands = sorted(
        draw(st.lists(st.sampled_from([*BANDS, None]), max_size=14)),
        key=lambda b: -SCORE[b or "missing"],
    )
    board = [entry(f"S-{n}", band) for n, band in enumerate(bands)]
    done: set[str] = set()
    for n in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(board)))
        pinned = draw(st.booleans())
        key = f"P-{n}" if pinned else f"D-{n}"
        board.insert(at, entry(key, draw(st.sampled_from(BANDS)), pinned=pinned))
        if not pinned:
            done.add(key)  # a Done issue may sit anywhere: it is left out
    band = draw(st.sampled_from(BANDS))
    board.insert(draw(st.integers(0, len(board))), entry("X", band, pinned=draw(st.booleans())))
    return board, done, band, "X"


@settings(max_examples=400, deadline=None)
@given(sorted_but_one())
def test_placement_agrees_with_the_planner(
    case: tuple[list[BoardEntry], set[str], str, str],
) -> None:
    board, done, band, key = case
    config = _config()
    jira = FakeJira()
    jira.boards[BOARD], jira.done = list(board), done

    def search(jql: str, limit: int) -> tuple[BoardEntry, ...]:
        return jira.board_issues(BOARD, jql=jql, limit=limit)

    ours = placement_call(key, SCORE[band], config, search)
    open_board = [board_issue(e, config) for e in board if e.key not in done]
    theirs = plan_placement(open_board, key)
    assert ours == theirs
    queries = [r for r in jira.board_requests if r.startswith("GET")]
    pinned = PINNED_LABEL in next(e for e in board if e.key == key).labels
    assert len(queries) <= (2 if ours is None and not pinned else 4)
    if ours is not None:  # and the board ends up in band order
        keys = apply_calls([e.key for e in board], [ours])
        rows = {e.key: e for e in open_board}
        scores = [rows[k].score for k in keys if k in rows and not rows[k].pinned]
        assert scores == sorted(scores, reverse=True)


def test_placement_of_an_issue_not_on_the_board_makes_no_call(shop: ProjectConfig) -> None:
    jira = FakeJira()
    jira.boards[BOARD] = [entry("S-1", "blocking"), entry("S-2", "none"), entry("S-3", "none")]
    assert place(rank_plan("S-9", "degraded"), shop, jira) == ()
    assert not [r for r in jira.board_requests if r.startswith("PUT")]


# ---- placement: what the worker sends


def test_a_reclassified_issue_goes_to_the_bottom_of_its_band_in_one_call(
    shop: ProjectConfig,
) -> None:
    jira = FakeJira()
    jira.boards[BOARD] = [
        entry("S-1", "blocking"),
        entry("S-2", "degraded"),
        entry("S-3", "degraded"),
        entry("S-4", "indirect"),
        entry("S-5", "none"),
        entry("S-6", "degraded"),  # was "none" a moment ago: triage just relabelled it
    ]
    calls = place(rank_plan("S-6", "degraded"), shop, jira)
    assert jira.board_keys(BOARD) == ["S-1", "S-2", "S-3", "S-6", "S-4", "S-5"]
    assert [r for r in jira.board_requests if r.startswith("PUT")] == ["PUT rank 1 after S-3: S-6"]
    assert len(calls) == 1
    # The first query finds a lower-band issue above it; the second, the last of its band.
    assert len([r for r in jira.board_requests if r.startswith("GET board/1/issue")]) == 2


def test_an_issue_already_in_its_band_is_not_moved(shop: ProjectConfig) -> None:
    jira = FakeJira()
    jira.boards[BOARD] = [
        entry("S-1", "blocking"),
        entry("S-7", "degraded"),  # a person dragged it to the top of its band: it stays
        entry("S-2", "degraded"),
        entry("S-3", "none"),
    ]
    assert place(rank_plan("S-7", "degraded"), shop, jira) == ()
    assert jira.board_keys(BOARD) == ["S-1", "S-7", "S-2", "S-3"]
    assert not [r for r in jira.board_requests if r.startswith("PUT")]


def test_an_issue_a_person_dragged_out_of_its_band_is_not_touched(shop: ProjectConfig) -> None:
    jira = FakeJira()
    jira.boards[BOARD] = [
        entry("S-4", "none"),  # dragged to the top by a person: only a rerank moves it
        entry("S-1", "blocking"),
        entry("S-2", "degraded"),
        entry("S-3", "indirect"),
        entry("S-5", "degraded"),  # re-classified
    ]
    place(rank_plan("S-5", "degraded"), shop, jira)
    assert jira.board_keys(BOARD) == ["S-4", "S-1", "S-2", "S-5", "S-3"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"rank": RankMode.OFF}, "the project does not rank"),
        ({"board": None}, "the project has no board"),
    ],
)
def test_placement_needs_a_ranking_project_with_a_board(
    shop: ProjectConfig, change: dict[str, object], why: str
) -> None:
    jira = FakeJira()
    jira.boards[BOARD] = [entry("S-1", "none"), entry("S-2", "blocking")]
    project = replace(shop, project=replace(shop.project, **change))  # type: ignore[arg-type]
    assert place(rank_plan("S-2", "blocking"), project, jira) == (), why
    assert jira.board_requests == []


def test_a_plan_without_a_band_change_places_nothing(shop: ProjectConfig) -> None:
    jira = FakeJira()
    assert place(replace(rank_plan("S-2", "blocking"), rank=None), shop, jira) == ()
    assert jira.board_requests == []


def test_a_pinned_issue_is_never_placed(shop: ProjectConfig) -> None:
    jira = FakeJira()
    jira.boards[BOARD] = [entry("S-1", "none"), entry("S-2", "blocking", pinned=True)]
    assert place(rank_plan("S-2", "blocking"), shop, jira) == ()
    assert jira.board_keys(BOARD) == ["S-1", "S-2"]


def test_placement_skips_a_board_not_ordered_by_rank(
    shop: ProjectConfig, caplog: pytest.LogCaptureFixture
) -> None:
    jira = FakeJira()
    jira.boards[BOARD] = [entry("S-1", "none"), entry("S-2", "blocking")]
    jira.board_jql = "project = SHOP ORDER BY created DESC"
    with caplog.at_level(logging.WARNING):
        assert place(rank_plan("S-2", "blocking"), shop, jira) == ()
    assert jira.board_requests == ["GET board/1/configuration"]
    assert "not ordered by Rank" in caplog.text


def test_a_failed_placement_is_logged_not_raised(
    shop: ProjectConfig, caplog: pytest.LogCaptureFixture
) -> None:
    jira = FakeJira()
    jira.boards[BOARD] = [entry("S-1", "none"), entry("S-2", "blocking")]
    jira.fail_with = JiraForbiddenError("grant it the Schedule issues permission", status=403)
    with caplog.at_level(logging.WARNING):
        assert place(rank_plan("S-2", "blocking"), shop, jira) == ()
    assert "S-2: not placed in its band (blocking) on board 1" in caplog.text
    assert "Schedule issues" in caplog.text
    assert "jira-impact rerank --board 1 --apply" in caplog.text


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
    plan = rerank(BOARD, impact_config, jira, apply=False)
    assert plan.moved > 0 and plan.total == 8
    assert jira.board_keys(BOARD) == before
    assert not [r for r in jira.board_requests if r.startswith("PUT")]


def test_rerank_apply_orders_the_board_keeping_each_bands_order(
    impact_config: ImpactConfig, shop: ProjectConfig
) -> None:
    jira = FakeJira()
    shuffled_board(jira)
    plan = rerank(BOARD, impact_config, jira, apply=True)
    assert bands_in_order(jira, shop) == [
        "blocking", "blocking", "degraded", "indirect", "indirect", "missing", "none"
    ]  # fmt: skip
    keys = jira.board_keys(BOARD)
    assert keys.index("S-2") < keys.index("S-7") and keys.index("S-3") < keys.index("S-9")
    moved = {key for call in plan.calls for key in call.issues}
    assert not moved & {"S-4", "S-8"}  # pinned and Done issues are never moved
    assert len([r for r in jira.board_requests if r.startswith("PUT")]) == len(plan.calls)
    assert rerank(BOARD, impact_config, jira, apply=False).moved == 0


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
    plan = rerank(BOARD, impact_config, jira, apply=False)
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
def command_jira(monkeypatch: pytest.MonkeyPatch) -> FakeJira:
    """The command builds its connector from the environment: hand it the fake instead."""
    from connector.client import JiraConnector

    jira = FakeJira()
    shuffled_board(jira)
    monkeypatch.setattr(JiraConnector, "from_settings", classmethod(lambda cls, s, field: jira))
    for name, value in {
        "JIRA_URL": "https://jira.invalid",
        "JIRA_EMAIL": "bot@example.com",
        "JIRA_API_TOKEN": "token",
        "JIRA_WEBHOOK_SECRET": "a-test-secret",
        "IMPACT_CONFIG": str(ROOT / "config" / "impact.toml"),
    }.items():
        monkeypatch.setenv(name, value)
    return jira


def test_rerank_command_prints_the_plan_and_changes_nothing(command_jira: FakeJira) -> None:
    before = command_jira.board_keys(BOARD)
    result = CliRunner().invoke(rerank_command, ["--board", "1"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Rerank plan: ")
    assert "S-5  degraded  #5 -> #4  sat above S-7 (blocking, score 100)" in result.output
    assert "Dry run: nothing was changed" in result.output
    assert command_jira.board_keys(BOARD) == before


def test_rerank_command_applies_on_request(command_jira: FakeJira, shop: ProjectConfig) -> None:
    result = CliRunner().invoke(rerank_command, ["--board", "1", "--apply"])
    assert result.exit_code == 0, result.output
    assert "Applied: " in result.output
    assert bands_in_order(command_jira, shop)[0] == "blocking"


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
    assert jira.requests == ["PUT issue/SHOP-311"]
    assert [r for r in jira.board_requests if r.startswith("PUT")] == [
        "PUT rank 1 after SHOP-1: SHOP-311"
    ]
    assert jira.board_keys(BOARD) == ["SHOP-1", "SHOP-311", "SHOP-2"]
