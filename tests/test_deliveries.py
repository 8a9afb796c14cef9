"""The delivery log on SQLite and on a real PostgreSQL server, schema from the migrations."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pipeline.delivery import Delivery
from pipeline.delivery_log import (
    Base,
    DeliveryLog,
    SchemaError,
    check_schema,
    make_engine,
    migrate,
    schema_revisions,
)
from tests.servers import postgres_server

T0 = 1_700_000_000.0
LEASE = 30.0


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def _fresh_postgres_database(server_url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/var/impact.db"
    return _fresh_postgres_database(request.getfixturevalue("postgres"))


@pytest.fixture
def dlog(url) -> Iterator[DeliveryLog]:
    engine = make_engine(url)
    migrate(engine)
    yield DeliveryLog(engine)
    engine.dispose()


def delivery(n: int = 1, *, key: str = "SHOP-1", at: float = T0, retry: int = 0) -> Delivery:
    return Delivery(
        id=f"wh-{n}",
        event="jira:issue_created",
        issue_key=key,
        body='{"webhookEvent": "jira:issue_created"}',
        retry=retry,
        received_at=at,
    )


def test_migrations_build_exactly_the_model(url):
    engine = make_engine(url)
    assert schema_revisions(engine)[0] is None
    with pytest.raises(SchemaError, match="jira-impact db upgrade"):
        check_schema(engine)
    migrate(engine)
    check_schema(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    migrate(engine)  # again: nothing to do, no error
    engine.dispose()


def test_postgres_scheme_from_heroku_style_url_uses_psycopg():
    engine = make_engine("postgresql://u:p@db.invalid/impact")
    assert engine.dialect.driver == "psycopg"


def test_admitting_a_delivery_twice_logs_it_once(dlog):
    assert dlog.admit(delivery(1)) is True
    assert dlog.admit(delivery(1, at=T0 + 5)) is False  # a worker killed before the inbox drop
    assert dlog.admit(delivery(2)) is True
    assert dlog.counts() == {"queued": 2}
    assert dlog.get("wh-1").received_at == T0


def test_a_duplicate_turned_away_is_noted_without_its_body(dlog):
    dlog.admit(delivery(1))
    dlog.note_duplicate(delivery(1, at=T0 + 9))
    dlog.note_duplicate(delivery(1, at=T0 + 12))
    assert dlog.counts() == {"queued": 1, "duplicate": 2}
    assert dlog.get("wh-1").status == "queued"  # the identifier names the first receipt
    noted = [e for e in dlog.entries(status="duplicate")]
    assert [e.received_at for e in noted] == [T0 + 12, T0 + 9]
    assert all(e.finished_at == e.received_at for e in noted)


def test_concurrent_admissions_of_one_delivery_make_one_row(dlog):
    results: list[bool] = []
    start = threading.Barrier(8)

    def admit(i: int) -> None:
        start.wait()
        results.append(dlog.admit(delivery(7, at=T0 + i)))

    threads = [threading.Thread(target=admit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False] * 7 + [True]
    assert dlog.counts() == {"queued": 1}


def test_a_claim_hands_back_the_delivery_as_logged(dlog):
    stored = delivery(3)
    dlog.admit(stored)
    claim = dlog.claim("wh-3", now=T0 + 1, lease=LEASE)
    assert claim.attempts == 1
    assert claim.delivery == stored


def test_a_claim_is_granted_once_even_to_racing_workers(dlog):
    dlog.admit(delivery(1))
    claims = []
    start = threading.Barrier(6)

    def claim() -> None:
        start.wait()
        claims.append(dlog.claim("wh-1", now=T0 + 1, lease=LEASE))

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    granted = [c for c in claims if c is not None]
    assert len(granted) == 1
    assert granted[0].attempts == 1
    assert dlog.get("wh-1").status == "running"


def test_finish_keeps_plan_calls_and_error(dlog):
    dlog.admit(delivery(1))
    dlog.claim("wh-1", now=T0, lease=LEASE)
    dlog.finish(
        "wh-1",
        "failed",
        now=T0 + 2,
        attempt_log="attempt 1\n  PUT /rest/api/2/issue/SHOP-1 -> 400",
        error="Jira 400: Field 'labels' cannot be set (Jira said: not on screen)",
    )
    entry = dlog.get("wh-1")
    assert (entry.status, entry.attempts, entry.finished_at) == ("failed", 1, T0 + 2)
    assert entry.calls == "attempt 1\n  PUT /rest/api/2/issue/SHOP-1 -> 400"
    assert "not on screen" in entry.error
    assert dlog.claim("wh-1", now=T0 + 3, lease=LEASE) is None


def test_a_retry_is_not_claimed_before_it_is_due(dlog):
    dlog.admit(delivery(1))
    dlog.claim("wh-1", now=T0, lease=LEASE)
    dlog.retry_later("wh-1", due_at=T0 + 60, error="Jira 503: busy", attempt_log="attempt 1")
    assert dlog.get("wh-1").status == "queued"
    assert dlog.claim("wh-1", now=T0 + 30, lease=LEASE) is None
    again = dlog.claim("wh-1", now=T0 + 60, lease=LEASE)
    assert again is not None and again.attempts == 2
    dlog.finish("wh-1", "done", now=T0 + 61, attempt_log="attempt 2")
    entry = dlog.get("wh-1")
    assert entry.calls == "attempt 1\nattempt 2"  # every attempt's calls are kept
    assert entry.error is None


def test_recover_finds_dead_runs_and_lost_jobs_only(dlog):
    for n in (1, 2, 3, 4):
        dlog.admit(delivery(n, key=f"SHOP-{n}", at=T0))
    dlog.claim("wh-1", now=T0, lease=LEASE)  # its worker died: lease runs out at T0+30
    dlog.claim("wh-2", now=T0 + 25, lease=LEASE)  # still within its lease at T0+40
    dlog.claim("wh-3", now=T0, lease=LEASE)
    dlog.finish("wh-3", "done", now=T0 + 1)
    # wh-4 is queued since T0 and no worker took it
    recovered = dlog.recover(now=T0 + 40, grace=LEASE)
    assert sorted((d.id, d.issue_key) for d in recovered) == [
        ("wh-1", "SHOP-1"),
        ("wh-4", "SHOP-4"),
    ]
    assert dlog.get("wh-1").status == "queued"
    assert dlog.recover(now=T0 + 41, grace=LEASE) == []  # handed back once per grace period
    assert dlog.claim("wh-1", now=T0 + 41, lease=LEASE).attempts == 2


def test_purge_drops_finished_rows_past_retention_only(dlog):
    dlog.admit(delivery(1, at=T0))
    dlog.note_duplicate(delivery(1, at=T0 + 1))
    dlog.admit(delivery(2, at=T0))  # still queued: kept whatever its age
    dlog.claim("wh-1", now=T0, lease=LEASE)
    dlog.finish("wh-1", "done", now=T0 + 1)
    dlog.admit(delivery(3, at=T0 + 100))
    assert dlog.purge(before=T0 + 50) == 2
    assert sorted(e.identifier for e in dlog.entries()) == ["wh-2", "wh-3"]


def test_replay_requeues_dead_deliveries_with_fresh_attempts(dlog):
    for n in (1, 2, 3):
        dlog.admit(delivery(n))
        dlog.claim(f"wh-{n}", now=T0, lease=LEASE)
    dlog.finish("wh-1", "dead", now=T0 + 1, error="gave up")
    dlog.finish("wh-2", "dead", now=T0 + 1, error="gave up")
    dlog.finish("wh-3", "done", now=T0 + 1)
    replayed = dlog.replay(all_dead=True, now=T0 + 10)
    assert sorted(d.id for d in replayed) == ["wh-1", "wh-2"]
    entry = dlog.get("wh-1")
    assert (entry.status, entry.attempts, entry.error) == ("queued", 0, None)
    assert [d.id for d in dlog.replay(["wh-3", "wh-404"], now=T0 + 11)] == ["wh-3"]
    assert dlog.replay(["wh-1"], now=T0 + 12) == []  # already queued


def test_long_errors_are_clipped(dlog):
    dlog.admit(delivery(1))
    dlog.claim("wh-1", now=T0, lease=LEASE)
    dlog.finish("wh-1", "failed", now=T0, error="x" * 10_000)
    assert len(dlog.get("wh-1").error) == 2000


def test_checkpoint_folds_every_commit_into_the_file(dlog):
    for n in range(20):
        dlog.admit(delivery(n))
    dlog.checkpoint()
    if dlog.engine.dialect.name == "sqlite":
        with dlog.engine.connect() as conn:
            busy, frames, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        assert busy == 0
        assert frames == done  # nothing left only in the write-ahead log
    assert dlog.counts() == {"queued": 20}
