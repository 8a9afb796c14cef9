"""Prometheus metrics: what the receiver, the worker and the connector count (``GET /metrics``,
in ``webhooks.metrics``, shows them).

Under gunicorn every web worker is a process of its own, and the queue's worker is another. With
``PROMETHEUS_MULTIPROC_DIR`` set, each process writes its counts to files in that folder and
``/metrics`` adds them all up (prometheus_client's multiprocess mode): gunicorn.conf.py and the
worker command call ``prepare_multiprocess()``, which defaults it to ``var/metrics``, shared by the
processes of one machine like the queue's and the log's SQLite files. Without it, ``/metrics``
shows the answering process's counts only.

prometheus_client picks its storage when it is first imported, so this module imports it only
inside functions: ``prepare_multiprocess()`` must run before any metric is touched.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING

from connector.protocol import Call

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_MULTIPROC_DIR = "var/metrics"
PREFIX = "jira_impact"
PROCESSING_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# Label values come from a known set only: each value is a series kept for good, and event
# names and paths arrive from outside (a signed sender may name any event).
OTHER = "other"
KNOWN_EVENTS = frozenset(
    f"{prefix}{thing}_{verb}"
    for prefix, things, verbs in [
        ("jira:", ("issue", "version"), ("created", "updated", "deleted")),
        ("", ("comment", "worklog", "project", "user", "board"), ("created", "updated", "deleted")),
        ("", ("issuelink", "attachment"), ("created", "deleted")),
        ("", ("sprint",), ("created", "updated", "deleted", "started", "closed")),
    ]
    for thing in things
    for verb in verbs
)
_API_ROOTS = frozenset({"rest/api/2", "rest/api/3", "rest/agile/1.0", "rest/webhooks/1.0"})
_PATH_WORDS = frozenset(
    {
        *("issue", "comment", "editmeta", "createmeta", "issuetypes", "rank", "search", "jql"),
        *("board", "configuration", "backlog", "filter", "field", "context", "option"),
        *("project", "user", "groups", "myself", "mypermissions", "serverInfo", "webhook"),
    }
)
_PATH_DEPTH = 6  # parts after the API root; deeper paths are not the product's
_FILE_PID = re.compile(r"_(\d+)\.db$")

# --------------------------------------------------------------------------------------------
# Multiprocess set-up (before prometheus_client is imported)


def prepare_multiprocess(
    environ: MutableMapping[str, str] | None = None, *, default: str = DEFAULT_MULTIPROC_DIR
) -> str:
    """Make sure ``PROMETHEUS_MULTIPROC_DIR`` names an existing folder (``default`` when unset),
    and drop the files of processes that no longer run (their counts restart from zero, as after
    any restart). Returns the folder."""
    env = os.environ if environ is None else environ
    path = env.get(MULTIPROC_ENV) or str(Path(default).resolve())
    env[MULTIPROC_ENV] = path
    Path(path).mkdir(parents=True, exist_ok=True)
    drop_dead_files(path)
    if "prometheus_client.values" in sys.modules and env is os.environ:
        from prometheus_client import values

        if values.ValueClass is values.MutexValue:
            log.warning("prometheus_client was imported before %s was set", MULTIPROC_ENV)
    return path


def drop_dead_files(path: str, alive: Callable[[int], bool] | None = None) -> list[str]:
    """Remove ``<kind>_<pid>.db`` files whose process is gone; the names removed."""
    is_alive = alive or _pid_alive
    dropped = []
    for file in Path(path).glob("*.db"):
        match = _FILE_PID.search(file.name)
        if match and not is_alive(int(match.group(1))):
            file.unlink(missing_ok=True)
            dropped.append(file.name)
    return dropped


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_exited(pid: int) -> None:
    """gunicorn's ``child_exit`` hook: the bookkeeping prometheus_client asks for."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def multiprocess_dir() -> str | None:
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


# --------------------------------------------------------------------------------------------
# The metrics


class Metrics:
    """The product's counters and histogram, in ``registry`` (and in the multiprocess files when
    that mode is on)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Histogram

        self.registry = registry
        self.received = Counter(
            f"{PREFIX}_webhooks_received",
            "Webhook requests by event and how the receiver answered "
            "(queued, duplicate, ignored, rejected, unavailable).",
            ["event", "outcome"],
            registry=registry,
        )
        self.processed = Counter(
            f"{PREFIX}_deliveries_processed",
            "Delivery attempts by event and outcome (done, ignored, retry, failed, dead).",
            ["event", "outcome"],
            registry=registry,
        )
        self.retries = Counter(
            f"{PREFIX}_delivery_retries",
            "Delivery attempts that failed and were scheduled again.",
            ["event"],
            registry=registry,
        )
        self.processing = Histogram(
            f"{PREFIX}_delivery_processing_seconds",
            "Time one delivery attempt took in the worker, Jira calls included.",
            ["event"],
            buckets=PROCESSING_BUCKETS,
            registry=registry,
        )
        self.jira_calls = Counter(
            f"{PREFIX}_jira_calls",
            "Requests sent to Jira by method, endpoint and status ('none': no answer).",
            ["method", "endpoint", "status"],
            registry=registry,
        )
        self.credential_refused = Counter(
            f"{PREFIX}_jira_credential_refused",
            "Requests Jira (or the OAuth token endpoint) answered 401: the service account's "
            "credential refused (expired, revoked, or lacking a scope).",
            registry=registry,
        )


_lock = threading.Lock()
_metrics: Metrics | None = None


def metrics() -> Metrics:
    """This process's metrics, made on first use."""
    global _metrics
    if _metrics is not None:
        return _metrics
    with _lock:  # made once: two sets of the same metric would lose counts in the files
        if _metrics is None:
            from prometheus_client import CollectorRegistry

            _metrics = Metrics(CollectorRegistry(auto_describe=True))
        return _metrics


def event_label(name: str | None) -> str:
    """A webhook event's name when Jira sends such events, else ``other``; ``unknown`` when
    the request could not be read."""
    if name is None:
        return "unknown"
    return name if name in KNOWN_EVENTS else OTHER


# ---- what the receiver, the worker and the connector call


def webhook_received(event: str | None, outcome: str) -> None:
    """The receiver answered a webhook request (``event`` None when it could not be read)."""
    metrics().received.labels(event_label(event), outcome).inc()


def delivery_processed(event: str, outcome: str, seconds: float) -> None:
    """The worker finished one attempt: ``outcome`` is the log's status, or ``retry``."""
    m, label = metrics(), event_label(event)
    m.processed.labels(label, outcome).inc()
    m.processing.labels(label).observe(max(0.0, seconds))
    if outcome == "retry":
        m.retries.labels(label).inc()


def jira_calls(calls: Iterable[Call]) -> None:
    """Count Jira requests by method, endpoint (ids and keys folded) and status."""
    counter = metrics().jira_calls
    for call in calls:
        status = str(call.status) if call.status is not None else "none"
        counter.labels(call.method, endpoint_of(call.path), status).inc()
        if call.status == 401:
            credential_refused()


def credential_refused() -> None:
    """Jira refused the service account's credential once more (a 401)."""
    metrics().credential_refused.inc()


def endpoint_of(path: str) -> str:
    """A Jira path as an endpoint: numeric ids fold to ``{id}`` and every other part that is
    not one of the API's own words (issue and project keys, field ids) to ``{key}``, so that
    ``/rest/api/2/issue/SHOP-1/comment`` -> ``/rest/api/2/issue/{key}/comment``. A path outside
    Jira's REST roots, or deeper than any the product calls, is ``other``."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    root, rest = "/".join(parts[:3]), parts[3:]
    if root not in _API_ROOTS or len(rest) > _PATH_DEPTH:
        return OTHER
    folded = [p if p in _PATH_WORDS else "{id}" if p.isdigit() else "{key}" for p in rest]
    return "/" + "/".join([root, *folded])
