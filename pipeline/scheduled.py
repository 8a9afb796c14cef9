"""The worker's scheduled job: a full rerank of every board whose project has ``rank = "full"``.

Every ``RERANK_MINUTES`` each worker process enqueues the job; a lock per board in the queue's
store (with a time to live, like the issue locks) keeps two workers from reranking one board at
once, and a run that finds the board in order makes no rank call.

The periods are counted from the Unix epoch (``Every``), so the worker processes agree on them
whenever each started, and 25 minutes is 25 minutes across the hours (a crontab's ``*/25`` fires
at :00, :25 and :50: 25, 25, then 10 minutes).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime

from huey import Huey
from huey.exceptions import TaskLockedException

from connector.errors import JiraError
from connector.protocol import Jira
from impact.model import ImpactConfig
from pipeline.calls import account_calls, within_lease
from pipeline.placements import board_lock
from pipeline.ranking import full_rank_boards, rerank

log = logging.getLogger(__name__)

RERANK_TASK = "rerank_boards"


class Every:
    """When the periodic job is due, asked by Huey's scheduler about once a minute: at its first
    look in each new period of ``minutes``, the periods counted from the Unix epoch. The first
    look after start-up only notes its period: a worker started mid-period waits for the next,
    so restarts add no reranks. Looking about once a minute, a second early or late, it neither
    skips a period nor fires twice in one (a test of the look's minute, as a crontab's, would do
    either). ``utc``: Huey's timestamps are naive UTC (its default), else local time."""

    def __init__(self, minutes: int, *, utc: bool = True) -> None:
        if minutes < 1:
            raise ValueError(f"a period of {minutes} minutes")
        self.seconds = minutes * 60
        self.utc = utc
        self.last: int | None = None  # the period it last fired in (or started in)

    def __call__(self, now: datetime) -> bool:
        if now.tzinfo is None and self.utc:
            now = now.replace(tzinfo=UTC)
        period = int(now.timestamp() // self.seconds)
        if self.last is not None and period <= self.last:
            return False
        started, self.last = self.last is None, period
        return not started


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

    @huey.periodic_task(Every(minutes, utc=huey.utc), name=RERANK_TASK)
    def _rerank() -> None:
        rerank_boards(huey, config, jira, lease=lease)

    return True
