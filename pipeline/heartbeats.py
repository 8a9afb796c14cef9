"""Workers' heartbeats, and the jobs of a worker that stopped beating run again in seconds.

Each worker process beats every ``WORKER_HEARTBEAT_SECONDS`` in the queue's store, and the
locks it takes (an issue's, a board's) name it (``pipeline.queue.claim_value``). A worker that
has missed ``MISSED_BEATS`` beats in a row is dead (SIGKILL, the out-of-memory killer, a host
lost): any worker, the same one restarted included, lets go of its locks at its next beat, puts
the delivery each issue lock was running back in the log as queued and queues it again, and
queues a placement run for the boards. A live job keeps its lock's time to live
(``DELIVERY_LEASE_SECONDS``), which still bounds its calls.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from pipeline.delivery import Job
from pipeline.delivery_log import DeliveryLog
from pipeline.queue import InboxStorage, parse_claim

log = logging.getLogger(__name__)

MISSED_BEATS = 5  # beats a worker may miss before it is taken for dead


def worker_name() -> str:
    """This worker process's name in the store: host, process id and a random part (a process
    id is reused; a host's name is not unique across a platform's machines)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Heartbeat:
    """The worker's thread: beat, and take back the jobs of workers that stopped beating."""

    def __init__(
        self,
        storage: InboxStorage,
        worker: str,
        *,
        every: float,
        log: DeliveryLog,
        requeue: Callable[[Job], None],
        rescue_boards: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.worker = worker
        self.every = every
        self.log = log
        self.requeue = requeue
        self.rescue_boards = rescue_boards
        self.clock = clock
        self._stop = threading.Event()

    @property
    def dead_after(self) -> float:
        return self.every * MISSED_BEATS

    def beat(self) -> None:
        self.storage.beat(self.worker, now=self.clock(), ttl=self.dead_after)

    def reap(self) -> list[Job]:
        """Let go of dead workers' locks; the deliveries they were running, queued again."""
        jobs, boards = [], False
        now = self.clock()
        for value in self.storage.reap_dead(now=now):
            claim = parse_claim(value)
            if claim is None:
                continue
            owner, job, issue = claim
            if not job:  # a board's lock: its placement run died with it
                log.warning("worker %s stopped beating while holding a board; released", owner)
                boards = True
                continue
            self.log.release_running(job, now=now)
            jobs.append(Job(job, issue or None))
            log.warning(
                "worker %s stopped beating while running delivery %s for %s; queued again",
                owner, job, issue or "-",
            )  # fmt: skip
        for job in jobs:
            self.requeue(job)
        if boards:
            self.rescue_boards()
        return jobs

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
                self.reap()
            except Exception:
                log.exception("heartbeat failed; trying again")
            self._stop.wait(self.every)

    def start(self) -> threading.Thread:
        self.beat()  # before the first job: no lock of this worker is ever taken for a dead one's
        thread = threading.Thread(target=self.run, name="Heartbeat", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
