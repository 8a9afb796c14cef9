"""The worker's scheduled job: a full rerank of every board whose project has ``rank = "full"``.

Every ``RERANK_MINUTES`` each worker process enqueues the job; a lock per board in the queue's
store (with a time to live, like the issue locks) keeps two workers from reranking one board at
once, and a run that finds the board in order makes no rank call.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from huey import Huey, crontab
from huey.exceptions import TaskLockedException

from connector.errors import JiraError
from connector.protocol import Jira
from impact.model import ImpactConfig
from pipeline.calls import account_calls, within_lease
from pipeline.placements import board_lock
from pipeline.ranking import full_rank_boards, rerank

log = logging.getLogger(__name__)

RERANK_TASK = "rerank_boards"


def rerank_boards(
    huey: Huey, config: ImpactConfig, jira: Callable[[], Jira], *, lease: float
) -> dict[int, str]:
    """Rerank each full-rank board once; what became of each, for the log and the tests."""
    outcome: dict[int, str] = {}
    for board in full_rank_boards(config):
        lock = huey.lock_task(board_lock(board), ttl=math.ceil(lease))
        try:
            lock.acquire()
        except TaskLockedException:
            outcome[board] = "busy: another worker is reranking or placing on it"
            continue
        client = jira()
        try:
            with within_lease(client, lease):
                plan = rerank(board, config, client, apply=True).plan
            outcome[board] = f"{len(plan.moves)} moved in {len(plan.calls)} rank call(s)"
        except JiraError as exc:  # refusals and Jira failures: logged, tried again next time
            outcome[board] = f"not reranked: {exc}"
        finally:
            lock.release()
            account_calls(client)
        log.info("scheduled rerank of board %d: %s", board, outcome[board])
    return outcome


def schedule_reranks(
    huey: Huey,
    config: ImpactConfig,
    jira: Callable[[], Jira],
    *,
    minutes: int,
    lease: float,
) -> bool:
    """Register the periodic job on ``huey``; False (nothing registered) when no board needs it."""
    if not full_rank_boards(config):
        return False
    every = crontab(minute=f"*/{minutes}") if minutes < 60 else crontab(minute="0")

    @huey.periodic_task(every, name=RERANK_TASK)
    def _rerank() -> None:
        rerank_boards(huey, config, jira, lease=lease)

    return True
