"""The worker's scheduled full rerank, against the recording FakeJira and a real SQLite queue;
when Huey's scheduler finds it due; and a real worker process reranking a board by itself."""

import itertools
import random
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from huey import MemoryHuey

from connector.protocol import BoardEntry
from impact.model import RankMode
from pipeline.scheduled import RERANK_TASK, rerank_boards, schedule_reranks
from sandbox.stack import Stack, wait_until
from tests.conftest import IMPACT_FIELD, ROOT, FakeJira

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
    assert jira.time_limits == [60 * 0.8]  # the README: within 0.8 of the lock's life
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


# ---- when the job is due: Huey's scheduler asks read_periodic(now) about once a minute


def due_times(minutes: int, looks: list[datetime], config) -> list[datetime]:
    """The looks at which Huey's scheduler would enqueue the rerank, the job registered as the
    worker registers it (``schedule_reranks``)."""
    huey = MemoryHuey(utc=True)
    assert schedule_reranks(huey, config, FakeJira, minutes=minutes, lease=60)
    return [now for now in looks if any(t.name == RERANK_TASK for t in huey.read_periodic(now))]


def every_minute(start: datetime, hours: int, jitter: float = 0.0) -> list[datetime]:
    """The scheduler's looks: one a minute from ``start``, each up to ``jitter`` s late (its loop
    ticks every second)."""
    rng = random.Random(start.timestamp())
    return [start + timedelta(minutes=n, seconds=rng.uniform(0, jitter)) for n in range(hours * 60)]


@pytest.mark.parametrize("minutes", [1, 7, 15, 25, 45, 60])
def test_the_rerank_is_due_every_n_minutes_across_the_hours(full_config, minutes):
    # RERANK_MINUTES=25 is every 25 minutes: not :00, :25 and :50, then :00 again 10 minutes on
    due = due_times(minutes, every_minute(datetime(2026, 3, 1, 0, 0, 37), 10), full_config)
    gaps = {later - earlier for earlier, later in itertools.pairwise(due)}
    assert gaps == {timedelta(minutes=minutes)}
    assert len(due) in (10 * 60 // minutes, 10 * 60 // minutes - 1)


def test_every_period_from_1_to_60_minutes_is_kept(full_config):
    start = datetime(2026, 7, 14, 9, 13, 5)
    for minutes in range(1, 61):
        due = due_times(minutes, every_minute(start, 5), full_config)
        gaps = {later - earlier for earlier, later in itertools.pairwise(due)}
        assert gaps == {timedelta(minutes=minutes)}, minutes


def test_a_scheduler_looking_a_second_early_or_late_neither_skips_nor_doubles(full_config):
    # looks that straddle the minute's turn: xx:59.5 to xx+1:00.5
    looks = every_minute(datetime(2026, 3, 1, 0, 0, 59, 500_000), 10, jitter=1.0)
    due = due_times(25, looks, full_config)
    periods = [int(now.timestamp() // (25 * 60)) for now in due]
    assert periods == list(range(periods[0], periods[0] + len(periods)))  # one each, none skipped
    assert len(due) >= 10 * 60 // 25 - 1


def test_a_worker_started_mid_period_waits_for_the_next(full_config):
    start = datetime(2026, 3, 1, 0, 10, 0)  # 10 minutes into a 25-minute period (from the epoch)
    [first, *_] = due_times(25, every_minute(start, 1), full_config)
    assert first == datetime(2026, 3, 1, 0, 30, 0)
    assert int(first.timestamp()) % (25 * 60) == 0


# ---- inside a real worker


@pytest.mark.e2e
def test_a_real_worker_reranks_a_full_rank_board_by_itself(tmp_path):
    """The Procfile's worker, with RERANK_MINUTES=1 and SHOP ranked in full, puts the board in
    band order with nothing sent to it: Huey's scheduler, in the worker, ran the job."""
    config = tmp_path / "impact.toml"
    shipped = (ROOT / "config" / "impact.toml").read_text()
    assert 'rank = "band"' in shipped
    config.write_text(shipped.replace('rank = "band"', 'rank = "full"'))
    env = {"IMPACT_CONFIG": str(config), "RERANK_MINUTES": "1"}
    with Stack(tmp_path / "stack", processes=(), env=env) as stack:
        internal = stack.create_issue(
            summary="New chairs", labels=["internal-preference"],
            impact="None: internal preference",
        )  # fmt: skip
        outage = stack.create_issue(
            summary="Checkout is down", labels=["customer-impact-blocking"],
            impact="Blocks paying customers",
        )  # fmt: skip
        assert [row["key"] for row in stack.board()] == [internal, outage]
        stack.release()
        stack.start_processes(["worker"])
        said = "scheduled rerank of board 1: 1 moved in 1 rank call(s)"
        wait_until(
            "the worker's scheduled rerank",
            lambda: said in stack.log("worker"),  # logged once its calls are done
            timeout=150,  # the scheduler looks once a minute; the first look only notes the period
            every=1.0,
        )
        assert [row["key"] for row in stack.board()] == [outage, internal]
