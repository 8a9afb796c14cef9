"""Issues waiting to be placed on their board, and the job that places them, a board at a time.

Triage puts an issue in a band; rather than rank it at once (two worker threads placing issues
on one board would each anchor on an issue the other has not moved yet), it records the issue
as *waiting* on its board, before it writes the labels, and makes sure a placement job for that
board is queued. The job runs ``PLACEMENT_DELAY_SECONDS`` later, so the issues of a burst wait
together; it holds the board's lock (shared with the scheduled rerank) while it places every
issue waiting on the board in one go (``pipeline.ranking.place_waiting``), then lets go of
those it placed. An issue waiting again meanwhile (re-classified) stays for the next run.

Everything is kept in the queue's store, so every worker process and thread sees one list per
board. ``LocalPlacements`` keeps them in memory instead, for one process that places them itself
(the web layer's tests, with triage in the request).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from huey import Huey
from huey.exceptions import RetryTask, TaskLockedException

from connector.errors import JiraAuthError, JiraError, JiraHeldError
from connector.protocol import Jira
from impact.model import ImpactConfig
from impact.ranking import Pending
from pipeline.calls import account_calls, within_lease
from pipeline.queue import InboxStorage
from pipeline.ranking import BoardBusyError, Placed, place_on_board

log = logging.getLogger(__name__)

PLACE_TASK = "place_board"
# Places a board's waiting issues; the callable reads which issues wait at this moment.
Place = Callable[[int, Sequence[Pending], Callable[[], Iterable[str]]], Placed]
BUSY_WAIT_SECONDS = 1.0  # a run finding its board locked tries again this soon
RETRY_FIRST_SECONDS = 5.0  # a run Jira failed tries again this soon, doubling each time after
RETRY_MAX_SECONDS = 300.0
HELD_WAIT_SECONDS = 5.0  # a run finding Jira held looks again this soon (no call is sent)


class Placements(Protocol):
    def wait(self, board_id: int, issue: Pending) -> None:
        """Record ``issue`` as waiting on the board, and see that it gets placed."""


def board_lock(board_id: int) -> str:
    """The name of a board's lock (Huey's ``lock_task``): placements and reranks share it."""
    return f"board.{board_id}"


class PlacementQueue:
    """The waiting issues of every board in the queue's store, and the ``place_board`` task.

    ``place`` is given in the worker only: the function that places the issues of one board."""

    def __init__(
        self,
        huey: Huey,
        *,
        delay: float,
        lease: float,
        place: Place | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.huey = huey
        self.storage: InboxStorage = huey.storage
        self.delay = delay
        self.lease = lease
        self.clock = clock
        self._place = place
        self._task = huey.task(name=PLACE_TASK)(self._run)

    def wait(self, board_id: int, issue: Pending) -> None:
        record = {"score": issue.score, "band": issue.band, "at": self.clock()}
        self.storage.waiting_add(board_id, issue.key, json.dumps(record).encode())
        self.schedule(board_id)

    def schedule(self, board_id: int) -> bool:
        """Queue the board's placement run ``delay`` from now, unless one is queued already."""
        flag = self._flag(board_id)
        if not self.huey.put_if_empty(flag, "1", math.ceil(self.delay + self.lease)):
            return False
        self._task.schedule(args=(board_id,), delay=self.delay)
        return True

    def waiting(self, board_id: int) -> tuple[dict[str, bytes], list[Pending]]:
        """The board's waiting issues, oldest first, and their records as stored."""
        records = self.storage.waiting_list(board_id)
        issues = []
        for key, record in records.items():
            fields = json.loads(record)
            issues.append((float(fields["at"]), Pending(key, int(fields["score"]), fields["band"])))
        issues.sort(key=lambda pair: pair[0])
        return records, [issue for _at, issue in issues]

    def rescue(self, boards: Sequence[int]) -> list[int]:
        """Queue a run for each board with issues waiting but no run queued (a run lost with a
        killed worker); the boards so rescued."""
        return [b for b in boards if self.storage.waiting_list(b) and self.schedule(b)]

    def _run(self, board_id: int) -> None:
        if self._place is None:
            raise RuntimeError("this process only records placements; run `jira-impact worker`")
        lock = self.huey.lock_task(board_lock(board_id), ttl=math.ceil(self.lease))
        try:
            lock.acquire()
        except TaskLockedException as exc:  # a rerank or another run has the board
            raise RetryTask(delay=BUSY_WAIT_SECONDS) from exc
        try:
            self.huey.delete(self._flag(board_id))  # issues waiting from now on queue a new run
            records, issues = self.waiting(board_id)
            if not issues:
                return
            placed = self._place(board_id, issues, lambda: self.storage.waiting_list(board_id))
            done = set(placed.placed) | set(placed.refused)
            if placed.skipped is not None:
                log.warning("board %d: %d issue(s) not placed: %s", board_id, len(issues),
                            placed.skipped)  # fmt: skip
                done = set(records)
            self.storage.waiting_drop(board_id, {k: v for k, v in records.items() if k in done})
        finally:
            lock.release()

    def _flag(self, board_id: int) -> str:
        return f"{self.huey.name}.placement.{board_id}.queued"


def placer(config: ImpactConfig, jira: Callable[[], Jira], *, lease: float) -> Place:
    """The worker's placement run for one board, its calls ``within_lease`` of the board's lock.
    A failure that may pass (Jira busy, no answer, the lease used up) is raised as ``RetryTask``,
    backing off (at least Jira's ``Retry-After``), the issues still waiting; one that will not
    (a 403, the board gone or no longer in the config) skips them. While Jira is held
    (``pipeline.holds``), or refuses the credential, the run waits for the next probe, its
    backoff not grown."""
    failures: dict[int, int] = {}  # runs of each board failed in a row, in this process

    def place(board_id: int, issues: Sequence[Pending], now: Callable[[], Iterable[str]]) -> Placed:
        client = jira()
        try:
            with within_lease(client, lease):
                placed = place_on_board(board_id, issues, config, client, waiting_now=now)
        except BoardBusyError as exc:
            log.info("%s", exc)
            raise RetryTask(delay=BUSY_WAIT_SECONDS) from exc
        except (JiraHeldError, JiraAuthError) as exc:  # a refused credential holds the site too
            log.info("board %d: %d issue(s) wait for Jira: %s", board_id, len(issues), exc)
            raise RetryTask(delay=HELD_WAIT_SECONDS) from exc
        except JiraError as exc:
            if not exc.retryable:
                return Placed(skipped=f"{exc}; `jira-impact rerank --board {board_id}` says more")
            failures[board_id] = failures.get(board_id, 0) + 1
            wait = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (failures[board_id] - 1))
            wait = max(wait, getattr(exc, "retry_after", None) or 0.0)
            log.warning("board %d: placement of %d issue(s) failed: %s; again in %.0f s",
                        board_id, len(issues), exc, wait)  # fmt: skip
            raise RetryTask(delay=wait) from exc
        finally:
            account_calls(client)
        failures.pop(board_id, None)
        log.info(
            "board %d: placed %d issue(s) in %d rank call(s)%s",
            board_id,
            len(placed.placed),
            sum(1 for call in placed.calls if call.method == "PUT"),
            f"; Jira refused {', '.join(placed.refused)}" if placed.refused else "",
        )
        return placed

    return place


class LocalPlacements:
    """Waiting issues kept in memory by one process, placed when it says (``place_all``)."""

    def __init__(self) -> None:
        self.boards: dict[int, dict[str, Pending]] = {}

    def wait(self, board_id: int, issue: Pending) -> None:
        self.boards.setdefault(board_id, {})[issue.key] = issue

    def place_all(self, config: ImpactConfig, jira: Jira) -> dict[int, Placed | str]:
        """Place every board's waiting issues; per board, what was done or why it failed."""
        outcome: dict[int, Placed | str] = {}
        for board_id, waiting in self.boards.items():
            try:
                outcome[board_id] = place_on_board(board_id, list(waiting.values()), config, jira)
            except JiraError as exc:
                log.warning("board %d: not placed: %s; `jira-impact rerank --board %d --apply` "
                            "puts it in order", board_id, exc, board_id)  # fmt: skip
                outcome[board_id] = str(exc)
        self.boards.clear()
        return outcome
