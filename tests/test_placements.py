"""The issues waiting on a board and the run that places them, on the real SQLite queue with the
recording ``FakeJira``: one run per board at a time, what a run lets go of and what it keeps,
and what it does when Jira fails for a moment or for good."""

from __future__ import annotations

import logging

import pytest

from connector.errors import JiraForbiddenError, JiraServerError
from connector.protocol import BoardEntry
from impact.model import ImpactConfig
from impact.ranking import Pending
from pipeline.placements import PlacementQueue, board_lock, placer
from tests.conftest import IMPACT_FIELD, FakeJira

BOARD = 1
BLOCKING = Pending("N-1", 100, "blocking")
NONE = Pending("N-2", 10, "none")


@pytest.fixture
def board_jira() -> FakeJira:
    jira = FakeJira()
    blocking = {IMPACT_FIELD: {"value": "Blocks paying customers"}}
    none = {IMPACT_FIELD: {"value": "None: internal preference"}}
    jira.boards[BOARD] = [
        BoardEntry("S-1", ("customer-impact-blocking",), blocking),
        BoardEntry("S-2", ("internal-preference",), none),
        BoardEntry("N-2"),
        BoardEntry("N-1"),
    ]
    return jira


@pytest.fixture
def queue(huey, impact_config: ImpactConfig, board_jira: FakeJira) -> PlacementQueue:
    return PlacementQueue(
        huey, delay=0.0, lease=60.0, place=placer(impact_config, lambda: board_jira, lease=60.0)
    )


def run_next(huey) -> None:
    """Run the job at the head of the queue as the consumer would (a retry is queued again)."""
    task = huey.dequeue()
    assert task is not None, "no job queued"
    huey.execute(task)


def test_one_run_places_every_waiting_issue_and_lets_go_of_them(huey, queue, board_jira):
    queue.wait(BOARD, NONE)
    queue.wait(BOARD, BLOCKING)
    assert huey.pending_count() == 1  # one run for the board, however many wait
    run_next(huey)
    assert board_jira.board_keys(BOARD) == ["S-1", "N-1", "S-2", "N-2"]
    assert queue.waiting(BOARD)[1] == []
    queue.wait(BOARD, NONE)  # the next issue queues the next run
    assert huey.pending_count() == 1


def test_a_runs_jira_calls_end_before_the_boards_lock_expires(huey, queue, board_jira):
    queue.wait(BOARD, BLOCKING)
    run_next(huey)
    assert board_jira.time_limits == [60.0 * 0.8]  # the README: within 0.8 of the lock's life
    assert board_jira.board_requests and board_jira.unlimited == []


def test_an_issue_re_classified_during_the_run_waits_for_the_next(huey, impact_config, board_jira):
    def place_and_reclassify(board_id, issues, now):
        queue.wait(board_id, Pending("N-1", 10, "none"))  # triage, meanwhile
        return place(board_id, issues, now)

    place = placer(impact_config, lambda: board_jira, lease=60.0)
    queue = PlacementQueue(huey, delay=0.0, lease=60.0, place=place_and_reclassify)
    queue.wait(BOARD, BLOCKING)
    run_next(huey)
    assert queue.waiting(BOARD)[1] == [Pending("N-1", 10, "none")]


def test_a_refusal_that_will_not_pass_lets_go_of_the_waiting_issues(
    huey, queue, board_jira, caplog: pytest.LogCaptureFixture
):
    board_jira.fail_with = JiraForbiddenError("grant it Schedule issues", status=403)
    queue.wait(BOARD, BLOCKING)
    with caplog.at_level(logging.WARNING):
        run_next(huey)
    assert queue.waiting(BOARD)[1] == []
    assert huey.pending_count() == huey.scheduled_count() == 0  # not tried again and again
    assert "Schedule issues" in caplog.text and "jira-impact rerank --board 1" in caplog.text


def test_a_failure_that_may_pass_keeps_them_waiting_and_backs_off(huey, queue, board_jira):
    board_jira.fail_with = JiraServerError("busy", status=503, retry_after=40)
    queue.wait(BOARD, BLOCKING)
    run_next(huey)
    assert queue.waiting(BOARD)[1] == [BLOCKING]
    (retry,) = huey.scheduled()
    assert retry.eta is not None and retry.name.endswith("place_board")


def test_a_board_another_run_or_a_rerank_holds_makes_the_run_wait(huey, queue, board_jira):
    queue.wait(BOARD, BLOCKING)
    with huey.lock_task(board_lock(BOARD)):
        run_next(huey)
    assert board_jira.board_requests == []
    assert queue.waiting(BOARD)[1] == [BLOCKING]
    assert huey.scheduled_count() == 1


def test_a_board_whose_run_was_lost_is_rescued(huey, queue):
    queue.wait(BOARD, BLOCKING)
    assert huey.dequeue() is not None  # the run's job, lost with a killed worker
    assert queue.rescue([BOARD]) == []  # its flag still says a run is queued
    huey.delete(f"{huey.name}.placement.{BOARD}.queued")  # the flag ran out
    assert queue.rescue([BOARD, 7]) == [BOARD]  # board 7 has nothing waiting
    assert huey.pending_count() == 1
