"""The worker's scheduled full rerank, against the recording FakeJira and a real SQLite queue."""

from dataclasses import replace

import pytest

from connector.protocol import BoardEntry
from impact.model import RankMode
from pipeline.calls import LEASE_SHARE
from pipeline.scheduled import RERANK_TASK, rerank_boards, schedule_reranks
from tests.conftest import IMPACT_FIELD, FakeJira

BLOCKING, NONE = ("customer-impact-blocking",), ("internal-preference",)


@pytest.fixture
def full_config(impact_config):
    projects = tuple(replace(p, rank=RankMode.FULL) for p in impact_config.projects)
    return replace(impact_config, projects=projects)


@pytest.fixture
def jira():
    fake = FakeJira()
    fake.boards[1] = [
        BoardEntry("SHOP-1", NONE, {IMPACT_FIELD: {"value": "None: internal preference"}}),
        BoardEntry("SHOP-2", BLOCKING, {IMPACT_FIELD: {"value": "Blocks paying customers"}}),
    ]
    return fake


def test_a_full_rank_board_is_put_in_band_order(huey, full_config, jira):
    outcome = rerank_boards(huey, full_config, lambda: jira, lease=60)
    assert outcome == {1: "1 moved in 1 rank call(s)"}
    assert jira.board_keys(1) == ["SHOP-2", "SHOP-1"]
    assert rerank_boards(huey, full_config, lambda: jira, lease=60) == {
        1: "0 moved in 0 rank call(s)"
    }


def test_a_reranks_jira_calls_end_before_the_boards_lock_expires(huey, full_config, jira):
    rerank_boards(huey, full_config, lambda: jira, lease=60)
    assert jira.time_limits == [60 * LEASE_SHARE]
    assert jira.board_requests and jira.unlimited == []


def test_a_board_another_worker_is_reranking_is_left_alone(huey, full_config, jira):
    with huey.lock_task("board.1"):
        assert rerank_boards(huey, full_config, lambda: jira, lease=60)[1].startswith("busy")
    assert jira.board_keys(1) == ["SHOP-1", "SHOP-2"]


def test_a_refused_board_is_reported_and_tried_next_time(huey, full_config, jira):
    jira.board_jql = "project = SHOP ORDER BY created"
    assert rerank_boards(huey, full_config, lambda: jira, lease=60)[1].startswith("not reranked")
    assert jira.board_keys(1) == ["SHOP-1", "SHOP-2"]


def test_the_job_is_scheduled_only_when_a_project_ranks_in_full(
    huey, impact_config, full_config, jira
):
    assert schedule_reranks(huey, impact_config, lambda: jira, minutes=15, lease=60) is False
    assert schedule_reranks(huey, full_config, lambda: jira, minutes=15, lease=60) is True
    assert any(RERANK_TASK in name for name in huey._registry._registry)
