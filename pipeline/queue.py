"""The durable queue between the web process and the worker: Huey, built from ``Settings``.

One embedded SQLite file by default (``QUEUE_PATH``); Redis when ``REDIS_URL`` is set, so that
many workers on many machines share one queue. The per-issue lock lives in the same store, with
a time to live, so a lock held by a worker that was killed runs out by itself.

Taking a delivery is one atomic step in the queue's store (``Inbox.accept``): mark its
identifier seen, keep the delivery in the *inbox*, and put a job naming it on Huey's queue; or,
when the identifier was seen already, nothing. That is the web process's only write to the
queue's store, so the 202 costs one transaction (SQLite) or one round trip (Redis); it writes the
delivery log only to note a duplicate. The worker moves each delivery from the inbox into the
delivery log before it runs it; one that a crash left in the inbox is queued again by the
worker's sweep.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import math
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

import redis
from huey import Huey
from huey.storage import RedisExpireStorage, SqliteStorage

from pipeline.delivery import Delivery, Job
from pipeline.delivery_log import DeliveryLog
from pipeline.sites import queue_name, record_site
from service.errors import UnavailableError, short_error
from service.settings import Settings

log = logging.getLogger(__name__)

DELIVER_TASK = "deliver"
# How long the queue's store remembers an identifier. Jira retries for 30 minutes; a repeat
# later than this is still caught by the delivery log's unique identifier, just not in the web.
SEEN_SECONDS = 48 * 3600
# Pages the write-ahead log may reach before a commit checkpoints it (and so waits for the disk).
# SQLite's default, 1000, has a web process sync several times a second under load; the worker
# checkpoints every second anyway (``Sweeper``), so this is only the bound when it is not running.
WAL_PAGES = 10_000
# How long a writer of the SQLite queue sleeps between tries for the write lock: from the first
# to the longest, doubling, each spread by ±50 %. SQLite's own busy handler sleeps 1, 2, 5, 10 …
# ms, longer than most transactions here last, and each such sleep is a late 202.
BUSY_FIRST_SLEEP = 0.0001
BUSY_LONGEST_SLEEP = 0.002
# A lock taken by a worker names it (``claim_value``), so that the locks of a worker whose
# heartbeats stopped can be found and let go (``reap_dead``); others hold a plain value.
CLAIM_TAG = b"owner:"
BEATS_KEPT_SECONDS = 3600.0  # how long the record of a worker that stopped beating is kept


def claim_value(owner: str, job: str = "", issue: str | None = None) -> bytes:
    """A lock's value naming its owner (a worker) and, for an issue's lock, the job it runs."""
    return b"\n".join((CLAIM_TAG + owner.encode(), job.encode(), (issue or "").encode()))


def parse_claim(value: bytes) -> tuple[str, str, str] | None:
    """(owner, job, issue) from a lock's value; None for a lock that names no owner."""
    if not value.startswith(CLAIM_TAG):
        return None
    owner, _, rest = value[len(CLAIM_TAG) :].partition(b"\n")
    job, _, issue = rest.partition(b"\n")
    return owner.decode(), job.decode(), issue.decode()


def _is_lock(key: str) -> bool:
    return ".lock." in key


class InboxStorage(Protocol):
    """What both storages below add to Huey's: the inbox, ``accept`` in one step, the newest
    event time seen per issue, and the issues waiting to be placed on each board."""

    def accept(
        self,
        identifier: str,
        record: bytes,
        message: bytes,
        *,
        due: float,
        digest: str,
        issue: str | None,
        event_ms: int | None,
    ) -> bool: ...
    def inbox_get(self, identifier: str) -> bytes | None: ...
    def lock_and_get(
        self, lock: str, identifier: str, issue: str | None, *, ttl: int
    ) -> tuple[bool, bytes | None, int | None]: ...
    def unlock_and_drop(self, lock: str, identifier: str | None) -> None: ...
    def waiting_add(self, board: int, key: str, record: bytes) -> None: ...
    def waiting_list(self, board: int) -> dict[str, bytes]: ...
    def waiting_drop(self, board: int, entries: Mapping[str, bytes]) -> None: ...
    def inbox_overdue(self, *, before: float, now: float) -> list[bytes]: ...
    def inbox_size(self) -> int: ...
    def oldest_message(self) -> bytes | None: ...
    def forget_seen(self, *, now: float) -> int: ...
    def checkpoint(self) -> None: ...
    def count_up(self, key: str, *, ttl: float) -> int: ...
    def count(self, key: str) -> int: ...
    # holds on a Jira site (connector.breaker.HoldStore) and the deliveries they hold
    def hold_get(self, site: str) -> tuple[bytes, float] | None: ...
    def hold_open(self, site: str, record: bytes, probe_at: float) -> bool: ...
    def hold_probe(self, site: str, *, now: float, next_at: float) -> bool: ...
    def hold_update(self, site: str, record: bytes, probe_at: float) -> None: ...
    def hold_close(self, site: str) -> bool: ...
    def held_add(self, site: str, identifier: str, record: bytes) -> None: ...
    def held_take(self, site: str) -> list[bytes]: ...
    def held_count(self, site: str) -> int: ...
    # workers' heartbeats, and the locks of workers that stopped beating
    def beat(self, worker: str, *, now: float, ttl: float) -> None: ...
    def reap_dead(self, *, now: float) -> list[bytes]: ...


class SqliteLeaseStorage(SqliteStorage):
    """Huey's SQLite storage, plus the inbox and the seen identifiers (two tables beside Huey's),
    and a ``put_if_empty`` that also takes a ``ttl`` (the stock one refuses it), so that
    ``lock_task(name, ttl=...)`` gives a lock that expires like Redis's ``SET NX EX``.

    Its commits are not synced to disk one by one (``synchronous=NORMAL``; WAL keeps the file
    whole): a power loss may drop the last second or so of accepted deliveries. The worker syncs
    it once a second (see ``Sweeper``).
    """

    table_expiry = (
        "create table if not exists kv_expiry (queue text not null, key text not null, "
        "expires real not null, primary key(queue, key))"
    )
    table_seen = (
        "create table if not exists delivery_seen (queue text not null, id text not null, "
        "expires real not null, primary key(queue, id)) without rowid"
    )
    table_inbox = (
        "create table if not exists delivery_inbox (queue text not null, id text not null, "
        "due real not null, record blob not null, primary key(queue, id))"
    )  # a rowid table: its records (the bodies) are large, which WITHOUT ROWID handles worse
    table_latest = (
        "create table if not exists issue_latest (queue text not null, issue text not null, "
        "event_ms integer not null, expires real not null, primary key(queue, issue)) "
        "without rowid"
    )
    table_waiting = (
        "create table if not exists placement_waiting (queue text not null, board integer not "
        "null, key text not null, record blob not null, primary key(queue, board, key)) "
        "without rowid"
    )
    table_counts = (
        "create table if not exists shared_count (queue text not null, key text not null, "
        "value integer not null, expires real not null, primary key(queue, key)) without rowid"
    )  # pipeline.counters: what every web process must see alike (admin sessions, throttles)
    table_hold = (
        "create table if not exists site_hold (queue text not null, site text not null, "
        "record blob not null, probe_at real not null, primary key(queue, site))"
    )
    table_held = (
        "create table if not exists held_job (queue text not null, site text not null, "
        "id text not null, record blob not null, primary key(queue, site, id)) without rowid"
    )
    table_beat = (
        "create table if not exists worker_beat (queue text not null, worker text not null, "
        "expires real not null, primary key(queue, worker)) without rowid"
    )
    ddl: ClassVar[list[str]] = [
        *SqliteStorage.ddl,
        table_expiry,
        table_seen,
        table_inbox,
        table_latest,
        table_waiting,
        table_counts,
        table_hold,
        table_held,
        table_beat,
    ]
    owner: str | None = None  # the worker this process is, once it beats (see ``beat``)

    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        conn.execute("pragma synchronous=NORMAL")
        conn.execute(f"pragma wal_autocheckpoint={WAL_PAGES}")
        return conn

    @contextlib.contextmanager
    def db(self, commit: bool = False, close: bool = False) -> Iterator[sqlite3.Cursor]:
        """Huey's cursor. A write transaction's lock (``commit``) is waited for in short steps
        (``begin``) rather than by SQLite's busy handler; the schema's one-off transaction at
        start-up (``close``) is left to Huey."""
        if not commit or close:
            with super().db(commit=commit, close=close) as curs:
                yield curs
            return
        with self.lock:
            conn: sqlite3.Connection = self.conn
            curs = conn.cursor()
            try:
                self.begin(curs)
                yield curs
            except BaseException:
                conn.rollback()
                raise
            else:
                conn.commit()
            finally:
                curs.close()

    def begin(self, curs: sqlite3.Cursor) -> None:
        """BEGIN EXCLUSIVE, trying again after a sleep while another process writes, for up to
        the storage's ``timeout``; then SQLite's own "database is locked" error."""
        deadline = time.monotonic() + self._timeout
        curs.execute("pragma busy_timeout = 0")  # a busy lock is answered at once, not slept on
        try:
            for attempt in itertools.count():
                try:
                    curs.execute(self.begin_sql)
                    return
                except sqlite3.OperationalError as exc:
                    busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY  # or BUSY_RECOVERY …
                    if not busy or time.monotonic() > deadline:
                        raise
                sleep = min(BUSY_LONGEST_SLEEP, BUSY_FIRST_SLEEP * 2 ** min(attempt, 16))
                time.sleep(sleep * (0.5 + random.random()))
        finally:
            curs.execute(f"pragma busy_timeout = {round(self._timeout * 1000)}")

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        if self.owner is not None and _is_lock(key):
            value = claim_value(self.owner)  # a board's lock, say: it names its worker
        if ttl is None:
            return bool(super().put_if_empty(key, value))
        with self.db(commit=True) as curs:  # one exclusive transaction
            return self._put_if_empty(curs, key, value, ttl)

    def _put_if_empty(self, curs: sqlite3.Cursor, key: str, value: bytes, ttl: float) -> bool:
        now = time.time()
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

    def lock_and_get(
        self, lock: str, identifier: str, issue: str | None, *, ttl: int, value: bytes = b"1"
    ) -> tuple[bool, bytes | None, int | None]:
        with self.db(commit=True) as curs:
            if not self._put_if_empty(curs, lock, value, ttl):
                return False, None, None
            curs.execute(
                "select record from delivery_inbox where queue = ? and id = ?",
                (self.name, identifier),
            )
            row = curs.fetchone()
            curs.execute(
                "select event_ms from issue_latest where queue = ? and issue = ?",
                (self.name, issue or ""),
            )
            latest = curs.fetchone()
            return (
                True,
                None if row is None else bytes(row[0]),
                None if latest is None else int(latest[0]),
            )

    def unlock_and_drop(self, lock: str, identifier: str | None) -> None:
        with self.db(commit=True) as curs:
            curs.execute("delete from kv where queue = ? and key = ?", (self.name, lock))
            if identifier is not None:
                curs.execute(
                    "delete from delivery_inbox where queue = ? and id = ?",
                    (self.name, identifier),
                )

    def accept(
        self,
        identifier: str,
        record: bytes,
        message: bytes,
        *,
        due: float,
        digest: str,
        issue: str | None,
        event_ms: int | None,
    ) -> bool:
        with self.db(commit=True) as curs:  # one exclusive transaction
            # a new identifier and body, or ones whose memory ran out: (re)marked, and taken;
            # else nothing more (the identifier stays marked, as Redis's script leaves it)
            fresh = True
            for seen in dict.fromkeys((identifier, digest)):
                curs.execute(
                    "insert into delivery_seen (queue, id, expires) values (?, ?, ?) "
                    "on conflict (queue, id) do update set expires = excluded.expires "
                    "where delivery_seen.expires <= ?",
                    (self.name, seen, due + SEEN_SECONDS, due),
                )
                fresh = fresh and curs.rowcount == 1
            if not fresh:
                return False
            if issue is not None and event_ms is not None:
                curs.execute(
                    "insert into issue_latest (queue, issue, event_ms, expires) "
                    "values (?, ?, ?, ?) on conflict (queue, issue) do update set "
                    "event_ms = max(event_ms, excluded.event_ms), expires = excluded.expires",
                    (self.name, issue, event_ms, due + SEEN_SECONDS),
                )
            curs.execute(
                "insert or replace into delivery_inbox (queue, id, due, record) "
                "values (?, ?, ?, ?)",
                (self.name, identifier, due, self.to_blob(record)),
            )
            curs.execute(  # what SqliteStorage.enqueue writes, in this same transaction
                "insert into task (queue, data, priority) values (?, ?, 0)",
                (self.name, self.to_blob(message)),
            )
            return True

    def inbox_get(self, identifier: str) -> bytes | None:
        rows = self.sql(
            "select record from delivery_inbox where queue = ? and id = ?",
            (self.name, identifier),
            results=True,
        )
        return bytes(rows[0][0]) if rows else None

    def inbox_overdue(self, *, before: float, now: float) -> list[bytes]:
        rows = self.sql(
            "update delivery_inbox set due = ? where queue = ? and due < ? returning record",
            (now, self.name, before),
            commit=True,
            results=True,
        )
        return [bytes(record) for (record,) in rows]

    def inbox_size(self) -> int:
        rows = self.sql(
            "select count(*) from delivery_inbox where queue = ?", (self.name,), results=True
        )
        return int(rows[0][0])

    def oldest_message(self) -> bytes | None:
        """The job the consumer takes next (``SqliteStorage.dequeue``'s order), left in place."""
        rows = self.sql(
            "select data from task where queue = ? order by priority desc, id limit 1",
            (self.name,),
            results=True,
        )
        return bytes(rows[0][0]) if rows else None

    def forget_seen(self, *, now: float) -> int:
        with self.db(commit=True) as curs:
            curs.execute(
                "delete from delivery_seen where queue = ? and expires <= ?", (self.name, now)
            )
            forgotten = int(curs.rowcount)
            curs.execute(
                "delete from issue_latest where queue = ? and expires <= ?", (self.name, now)
            )
            curs.execute(
                "delete from shared_count where queue = ? and expires <= ?", (self.name, now)
            )
            return forgotten

    def waiting_add(self, board: int, key: str, record: bytes) -> None:
        self.sql(
            "insert or replace into placement_waiting (queue, board, key, record) "
            "values (?, ?, ?, ?)",
            (self.name, board, key, self.to_blob(record)),
            commit=True,
        )

    def waiting_list(self, board: int) -> dict[str, bytes]:
        rows = self.sql(
            "select key, record from placement_waiting where queue = ? and board = ?",
            (self.name, board),
            results=True,
        )
        return {str(key): bytes(record) for key, record in rows}

    def waiting_drop(self, board: int, entries: Mapping[str, bytes]) -> None:
        with self.db(commit=True) as curs:  # only entries not replaced since they were read
            curs.executemany(
                "delete from placement_waiting where queue = ? and board = ? and key = ? "
                "and record = ?",
                [(self.name, board, key, self.to_blob(record)) for key, record in entries.items()],
            )

    def count_up(self, key: str, *, ttl: float) -> int:
        now = time.time()
        rows = self.sql(
            "insert into shared_count (queue, key, value, expires) values (?, ?, 1, ?) "
            "on conflict (queue, key) do update set "
            "value = iif(expires <= ?, 1, value + 1), "
            "expires = iif(expires <= ?, excluded.expires, expires) returning value",
            (self.name, key, now + ttl, now, now),
            commit=True,
            results=True,
        )
        return int(rows[0][0])

    def count(self, key: str) -> int:
        rows = self.sql(
            "select value from shared_count where queue = ? and key = ? and expires > ?",
            (self.name, key, time.time()),
            results=True,
        )
        return int(rows[0][0]) if rows else 0

    # ---- holds on a Jira site, and the deliveries they hold

    def hold_get(self, site: str) -> tuple[bytes, float] | None:
        rows = self.sql(
            "select record, probe_at from site_hold where queue = ? and site = ?",
            (self.name, site),
            results=True,
        )
        return (bytes(rows[0][0]), float(rows[0][1])) if rows else None

    def hold_open(self, site: str, record: bytes, probe_at: float) -> bool:
        rows = self.sql(
            "insert into site_hold (queue, site, record, probe_at) values (?, ?, ?, ?) "
            "on conflict (queue, site) do nothing returning 1",
            (self.name, site, self.to_blob(record), probe_at),
            commit=True,
            results=True,
        )
        return bool(rows)

    def hold_probe(self, site: str, *, now: float, next_at: float) -> bool:
        rows = self.sql(
            "update site_hold set probe_at = ? where queue = ? and site = ? and probe_at <= ? "
            "returning 1",
            (next_at, self.name, site, now),
            commit=True,
            results=True,
        )
        return bool(rows)

    def hold_update(self, site: str, record: bytes, probe_at: float) -> None:
        self.sql(
            "update site_hold set record = ?, probe_at = ? where queue = ? and site = ?",
            (self.to_blob(record), probe_at, self.name, site),
            commit=True,
        )

    def hold_close(self, site: str) -> bool:
        rows = self.sql(
            "delete from site_hold where queue = ? and site = ? returning 1",
            (self.name, site),
            commit=True,
            results=True,
        )
        return bool(rows)

    def held_add(self, site: str, identifier: str, record: bytes) -> None:
        self.sql(
            "insert or replace into held_job (queue, site, id, record) values (?, ?, ?, ?)",
            (self.name, site, identifier, self.to_blob(record)),
            commit=True,
        )

    def held_take(self, site: str) -> list[bytes]:
        rows = self.sql(
            "delete from held_job where queue = ? and site = ? returning record",
            (self.name, site),
            commit=True,
            results=True,
        )
        return [bytes(record) for (record,) in rows]

    def held_count(self, site: str) -> int:
        rows = self.sql(
            "select count(*) from held_job where queue = ? and site = ?",
            (self.name, site),
            results=True,
        )
        return int(rows[0][0])

    # ---- heartbeats

    def beat(self, worker: str, *, now: float, ttl: float) -> None:
        with self.db(commit=True) as curs:
            curs.execute(
                "insert or replace into worker_beat (queue, worker, expires) values (?, ?, ?)",
                (self.name, worker, now + ttl),
            )
            curs.execute(
                "delete from worker_beat where queue = ? and expires < ?",
                (self.name, now - BEATS_KEPT_SECONDS),
            )

    def reap_dead(self, *, now: float) -> list[bytes]:
        """Let go of the locks whose worker stopped beating; their values. Read first, then
        (only when one is found) taken again in one write transaction."""
        if not self._dead_locks(now):
            return []
        with self.db(commit=True) as curs:
            reaped = []
            for key, value in self._dead_locks(now, curs):
                curs.execute("delete from kv where queue = ? and key = ?", (self.name, key))
                reaped.append(value)
            return reaped

    def _dead_locks(
        self, now: float, curs: sqlite3.Cursor | None = None
    ) -> list[tuple[str, bytes]]:
        prefix = f"{self.name}.lock."

        def rows(sql: str, params: tuple[Any, ...]) -> list[Any]:
            if curs is None:
                return list(self.sql(sql, params, results=True))
            curs.execute(sql, params)
            return list(curs.fetchall())

        alive = {
            str(worker)
            for (worker,) in rows(
                "select worker from worker_beat where queue = ? and expires > ?", (self.name, now)
            )
        }
        found = rows(
            "select key, value from kv where queue = ? and key >= ? and key < ?",
            (self.name, prefix, prefix + "\uffff"),
        )
        dead = []
        for key, value in found:
            claim = parse_claim(bytes(value))
            if claim is not None and claim[0] not in alive:
                dead.append((str(key), bytes(value)))
        return dead

    def flush_all(self) -> None:
        super().flush_all()
        tables = ("delivery_seen", "delivery_inbox", "issue_latest", "placement_waiting")
        for table in (*tables, "shared_count", "site_hold", "held_job", "worker_beat"):
            self.sql(f"delete from {table} where queue = ?", (self.name,), commit=True)

    def checkpoint(self) -> None:
        """Sync the write-ahead log to disk (see the class's docstring)."""
        self.sql("pragma wal_checkpoint(PASSIVE)")


# Mark the identifier and the body's digest seen (SET NX EX), and only if neither was: keep the
# delivery in the inbox (a hash, with a sorted set of when each is due), push the job where
# Huey's consumer pops, and raise the issue's newest event time (ARGV[6], '' when unknown).
_ACCEPT_SCRIPT = """
local fresh = redis.call('set', KEYS[1], '1', 'NX', 'EX', ARGV[1])
if KEYS[5] ~= KEYS[1] then
  fresh = redis.call('set', KEYS[5], '1', 'NX', 'EX', ARGV[1]) and fresh
end
if not fresh then
  return 0
end
redis.call('hset', KEYS[2], ARGV[2], ARGV[3])
redis.call('zadd', KEYS[3], ARGV[4], ARGV[2])
redis.call('lpush', KEYS[4], ARGV[5])
if ARGV[6] ~= '' then
  local known = tonumber(redis.call('get', KEYS[6]) or '-1')
  if tonumber(ARGV[6]) > known then
    redis.call('set', KEYS[6], ARGV[6], 'EX', ARGV[1])
  else
    redis.call('expire', KEYS[6], ARGV[1])
  end
end
return 1
"""

# Take the lock (SET NX EX, as Huey's lock_task) and, only then, read the delivery's record and
# the issue's newest event time. A lock naming its worker (ARGV[4] = the lock's name) is noted
# among the claims (KEYS[4]), where ``reap_dead`` finds it.
_LOCK_AND_GET_SCRIPT = """
if redis.call('set', KEYS[1], ARGV[3], 'NX', 'EX', ARGV[1]) then
  if ARGV[4] ~= '' then
    redis.call('hset', KEYS[4], ARGV[4], ARGV[5])
  end
  return {1, redis.call('get', KEYS[3]) or '', redis.call('hget', KEYS[2], ARGV[2])}
end
return {0}
"""

# A lock naming its worker (SET NX EX, noted among the claims): a board's lock, say.
_CLAIM_SCRIPT = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('hset', KEYS[2], ARGV[3], ARGV[4])
  return 1
end
return 0
"""

# Let go of a dead worker's lock (KEYS[1]) if it still names that worker (ARGV[1] is the start
# of its value), and of its claim (field ARGV[2] of KEYS[2]) if that still names it (ARGV[3]).
_REAP_SCRIPT = """
local value = redis.call('get', KEYS[1])
if redis.call('hget', KEYS[2], ARGV[2]) == ARGV[3] then
  redis.call('hdel', KEYS[2], ARGV[2])
end
if value and string.sub(value, 1, #ARGV[1]) == ARGV[1] then
  redis.call('del', KEYS[1])
  return value
end
return false
"""

# Open a hold unless one is open (record, probe_at).
_HOLD_OPEN_SCRIPT = """
if redis.call('exists', KEYS[1]) == 1 then
  return 0
end
redis.call('hset', KEYS[1], 'record', ARGV[1], 'probe_at', ARGV[2])
return 1
"""

# Take the turn to probe: the hold is open and its probe due by ARGV[1]; the next at ARGV[2].
_HOLD_PROBE_SCRIPT = """
local at = redis.call('hget', KEYS[1], 'probe_at')
if not at or tonumber(at) > tonumber(ARGV[1]) then
  return 0
end
redis.call('hset', KEYS[1], 'probe_at', ARGV[2])
return 1
"""

# Rewrite a hold that is still open.
_HOLD_UPDATE_SCRIPT = """
if redis.call('exists', KEYS[1]) == 1 then
  redis.call('hset', KEYS[1], 'record', ARGV[1], 'probe_at', ARGV[2])
end
return 0
"""

# Drop the waiting placements given (field, value, field, value, ...) unless replaced since.
_WAITING_DROP_SCRIPT = """
for i = 1, #ARGV, 2 do
  if redis.call('hget', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('hdel', KEYS[1], ARGV[i])
  end
end
return 0
"""


class RedisInboxStorage(RedisExpireStorage):
    """Huey's Redis storage (locks are plain keys set with NX and EX), plus the inbox.

    ``single_connection``: every command on one connection held for the process's life (redis-py's
    ``single_connection_client``, behind a lock), instead of one checked out of a pool and
    probed for each command. For the web process, whose only hot command is ``accept``: it
    saves about a third of redis-py's cost per command. A command that finds the connection
    closed (Redis restarted) is sent once more on a new one; that is safe for ``accept``, whose
    second run finds the identifier seen. Not for the worker, whose consumer threads block on
    the queue."""

    def __init__(self, *args: Any, single_connection: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if single_connection:
            self.pool.connection_kwargs["retry_on_error"] = [redis.ConnectionError]
            self.conn = self.redis_client(connection_pool=self.pool, single_connection_client=True)
        prefix = f"{self.queue_key}.deliveries"
        self.seen_prefix = f"{prefix}.seen."
        self.latest_prefix = f"{prefix}.latest."
        self.inbox_key = f"{prefix}.inbox"
        self.inbox_due_key = f"{prefix}.inbox.due"
        self.waiting_prefix = f"{self.queue_key}.placements."
        self.count_prefix = f"{self.queue_key}.count."
        self.hold_prefix = f"{self.queue_key}.hold."
        self.held_prefix = f"{self.queue_key}.held."
        self.beat_prefix = f"{self.queue_key}.worker."
        self.claims_key = f"{self.queue_key}.claims"  # lock name -> the worker holding it
        self.owner: str | None = None  # the worker this process is, once it beats
        self._accept = self.conn.register_script(_ACCEPT_SCRIPT)
        self._lock_and_get = self.conn.register_script(_LOCK_AND_GET_SCRIPT)
        self._waiting_drop = self.conn.register_script(_WAITING_DROP_SCRIPT)
        self._claim = self.conn.register_script(_CLAIM_SCRIPT)
        self._reap = self.conn.register_script(_REAP_SCRIPT)
        self._hold_open = self.conn.register_script(_HOLD_OPEN_SCRIPT)
        self._hold_probe = self.conn.register_script(_HOLD_PROBE_SCRIPT)
        self._hold_update = self.conn.register_script(_HOLD_UPDATE_SCRIPT)

    def accept(
        self,
        identifier: str,
        record: bytes,
        message: bytes,
        *,
        due: float,
        digest: str,
        issue: str | None,
        event_ms: int | None,
    ) -> bool:
        keys = [
            self.seen_prefix + identifier,
            self.inbox_key,
            self.inbox_due_key,
            self.queue_key,
            self.seen_prefix + digest,
            self.latest_prefix + (issue or ""),
        ]
        stamp = "" if issue is None or event_ms is None else str(event_ms)
        args = [SEEN_SECONDS, identifier, record, due, message, stamp]
        return bool(self._accept(keys=keys, args=args))

    def inbox_get(self, identifier: str) -> bytes | None:
        found = self.conn.hget(self.inbox_key, identifier)
        return None if found is None else bytes(found)

    def lock_and_get(
        self, lock: str, identifier: str, issue: str | None, *, ttl: int, value: bytes = b"1"
    ) -> tuple[bool, bytes | None, int | None]:
        keys = [
            self.result_key(lock),
            self.inbox_key,
            self.latest_prefix + (issue or ""),
            self.claims_key,
        ]
        owner = self.owner or ""
        args = [ttl, identifier, value, lock if owner else "", owner]
        answer = self._lock_and_get(keys=keys, args=args)
        if not answer[0]:
            return False, None, None
        latest = int(answer[1]) if answer[1] else None
        record = answer[2] if len(answer) > 2 else None  # Lua ends the list at a missing field
        return True, None if record is None else bytes(record), latest

    def waiting_add(self, board: int, key: str, record: bytes) -> None:
        self.conn.hset(f"{self.waiting_prefix}{board}", key, record)

    def waiting_list(self, board: int) -> dict[str, bytes]:
        found = self.conn.hgetall(f"{self.waiting_prefix}{board}")
        return {bytes(k).decode(): bytes(v) for k, v in found.items()}

    def waiting_drop(self, board: int, entries: Mapping[str, bytes]) -> None:
        if entries:
            pairs = [part for key, record in entries.items() for part in (key, record)]
            self._waiting_drop(keys=[f"{self.waiting_prefix}{board}"], args=pairs)

    def unlock_and_drop(self, lock: str, identifier: str | None) -> None:
        with self.conn.pipeline() as pipe:  # MULTI … EXEC
            pipe.delete(self.result_key(lock))
            if self.owner is not None:
                pipe.hdel(self.claims_key, lock)
            if identifier is not None:
                pipe.hdel(self.inbox_key, identifier).zrem(self.inbox_due_key, identifier)
            pipe.execute()

    def inbox_overdue(self, *, before: float, now: float) -> list[bytes]:
        ids = self.conn.zrangebyscore(self.inbox_due_key, "-inf", f"({before}")
        if not ids:
            return []
        # xx: only entries still there, so one dropped meanwhile does not come back
        self.conn.zadd(self.inbox_due_key, dict.fromkeys(ids, now), xx=True)
        return [bytes(r) for r in self.conn.hmget(self.inbox_key, ids) if r is not None]

    def inbox_size(self) -> int:
        return int(self.conn.hlen(self.inbox_key))

    def oldest_message(self) -> bytes | None:
        found = self.conn.lindex(self.queue_key, -1)  # LPUSH in, BRPOP out: the right end
        return None if found is None else bytes(found)

    def forget_seen(self, *, now: float) -> int:
        return 0  # Redis expires them itself

    def count_up(self, key: str, *, ttl: float) -> int:
        with self.conn.pipeline() as pipe:  # MULTI … EXEC: the first count sets the expiry
            pipe.set(self.count_prefix + key, 0, px=max(1, round(ttl * 1000)), nx=True)
            pipe.incr(self.count_prefix + key)
            return int(pipe.execute()[1])

    def count(self, key: str) -> int:
        found = self.conn.get(self.count_prefix + key)
        return 0 if found is None else int(found)

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        if self.owner is None or not _is_lock(key):
            return bool(super().put_if_empty(key, value, ttl))
        keys = [self.result_key(key), self.claims_key]
        args = [claim_value(self.owner), math.ceil(ttl or SEEN_SECONDS), key, self.owner]
        return bool(self._claim(keys=keys, args=args))

    def delete_data(self, key: str) -> Any:
        if self.owner is None or not _is_lock(key):
            return super().delete_data(key)
        with self.conn.pipeline() as pipe:  # MULTI … EXEC
            pipe.delete(self.result_key(key)).hdel(self.claims_key, key)
            return pipe.execute()[0]

    # ---- holds on a Jira site, and the deliveries they hold

    def hold_get(self, site: str) -> tuple[bytes, float] | None:
        record, probe_at = self.conn.hmget(self.hold_prefix + site, ["record", "probe_at"])
        return None if record is None else (bytes(record), float(probe_at or 0.0))

    def hold_open(self, site: str, record: bytes, probe_at: float) -> bool:
        return bool(self._hold_open(keys=[self.hold_prefix + site], args=[record, repr(probe_at)]))

    def hold_probe(self, site: str, *, now: float, next_at: float) -> bool:
        args = [repr(now), repr(next_at)]
        return bool(self._hold_probe(keys=[self.hold_prefix + site], args=args))

    def hold_update(self, site: str, record: bytes, probe_at: float) -> None:
        self._hold_update(keys=[self.hold_prefix + site], args=[record, repr(probe_at)])

    def hold_close(self, site: str) -> bool:
        return bool(self.conn.delete(self.hold_prefix + site))

    def held_add(self, site: str, identifier: str, record: bytes) -> None:
        self.conn.hset(self.held_prefix + site, identifier, record)

    def held_take(self, site: str) -> list[bytes]:
        with self.conn.pipeline() as pipe:  # MULTI … EXEC: read and emptied at once
            found = pipe.hgetall(self.held_prefix + site).delete(self.held_prefix + site).execute()
        return [bytes(record) for record in found[0].values()]

    def held_count(self, site: str) -> int:
        return int(self.conn.hlen(self.held_prefix + site))

    # ---- heartbeats

    def beat(self, worker: str, *, now: float, ttl: float) -> None:
        self.conn.set(self.beat_prefix + worker, repr(now), px=max(1, round(ttl * 1000)))

    def reap_dead(self, *, now: float) -> list[bytes]:
        claims = {
            bytes(lock).decode(): bytes(owner).decode()
            for lock, owner in self.conn.hgetall(self.claims_key).items()
        }
        owners = sorted(set(claims.values()))
        if not owners:
            return []
        alive = self.conn.mget([self.beat_prefix + owner for owner in owners])
        dead = {owner for owner, beat in zip(owners, alive, strict=True) if beat is None}
        reaped = []
        for lock, owner in claims.items():
            if owner in dead:
                value = self._reap(
                    keys=[self.result_key(lock), self.claims_key],
                    args=[CLAIM_TAG + owner.encode() + b"\n", lock, owner],
                )
                if value:
                    reaped.append(bytes(value))
        return reaped

    def volatile(self) -> bool:
        """True when the server keeps no append-only file: a restart of Redis would then lose
        what came in since its last snapshot, deliveries already answered 202 included."""
        try:
            return not int(self.conn.info("persistence").get("aof_enabled", 0))
        except Exception:  # INFO refused (some hosted Redis): say nothing
            return False

    def flush_all(self) -> None:
        super().flush_all()
        self.conn.delete(self.inbox_key, self.inbox_due_key, self.claims_key)
        prefixes = (
            self.seen_prefix,
            self.latest_prefix,
            self.waiting_prefix,
            self.count_prefix,
            self.hold_prefix,
            self.held_prefix,
            self.beat_prefix,
        )
        for prefix in prefixes:
            for key in self.conn.scan_iter(match=prefix + "*", count=1000):
                self.conn.delete(key)

    def checkpoint(self) -> None:
        pass  # Redis persists as its own configuration says (see the README)


_REVOKE_PREFIX = "r:"  # the start of a task's revocation key (huey.api.Task.revoke_id)


class UnrevokedHuey(Huey):
    """Huey whose tasks are never revoked: a delivery is skipped by the delivery log instead
    (a job whose delivery is done or not due does nothing). Huey's consumer asks the store
    before each job whether it was revoked and clears the job's revocation key after it: two
    steps in the queue's store per delivery (on SQLite, one of them a write, which takes the lock
    the web processes accept under), left out here."""

    def is_revoked(self, task: Any, timestamp: Any = None, peek: bool = True) -> bool:
        return False

    def delete(self, key: str) -> Any:
        if key.startswith(_REVOKE_PREFIX):
            return False  # a revocation key: never written (see ``revoke``)
        return super().delete(key)

    def revoke(self, task: Any, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("deliveries are not revoked; the delivery log skips them")

    def revoke_all(self, task_class: Any, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("deliveries are not revoked; the delivery log skips them")


class SqliteLeaseHuey(UnrevokedHuey):
    storage_class = SqliteLeaseStorage


class RedisInboxHuey(UnrevokedHuey):
    storage_class = RedisInboxStorage


def warn_if_volatile(huey: Huey) -> None:
    """Say so at start-up when the queue's Redis would lose accepted deliveries on a restart."""
    volatile = getattr(huey.storage, "volatile", None)
    if volatile is not None and volatile():
        log.warning(
            "REDIS_URL: this Redis keeps no append-only file, so a restart of it loses the "
            "deliveries it holds; run it with `appendonly yes` (see the README)"
        )


def make_huey(settings: Settings, *, web: bool = False) -> Huey:
    """The queue for these settings. Nothing is stored in results: the delivery log says it all.
    ``web``: for a web process, which only accepts deliveries (see ``RedisInboxStorage``).
    Its name is the Jira site's (``pipeline.sites``): work that came for another site is never
    seen."""
    name = queue_name(settings.jira_url)
    huey: Huey
    if settings.redis_url:
        huey = RedisInboxHuey(
            name,
            url=settings.redis_url,
            results=False,
            blocking=True,
            read_timeout=1,
            single_connection=web,
        )
    else:
        path = Path(settings.queue_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        huey = SqliteLeaseHuey(name, filename=str(path), results=False, timeout=30)
    record_site(huey, settings.jira_url)
    return huey


class Inbox:
    """Deliveries accepted by a web process and not yet moved into the delivery log."""

    def __init__(self, huey: Huey) -> None:
        self.huey = huey
        self.storage: InboxStorage = huey.storage

    def accept(self, delivery: Delivery, message: bytes) -> bool:
        """Keep the delivery and queue ``message``, unless its identifier or its body was seen
        (a replay under a new identifier): False. Its event time raises its issue's newest."""
        return self.storage.accept(
            delivery.id,
            _encode(delivery),
            message,
            due=delivery.received_at,
            digest=_replay_key(delivery),
            issue=delivery.issue_key,
            event_ms=delivery.event_ms,
        )

    def take(self, identifier: str) -> Delivery | None:
        record = self.storage.inbox_get(identifier)
        return None if record is None else _decode(record)

    def lock(self, name: str, job: Job, *, ttl: int) -> tuple[bool, Delivery | None, int | None]:
        """Take the lock ``name`` (Huey's ``lock_task(name, ttl)``) and, if it was free, read the
        job's delivery and its issue's newest event time (epoch ms, None when unknown): one step
        in the store. (False, None, None) while another job holds the lock."""
        owner = getattr(self.storage, "owner", None)
        value = b"1" if owner is None else claim_value(owner, job.id, job.issue_key)
        locked, record, latest = self.storage.lock_and_get(
            _lock_key(self.huey, name), job.id, job.issue_key, ttl=ttl, value=value
        )
        return locked, None if record is None else _decode(record), latest

    def unlock(self, name: str, *, drop: str | None) -> None:
        """Release the lock ``name``, and drop delivery ``drop`` (which the log now holds) from
        the inbox: one step in the store."""
        self.storage.unlock_and_drop(_lock_key(self.huey, name), drop)

    def overdue(self, *, lease: float, now: float) -> list[Job]:
        """Deliveries whose job was lost (a worker killed before it let go of the delivery: its
        copy stays here until the log has it); each is due again at ``now``, so it comes back
        once per lease.

        The queue is first in, first out: a delivery accepted a lease before the job at the head
        of the queue was queued had its own job taken long ago, so it is lost, not waiting. (A
        lease of margin also covers clocks that differ between machines.)"""
        head = self.queued_at_head()
        before = min(now, head if head is not None else now) - lease
        waiting = map(_decode, self.storage.inbox_overdue(before=before, now=now))
        return [Job(delivery.id, delivery.issue_key) for delivery in waiting]

    def queued_at_head(self) -> float | None:
        """When the job the consumer takes next was queued; None with an empty queue, and -inf
        when that job does not say (another task, or a job from an older version)."""
        message = self.storage.oldest_message()
        if message is None:
            return None
        args = self.huey.deserialize_task(message).args
        fields = args[0] if args and isinstance(args[0], dict) else {}
        at = fields.get("at")
        return float(at) if isinstance(at, int | float) else float("-inf")

    def size(self) -> int:
        return self.storage.inbox_size()

    def forget_seen(self, *, now: float) -> int:
        """Drop identifiers remembered past ``SEEN_SECONDS`` (SQLite; Redis expires its own)."""
        return self.storage.forget_seen(now=now)

    def checkpoint(self) -> None:
        self.storage.checkpoint()


def _replay_key(delivery: Delivery) -> str:
    """What makes a replay of ``delivery``'s body a duplicate: its digest when the body carries
    a timestamp (two events are never signed with the same body then); without one, two
    different events may send equal bodies, and only the identifier counts."""
    if delivery.event_ms is None:
        return delivery.id
    return "sha256:" + hashlib.sha256(delivery.body.encode()).hexdigest()


def _lock_key(huey: Huey, name: str) -> str:
    return f"{huey.name}.lock.{name}"  # what Huey's TaskLock uses, so both see the same lock


def _encode(delivery: Delivery) -> bytes:
    """The delivery's fields as a line of JSON, then its body as received: the body, most of the
    record, is neither escaped nor parsed on the way in and out of the inbox."""
    fields = {name: value for name, value in vars(delivery).items() if name != "body"}
    return json.dumps(fields, separators=(",", ":")).encode() + b"\n" + delivery.body.encode()


def _decode(record: bytes) -> Delivery:
    head, _, body = record.partition(b"\n")
    return Delivery(**json.loads(head), body=body.decode())


class DeliveryQueue:
    """The ``deliver`` task on a Huey instance. ``handle`` is given in the worker only; a web
    process just accepts deliveries."""

    def __init__(self, huey: Huey, handle: Callable[[Job], None] | None = None) -> None:
        self.huey = huey
        self.inbox = Inbox(huey)
        self._handle = handle
        self._task = huey.task(name=DELIVER_TASK)(self._deliver)

    def accept(self, delivery: Delivery) -> bool:
        """The web side: keep the delivery and queue its job, in one step; False for a repeat."""
        job = _job(delivery, at=delivery.received_at)
        message = self.huey.serialize_task(self._task.s(job))
        return self.inbox.accept(delivery, message)

    def enqueue(self, delivery: Delivery | Job) -> None:
        """Queue (again) the job of a delivery the log or the inbox holds."""
        self._task(_job(delivery, at=time.time()))

    def pending(self) -> int:
        """Jobs waiting in the queue or scheduled for later."""
        return int(self.huey.pending_count() + self.huey.scheduled_count())

    def _deliver(self, fields: dict[str, Any]) -> None:
        if self._handle is None:
            raise RuntimeError("this process only enqueues deliveries; run `jira-impact worker`")
        # Jobs queued before this version carried the whole delivery; its id and issue suffice.
        self._handle(Job(fields["id"], fields.get("issue_key")))


def _job(delivery: Delivery | Job, *, at: float) -> dict[str, Any]:
    return {"id": delivery.id, "issue_key": delivery.issue_key, "at": at}  # plain data


class QueueDispatcher:
    """The receiver's dispatcher: accept into the queue's store; the web process makes no Jira
    call and writes the delivery log only to note a duplicate."""

    def __init__(self, *, log: DeliveryLog, queue: DeliveryQueue) -> None:
        self.log = log
        self.queue = queue

    @classmethod
    def from_settings(cls, settings: Settings) -> QueueDispatcher:
        huey = make_huey(settings, web=True)
        warn_if_volatile(huey)
        return cls(log=DeliveryLog.from_url(settings.database_url), queue=DeliveryQueue(huey))

    def submit(self, delivery: Delivery) -> str:
        try:
            fresh = self.queue.accept(delivery)
        except Exception as exc:
            log.error("queue refused %s: %s", delivery.id, short_error(exc))
            raise UnavailableError("the delivery could not be queued; try again later") from exc
        if fresh:
            return "queued"
        log.info("duplicate delivery %s for %s", delivery.id, delivery.issue_key)
        try:
            self.log.note_duplicate(delivery)
        except Exception as exc:  # the answer stands: the first copy is safe in the queue
            log.warning(
                "duplicate %s not noted in the delivery log: %s", delivery.id, short_error(exc)
            )
        return "duplicate"
