"""The durable queue between the web process and the worker: Huey, built from ``Settings``.

One embedded SQLite file by default (``QUEUE_PATH``); Redis when ``REDIS_URL`` is set, so that
many workers on many machines share one queue. The per-issue lock lives in the same store, with
a time to live, so a lock held by a worker that was killed runs out by itself.

``QueueDispatcher`` is the web side: record the delivery in the log (which detects a repeat),
then enqueue it; if either store fails the answer is 503 and nothing is left that would make
Jira's retry look like a duplicate.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from huey import Huey, RedisExpireHuey
from huey.storage import SqliteStorage

from webhooks.deliveries import DeliveryLog
from webhooks.errors import UnavailableError
from webhooks.receiver import Delivery
from webhooks.settings import Settings

log = logging.getLogger(__name__)

QUEUE_NAME = "jira_impact"
DELIVER_TASK = "deliver"


class SqliteLeaseStorage(SqliteStorage):
    """Huey's SQLite storage, whose ``put_if_empty`` also takes a ``ttl`` (the stock one refuses
    it), so that ``lock_task(name, ttl=...)`` gives a lock that expires like Redis's ``SET NX EX``.

    Its commits are not synced to disk one by one (``synchronous=NORMAL``; WAL keeps the file
    whole): a power loss may drop the last jobs. A delivery the log still holds as queued is
    queued again by the worker's sweep; the log itself is synced once a second (see
    ``DeliveryLog.checkpoint``), which bounds what a power loss can take.
    """

    table_expiry = (
        "create table if not exists kv_expiry (queue text not null, key text not null, "
        "expires real not null, primary key(queue, key))"
    )
    ddl: ClassVar[list[str]] = [*SqliteStorage.ddl, table_expiry]

    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        conn.execute("pragma synchronous=NORMAL")
        return conn

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        if ttl is None:
            return bool(super().put_if_empty(key, value))
        now = time.time()
        with self.db(commit=True) as curs:  # one exclusive transaction
            curs.execute(
                "delete from kv where queue = ? and key = ? and exists (select 1 from kv_expiry"
                " where queue = ? and key = ? and expires <= ?)",
                (self.name, key, self.name, key, now),
            )
            curs.execute(
                "insert or ignore into kv (queue, key, value) values (?, ?, ?)",
                (self.name, key, self.to_blob(value)),
            )
            if curs.rowcount != 1:
                return False
            curs.execute(
                "insert or replace into kv_expiry (queue, key, expires) values (?, ?, ?)",
                (self.name, key, now + ttl),
            )
            return True


class SqliteLeaseHuey(Huey):
    storage_class = SqliteLeaseStorage


def make_huey(settings: Settings) -> Huey:
    """The queue for these settings. Nothing is stored in results: the delivery log says it all."""
    if settings.redis_url:
        # RedisExpireHuey: its locks are plain keys set with NX and EX (a time to live).
        return RedisExpireHuey(
            QUEUE_NAME, url=settings.redis_url, results=False, blocking=True, read_timeout=1
        )
    path = Path(settings.queue_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteLeaseHuey(QUEUE_NAME, filename=str(path), results=False, timeout=30)


class DeliveryQueue:
    """The ``deliver`` task on a Huey instance. ``handle`` is given in the worker only; a web
    process just enqueues."""

    def __init__(self, huey: Huey, handle: Callable[[Delivery], None] | None = None) -> None:
        self.huey = huey
        self._handle = handle
        self._task = huey.task(name=DELIVER_TASK)(self._deliver)

    def enqueue(self, delivery: Delivery) -> None:
        self._task(dict(vars(delivery)))  # plain data in the message, not our class

    def pending(self) -> int:
        """Jobs waiting in the queue or scheduled for later."""
        return int(self.huey.pending_count() + self.huey.scheduled_count())

    def _deliver(self, fields: dict[str, Any]) -> None:
        if self._handle is None:
            raise RuntimeError("this process only enqueues deliveries; run `jira-impact worker`")
        self._handle(Delivery(**fields))


class QueueDispatcher:
    """The receiver's dispatcher: record, then enqueue; the web process makes no Jira call."""

    def __init__(self, *, log: DeliveryLog, queue: DeliveryQueue) -> None:
        self.log = log
        self.queue = queue

    @classmethod
    def from_settings(cls, settings: Settings) -> QueueDispatcher:
        return cls(
            log=DeliveryLog.from_url(settings.database_url),
            queue=DeliveryQueue(make_huey(settings)),
        )

    def submit(self, delivery: Delivery) -> str:
        try:
            fresh = self.log.record(delivery)
        except Exception as exc:
            log.error("delivery log refused %s: %s", delivery.id, _short(exc))
            raise UnavailableError("the delivery could not be stored; try again later") from exc
        if not fresh:
            log.info("duplicate delivery %s for %s", delivery.id, delivery.issue_key)
            return "duplicate"
        try:
            self.queue.enqueue(delivery)
        except Exception as exc:
            log.error("queue refused %s: %s", delivery.id, _short(exc))
            try:
                self.log.forget(delivery.id)
            except Exception:
                # The row stays queued; the worker's recovery sweep enqueues it later.
                log.exception("could not undo the record of %s", delivery.id)
            raise UnavailableError("the delivery could not be queued; try again later") from exc
        return "queued"


def _short(exc: BaseException) -> str:
    """An exception in one line, without the SQL and its parameters (the body) that SQLAlchemy
    puts in its messages."""
    text = str(getattr(exc, "orig", None) or exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}"
