"""The delivery log: one row per webhook delivery received, in a real database (SQLAlchemy).

SQLite by default (a file under ``var/``), PostgreSQL through ``DATABASE_URL``. The schema is
owned by the Alembic migrations in ``migrations/`` (``jira-impact db upgrade``).

The log is also what makes delivery exactly-once in effect:

- ``start`` inserts the row, running, in one statement that detects a repeat (``dedupe_key`` is
  unique), so a delivery moved from the queue's inbox twice (a worker killed in between) is
  logged once;
- ``claim`` moves a row from ``queued`` to ``running`` in one statement, so a job that the queue
  hands out twice runs once;
- ``recover`` finds what a crash left behind (a job running past its lease, or one due long ago
  that no worker took) so the worker can enqueue it again.

Times are epoch seconds (floats), the same in both databases.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pipeline.delivery import Delivery, Job

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"

QUEUED, RUNNING = "queued", "running"
DONE, IGNORED, DUPLICATE, FAILED, DEAD = "done", "ignored", "duplicate", "failed", "dead"
FINAL = (DONE, IGNORED, DUPLICATE, FAILED, DEAD)
STATUSES = (QUEUED, RUNNING, *FINAL)
_TEXT_KEPT = 2000  # characters of an error kept


class Base(DeclarativeBase):
    pass


class DeliveryRow(Base):
    __tablename__ = "deliveries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identifier: Mapped[str] = mapped_column(String(200), index=True)
    # The identifier again on the first receipt, NULL on a duplicate's row: unique, so that
    # inserting a repeat is detected by the database itself, in every process at once.
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(100))
    issue_key: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    jira_retry: Mapped[int] = mapped_column(Integer, default=0)  # X-Atlassian-Webhook-Retry
    received_at: Mapped[float] = mapped_column(Float, index=True)
    due_at: Mapped[float] = mapped_column(Float)  # when the next attempt may start
    lease_until: Mapped[float | None] = mapped_column(Float)  # while running
    finished_at: Mapped[float | None] = mapped_column(Float)
    plan: Mapped[str | None] = mapped_column(Text)  # Plan.summary()
    calls: Mapped[str | None] = mapped_column(Text)  # every attempt's Jira calls (see worker.py)
    error: Mapped[str | None] = mapped_column(Text)  # the last error, Jira's message included
    body: Mapped[str | None] = mapped_column(Text)  # kept to replay it; NULL on duplicates

    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_deliveries_dedupe_key"),
        Index("ix_deliveries_status_due", "status", "due_at"),
    )


@dataclass(frozen=True)
class Claim:
    """A delivery a worker now runs, as the log holds it; ``attempts`` counts this run, from 1
    (a replay starts again from 1). ``ran_before``: an earlier run of it made calls to Jira (it
    was retried, or replayed), so it may have written something already."""

    attempts: int
    delivery: Delivery
    ran_before: bool = False

    @property
    def first(self) -> bool:
        return self.attempts == 1 and not self.ran_before


@dataclass(frozen=True)
class Entry:
    """One row of the log, as the command line shows it."""

    seq: int
    identifier: str
    event: str
    issue_key: str | None
    status: str
    attempts: int
    received_at: float
    finished_at: float | None
    plan: str | None
    calls: str | None
    error: str | None


class DeliveryLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # The statements of the hot paths, built once: on every delivery the worker inserts one
        # row (``start``) and updates it when the attempt ends.
        self._insert_new = (
            _insert_ignoring_repeat(engine)
            .values({name: bindparam(name) for name in (*_ROW_FIELDS, "dedupe_key", "lease_until")})
            .returning(DeliveryRow.seq)
        )
        self._insert_duplicate = insert(DeliveryRow).values(
            {name: bindparam(name) for name in (*_ROW_FIELDS, "finished_at")}
        )
        self._claim = (
            update(DeliveryRow)
            .where(
                DeliveryRow.dedupe_key == bindparam("b_identifier"),
                DeliveryRow.status == QUEUED,
                DeliveryRow.due_at <= bindparam("b_due_by"),
            )
            .values(
                status=RUNNING,
                attempts=DeliveryRow.attempts + 1,
                lease_until=bindparam("b_lease_until"),
            )
            # length(calls), not "calls IS NOT NULL": SQLAlchemy read the latter back as true
            # from SQLite's RETURNING even for a NULL, so every claim looked like a retry
            .returning(DeliveryRow.attempts, func.length(DeliveryRow.calls), *_DELIVERY_COLUMNS)
        )
        appended = DeliveryRow.calls + "\n" + bindparam("b_attempt_log", type_=Text)
        self._end_attempt = (
            update(DeliveryRow)
            .where(
                DeliveryRow.dedupe_key == bindparam("b_identifier"), DeliveryRow.status == RUNNING
            )
            .values(
                status=bindparam("b_status"),
                due_at=func.coalesce(bindparam("b_due_at", type_=Float), DeliveryRow.due_at),
                finished_at=bindparam("b_finished_at", type_=Float),
                lease_until=None,
                plan=func.coalesce(bindparam("b_plan", type_=Text), DeliveryRow.plan),
                # every attempt's calls, one after the other (NULL || text is NULL)
                calls=func.coalesce(
                    appended, bindparam("b_attempt_log", type_=Text), DeliveryRow.calls
                ),
                error=bindparam("b_error", type_=Text),
            )
        )

    @classmethod
    def from_url(cls, url: str) -> DeliveryLog:
        return cls(make_engine(url))

    # ---- the web process and the worker

    def admit(self, delivery: Delivery) -> bool:
        """Store a delivery as queued, for a later ``claim``; False, and no change, when its
        identifier is logged already. Raises ``SQLAlchemyError`` when the database can't take
        it. (The worker uses ``start``, which also claims it.)"""
        row = _row(delivery, status=QUEUED) | {"dedupe_key": delivery.id, "lease_until": None}
        with self.engine.begin() as conn:
            return conn.execute(self._insert_new, row).first() is not None

    def start(self, delivery: Delivery, *, now: float, lease: float) -> Claim | None:
        """``admit`` and ``claim`` in one transaction, for the worker taking a delivery from the
        inbox: new to the log, it goes in running, attempt 1; logged already (a run killed
        before it dropped the inbox's copy), it is claimed like any other."""
        row = _row(delivery, status=RUNNING) | {
            "dedupe_key": delivery.id,
            "attempts": 1,
            "lease_until": now + lease,
        }
        with self.engine.begin() as conn:
            if conn.execute(self._insert_new, row).first() is not None:
                return Claim(attempts=1, delivery=delivery)
        return self.claim(delivery.id, now=now, lease=lease)

    def note_duplicate(self, delivery: Delivery) -> None:
        """A row for a repeat the web process turned away (without the body)."""
        row = _row(delivery, status=DUPLICATE)
        with self.engine.begin() as conn:
            conn.execute(self._insert_duplicate, row | {"body": None, "finished_at": row["due_at"]})

    # ---- the worker

    def claim(self, identifier: str, *, now: float, lease: float) -> Claim | None:
        """queued → running, if it is queued and due; None when another run has it or had it."""
        # due_by: the queue's clock ticks in whole seconds, so a retry may start a bit early
        params = {"b_identifier": identifier, "b_due_by": now + 1.0, "b_lease_until": now + lease}
        with self.engine.begin() as conn:
            row = conn.execute(self._claim, params).first()
        if row is None:
            return None
        return Claim(attempts=row[0], delivery=_delivery(row[2:]), ran_before=bool(row[1]))

    def finish(
        self,
        identifier: str,
        status: str,
        *,
        now: float,
        plan: str | None = None,
        attempt_log: str | None = None,
        error: str | None = None,
    ) -> None:
        """running → a final status; ``attempt_log`` (this attempt's calls) is appended."""
        assert status in FINAL
        self._end(identifier, status, finished_at=now, plan=plan, log=attempt_log, error=error)

    def retry_later(
        self, identifier: str, *, due_at: float, error: str, attempt_log: str | None = None
    ) -> None:
        """running → queued again, due at ``due_at``."""
        self._end(identifier, QUEUED, due_at=due_at, log=attempt_log, error=error)

    def hold(self, identifier: str, *, now: float, error: str, attempt_log: str | None) -> None:
        """running → queued, due now, the attempt not counted: the delivery waits for its Jira
        site (``pipeline.holds``), which is no fault of its own. ``attempt_log``, when the
        attempt made calls, is appended (so the next run knows it may have written)."""
        appended = DeliveryRow.calls + "\n" + bindparam("b_log", type_=Text)
        statement = (
            update(DeliveryRow)
            .where(DeliveryRow.dedupe_key == identifier, DeliveryRow.status == RUNNING)
            .values(
                status=QUEUED,
                attempts=func.max(DeliveryRow.attempts - 1, 0)
                if self.engine.dialect.name == "sqlite"
                else func.greatest(DeliveryRow.attempts - 1, 0),
                due_at=now,
                lease_until=None,
                calls=func.coalesce(appended, bindparam("b_log", type_=Text), DeliveryRow.calls),
                error=_clip(error),
            )
        )
        with self.engine.begin() as conn:
            conn.execute(statement, {"b_log": attempt_log})

    def release_running(self, identifier: str, *, now: float) -> bool:
        """running → queued, due now: its worker died (its heartbeats stopped) while it ran.
        False when it is not running (it ended, or another run took it)."""
        statement = (
            update(DeliveryRow)
            .where(DeliveryRow.dedupe_key == identifier, DeliveryRow.status == RUNNING)
            .values(status=QUEUED, due_at=now, lease_until=None)
        )
        with self.engine.begin() as conn:
            return bool(conn.execute(statement).rowcount)

    def _end(
        self,
        identifier: str,
        status: str,
        *,
        due_at: float | None = None,
        finished_at: float | None = None,
        plan: str | None = None,
        log: str | None = None,
        error: str | None = None,
    ) -> None:
        params = {
            "b_identifier": identifier,
            "b_status": status,
            "b_due_at": due_at,
            "b_finished_at": finished_at,
            "b_plan": plan,
            "b_attempt_log": log,
            "b_error": _clip(error),
        }
        with self.engine.begin() as conn:
            conn.execute(self._end_attempt, params)

    def recover(self, *, now: float, grace: float) -> list[Job]:
        """Queue again what a crash left behind: runs whose lease ran out (the worker died), and
        deliveries due more than ``grace`` ago that no worker took (a job the queue lost).

        Their ``due_at`` moves to now, so each is handed back once per ``grace``; a job the queue
        still holds as well is harmless, since ``claim`` lets one run through."""
        statement = (
            update(DeliveryRow)
            .where(
                or_(
                    (DeliveryRow.status == RUNNING) & (DeliveryRow.lease_until < now),
                    (DeliveryRow.status == QUEUED) & (DeliveryRow.due_at < now - grace),
                )
            )
            .values(status=QUEUED, due_at=now, lease_until=None)
            .returning(DeliveryRow.identifier, DeliveryRow.issue_key)
        )
        with self.engine.begin() as conn:
            return [Job(*row) for row in conn.execute(statement)]

    def purge(self, *, before: float, keep: int | None = None) -> int:
        """Delete finished rows received before ``before`` and, with ``keep``, the oldest
        finished rows beyond that many in all; the number deleted. A delivery still queued or
        running is never dropped."""
        finished = DeliveryRow.status.in_(FINAL)
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(DeliveryRow).where(DeliveryRow.received_at < before, finished)
            )
            dropped = result.rowcount or 0
            if keep is not None:
                total = conn.execute(select(func.count()).select_from(DeliveryRow)).scalar_one()
                if total > keep:
                    oldest = select(DeliveryRow.seq).where(finished).order_by(DeliveryRow.seq)
                    result = conn.execute(
                        delete(DeliveryRow).where(
                            DeliveryRow.seq.in_(oldest.limit(total - keep).scalar_subquery())
                        )
                    )
                    dropped += result.rowcount or 0
        return dropped

    # ---- the command line

    def replay(
        self, identifiers: Iterable[str] = (), *, all_dead: bool = False, now: float
    ) -> list[Job]:
        """Put finished deliveries back in the queue with a fresh count of attempts."""
        chosen = (
            DeliveryRow.status == DEAD
            if all_dead
            else DeliveryRow.dedupe_key.in_(list(identifiers))
        )
        statement = (
            update(DeliveryRow)
            .where(chosen, DeliveryRow.status.in_((DONE, IGNORED, FAILED, DEAD)))
            .values(status=QUEUED, attempts=0, due_at=now, finished_at=None, error=None)
            .returning(DeliveryRow.identifier, DeliveryRow.issue_key)
        )
        with self.engine.begin() as conn:
            return [Job(*row) for row in conn.execute(statement)]

    def checkpoint(self) -> None:
        """SQLite: sync the write-ahead log to disk and fold it into the file. Its commits are
        not synced one by one (``synchronous=NORMAL``), so this is what bounds what a power loss
        can take; a process crash takes nothing. PostgreSQL syncs every commit itself."""
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def entries(
        self,
        *,
        status: str | Sequence[str] | None = None,
        issue_key: str | None = None,
        limit: int = 50,
    ) -> list[Entry]:
        """The newest rows first, of this status (or any of these) and this issue when given."""
        query = select(*(getattr(DeliveryRow, f) for f in Entry.__dataclass_fields__))
        if isinstance(status, str):
            query = query.where(DeliveryRow.status == status)
        elif status:
            query = query.where(DeliveryRow.status.in_(list(status)))
        if issue_key:
            query = query.where(DeliveryRow.issue_key == issue_key)
        query = query.order_by(DeliveryRow.seq.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [Entry(*row) for row in conn.execute(query)]

    def get(self, identifier: str) -> Entry | None:
        query = select(*(getattr(DeliveryRow, f) for f in Entry.__dataclass_fields__)).where(
            DeliveryRow.dedupe_key == identifier
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else Entry(*row)

    def counts(self) -> dict[str, int]:
        query = select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)
        with self.engine.connect() as conn:
            return {status: n for status, n in conn.execute(query)}


_DELIVERY_COLUMNS = (
    DeliveryRow.identifier,
    DeliveryRow.event,
    DeliveryRow.issue_key,
    DeliveryRow.body,
    DeliveryRow.jira_retry,
    DeliveryRow.received_at,
)


def _delivery(row: Any) -> Delivery:
    identifier, event_name, issue_key, body, jira_retry, received_at = row
    return Delivery(
        id=identifier,
        event=event_name,
        issue_key=issue_key,
        body=body or "",
        retry=jira_retry,
        received_at=received_at,
    )


_ROW_FIELDS = (
    "identifier",
    "event",
    "issue_key",
    "status",
    "attempts",
    "jira_retry",
    "received_at",
    "due_at",
    "body",
)


def _row(delivery: Delivery, *, status: str) -> dict[str, Any]:
    return {
        "identifier": delivery.id,
        "event": delivery.event[:100],
        "issue_key": delivery.issue_key[:100] if delivery.issue_key else None,
        "status": status,
        "attempts": 0,
        "jira_retry": delivery.retry,
        "received_at": delivery.received_at,
        "due_at": delivery.received_at,
        "body": delivery.body,
    }


def _insert_ignoring_repeat(engine: Engine) -> Any:
    """``INSERT … ON CONFLICT (dedupe_key) DO NOTHING`` in the engine's own dialect."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(DeliveryRow).on_conflict_do_nothing(index_elements=["dedupe_key"])
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(DeliveryRow).on_conflict_do_nothing(index_elements=["dedupe_key"])
    raise ValueError(f"the delivery log runs on SQLite or PostgreSQL, not {engine.dialect.name}")


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= _TEXT_KEPT:
        return text
    return text[: _TEXT_KEPT - 1] + "…"


def make_engine(url: str) -> Engine:
    """An engine for the log. ``postgresql://`` uses psycopg 3; an SQLite file's folder is made,
    and its connections wait for each other's writes (WAL) instead of failing at once. Errors
    show their SQL without its parameters: those hold delivery bodies, which stay out of logs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True, hide_parameters=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # A commit is safe from any process crash once written; syncing the disk at every commit
    # would cost the worker a disk wait at each of its commits per delivery. It syncs once a
    # second instead (DeliveryLog.checkpoint): that second is what a power loss can take.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# --------------------------------------------------------------------------------------------
# Migrations (Alembic, configured here so that no alembic.ini or working directory is needed)


class SchemaError(RuntimeError):
    """The database is not at the schema this code expects."""


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the log's schema to ``revision``."""
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), revision)


def schema_revisions(engine: Engine) -> tuple[str | None, str | None]:
    """(the database's revision, the newest the code knows)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head


def check_schema(engine: Engine) -> None:
    """Raise ``SchemaError`` naming the command to run when the schema is behind."""
    current, head = schema_revisions(engine)
    if current != head:
        raise SchemaError(
            f"the delivery log at {engine.url.render_as_string(hide_password=True)} is at "
            f"schema {current or 'none'}, this code needs {head}: run `jira-impact db upgrade`"
        )


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config
