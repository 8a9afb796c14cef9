"""Which Jira site the work in the queue's store is for.

Every piece of work the queue's store holds (queued jobs, deliveries in the inbox, issues waiting
on a board, placement runs and retries scheduled for later, the locks) lives under the queue's
name, and that name is the site's: ``jira_impact_<digest of JIRA_URL>``. A worker started against
another Jira site (a new ``JIRA_URL``, or a test's leftovers in the default ``var/queue.db``) so
never sees, let alone acts on, work that came for another site; at start-up it says what it
leaves alone (``report_other_sites``), and ``jira-impact queue clear NAME`` drops it.

Work stored under the name used before work was tied to a site (``jira_impact``, with nothing
saying which site it came for) is left alone the same way.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from huey import Huey
from huey.storage import RedisStorage, SqliteStorage

log = logging.getLogger(__name__)

QUEUE_PREFIX = "jira_impact"  # also the whole name before work was tied to a site
SITE_KEY = "site"  # where each name's store keeps the JIRA_URL it serves


def site_url(jira_url: str) -> str:
    """``JIRA_URL`` as one site: scheme and host in lower case, no trailing slash (the context
    path of a Data Center site stays, case and all)."""
    parts = urlsplit(jira_url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def queue_name(jira_url: str) -> str:
    """The queue's name for the site at ``jira_url``: letters, digits and ``_`` only (Huey's
    Redis storage drops anything else from a name)."""
    digest = hashlib.sha256(site_url(jira_url).encode()).hexdigest()[:16]
    return f"{QUEUE_PREFIX}_{digest}"


def record_site(huey: Huey, jira_url: str) -> None:
    """Note in the store which site this queue's name serves, for ``work_in_store`` to name it.
    A store that does not answer is not an error here: the web process starts without it."""
    try:
        huey.storage.put_data(SITE_KEY, site_url(jira_url).encode())
    except Exception as exc:  # the store's own error types vary (sqlite3, redis)
        log.debug("could not note the queue's site: %s", exc)


@dataclass(frozen=True)
class SiteWork:
    """The work one queue name holds in the store."""

    name: str
    site: str | None  # the JIRA_URL it came for; None when nothing says
    jobs: int  # queued now
    scheduled: int  # placement runs and retries scheduled for later
    inbox: int  # deliveries accepted and not yet taken by a worker
    waiting: int  # issues waiting on a board for a placement run

    @property
    def total(self) -> int:
        return self.jobs + self.scheduled + self.inbox + self.waiting

    def describe(self) -> str:
        counts = [
            (self.jobs, "job(s) queued"),
            (self.scheduled, "job(s) scheduled"),
            (self.inbox, "delivery(ies) not yet taken"),
            (self.waiting, "issue(s) waiting on a board"),
        ]
        held = ", ".join(f"{n} {what}" for n, what in counts if n) or "nothing"
        whose = f"for {self.site}" if self.site else "for a Jira site nothing records"
        return f"{self.name} ({whose}): {held}"


def _storage_named(huey: Huey, name: str) -> SqliteStorage | RedisStorage:
    storage = huey.storage
    if isinstance(storage, RedisStorage):
        return type(storage)(name, connection_pool=storage.pool)
    if isinstance(storage, SqliteStorage):
        return type(storage)(name, filename=storage.filename)
    raise TypeError(f"no site-aware listing for {type(storage).__name__}")


def _names(huey: Huey) -> set[str]:
    storage = huey.storage
    if isinstance(storage, RedisStorage):
        names = set()
        for pattern in ("huey.redis.*", "huey.schedule.*", "huey.r.*"):
            for key in storage.conn.scan_iter(match=pattern, count=1000):
                names.add(key.decode(errors="replace").split(".")[2])
        return names
    tables = ("task", "schedule", "kv", "delivery_inbox", "placement_waiting")
    query = " union ".join(f"select distinct queue from {table}" for table in tables)
    return {str(row[0]) for row in storage.sql(query, results=True)}


def _waiting(storage: SqliteStorage | RedisStorage) -> int:
    if isinstance(storage, RedisStorage):
        prefix = getattr(storage, "waiting_prefix", f"{storage.queue_key}.placements.")
        return sum(
            int(storage.conn.hlen(key))
            for key in storage.conn.scan_iter(match=prefix + "*", count=1000)
        )
    rows = storage.sql(
        "select count(*) from placement_waiting where queue = ?", (storage.name,), results=True
    )
    return int(rows[0][0])


def work_in_store(huey: Huey) -> list[SiteWork]:
    """Each queue name in the store that holds work, with the site it serves; by name."""
    found = []
    for name in sorted(_names(huey)):
        storage = _storage_named(huey, name)
        site = storage.peek_data(SITE_KEY)
        inbox_size = getattr(storage, "inbox_size", None)
        work = SiteWork(
            name=name,
            site=site.decode(errors="replace") if isinstance(site, bytes) else None,
            jobs=storage.queue_size(),
            scheduled=storage.schedule_size(),
            inbox=inbox_size() if inbox_size is not None else 0,
            waiting=_waiting(storage),
        )
        if work.total:
            found.append(work)
    return found


def report_other_sites(huey: Huey, jira_url: str) -> list[SiteWork]:
    """Log, at start-up, the work in the store that is not this site's: this worker leaves it
    alone. The work so reported."""
    others = [w for w in work_in_store(huey) if w.name != huey.name]
    where = _where(huey)
    for work in others:
        log.warning(
            "the queue's store (%s) holds work this worker will not touch: %s. This worker "
            "serves %s only. If that work is stale (a former JIRA_URL, a test run), drop it "
            "with `jira-impact queue clear %s`; if it is another service's, give this one its "
            "own QUEUE_PATH or REDIS_URL",
            where,
            work.describe(),
            site_url(jira_url),
            work.name,
        )
    return others


def clear(huey: Huey, name: str) -> SiteWork | None:
    """Drop everything the store holds under ``name`` (``jira-impact queue clear``); what it
    held, or None when it held nothing."""
    held = next((w for w in work_in_store(huey) if w.name == name), None)
    _storage_named(huey, name).flush_all()
    return held


def _where(huey: Huey) -> str:
    storage = huey.storage
    if isinstance(storage, SqliteStorage):
        return f"QUEUE_PATH={storage.filename}"
    return "REDIS_URL"
