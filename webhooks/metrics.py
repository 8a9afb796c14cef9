"""``GET /metrics``: Prometheus text, what every process counted (``service.metrics``) plus what
the stores hold, read at each scrape.

Deliveries by status are read from the delivery log, and queue depth from the queue's inbox
(accepted, not yet taken by a worker) plus the log's queued deliveries, so every process, on
every machine, answers the same; so is whether Jira is held, since when, and the deliveries
waiting for it (the queue's store).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, jsonify
from flask.typing import ResponseReturnValue

from service.metrics import PREFIX, metrics, multiprocess_dir

if TYPE_CHECKING:
    from pipeline.holds import SiteState

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)


class SiteCollector:
    """Whether Jira is held, by cause, since when, and the deliveries it holds."""

    def __init__(self, site: Callable[[], SiteState]) -> None:
        self.site = site

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from connector.breaker import CAUSES

        try:
            state = self.site()
        except Exception as exc:
            log.warning("metrics: the queue's store did not answer: %s", type(exc).__name__)
            return
        hold = state.hold
        held = GaugeMetricFamily(
            f"{PREFIX}_jira_held",
            "1 while calls to Jira are held (nothing is sent but a probe), by cause.",
            labels=["cause"],
        )
        for cause in dict.fromkeys((*CAUSES, *([hold.cause] if hold else []))):
            held.add_metric([cause], 1 if hold is not None and hold.cause == cause else 0)
        yield held
        yield GaugeMetricFamily(
            f"{PREFIX}_jira_held_since_seconds",
            "When Jira's hold began (Unix time); 0 while Jira is usable.",
            value=hold.since if hold is not None else 0,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_deliveries_held",
            "Deliveries waiting for Jira to be usable, parked without spending attempts.",
            value=state.held,
        )


class DeliveryLogCollector:
    """Deliveries in the log by status, and the queue's depth, read at scrape time."""

    def __init__(
        self,
        counts: Callable[[], Mapping[str, int]] | None,
        pending: Callable[[], int] | None,
        statuses: Iterable[str] = (),
        waiting: Callable[[], int] | None = None,
    ) -> None:
        self.counts = counts
        self.pending = pending
        self.statuses = tuple(statuses)
        self.waiting = waiting

    def describe(self) -> list[Any]:
        return []  # nothing is read at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        if self.counts is not None:
            up = GaugeMetricFamily(
                f"{PREFIX}_delivery_log_up", "1 when the delivery log answered this scrape."
            )
            try:
                counts = dict(self.counts())
            except Exception as exc:
                log.warning("metrics: the delivery log did not answer: %s", type(exc).__name__)
                up.add_metric([], 0)
                yield up
            else:
                up.add_metric([], 1)
                yield up
                by_status = GaugeMetricFamily(
                    f"{PREFIX}_deliveries", "Deliveries in the log by status.", labels=["status"]
                )
                for status in dict.fromkeys((*self.statuses, *counts)):
                    by_status.add_metric([status], counts.get(status, 0))
                yield by_status
                depth = self._depth(counts.get("queued", 0))
                if depth is not None:
                    yield GaugeMetricFamily(
                        f"{PREFIX}_queue_depth",
                        "Deliveries waiting for the worker: in the queue's inbox (accepted, not "
                        "yet taken by a worker) plus queued in the log (retries included).",
                        value=depth,
                    )
        if self.pending is not None:
            try:
                jobs = self.pending()
            except Exception as exc:
                log.warning("metrics: the queue's store did not answer: %s", type(exc).__name__)
            else:
                yield GaugeMetricFamily(
                    f"{PREFIX}_queue_jobs",
                    "Jobs in the queue's store, scheduled ones included.",
                    value=jobs,
                )

    def _depth(self, queued: int) -> int | None:
        """None when the inbox does not answer: a depth without it would hide the backlog."""
        if self.waiting is None:
            return queued
        try:
            return queued + self.waiting()
        except Exception as exc:
            log.warning("metrics: the queue's inbox did not answer: %s", type(exc).__name__)
            return None


class MultiprocessCounts:
    """What every process counted, from ``folder`` (prometheus_client's multiprocess files), but
    for the files a process has created and not yet sized: reading one of those raises, and
    ``/metrics`` answered 500 for as long as a starting process took to size its file."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.multiprocess import MultiProcessCollector

        files = []
        for file in self.folder.glob("*.db"):
            with contextlib.suppress(FileNotFoundError):  # a dead process's, just dropped
                if file.stat().st_size > 0:
                    files.append(str(file))
        yield from MultiProcessCollector.merge(files, accumulate=True)


class _Exposition:
    """What one scrape shows: the collectors' metrics, one after the other."""

    def __init__(self, collectors: Iterable[Any]) -> None:
        self.collectors = tuple(collectors)

    def collect(self) -> Iterator[Any]:
        for collector in self.collectors:
            yield from collector.collect()


def exposition(
    counts: Callable[[], Mapping[str, int]] | None = None,
    pending: Callable[[], int] | None = None,
    statuses: Iterable[str] = (),
    waiting: Callable[[], int] | None = None,
    site: Callable[[], SiteState] | None = None,
) -> bytes:
    """The text ``/metrics`` answers with."""
    from prometheus_client import generate_latest

    folder = multiprocess_dir()
    counted = MultiprocessCounts(folder) if folder else metrics().registry
    collectors = [counted, DeliveryLogCollector(counts, pending, statuses, waiting)]
    if site is not None:
        collectors.append(SiteCollector(site))
    return bytes(generate_latest(_Exposition(collectors)))  # type: ignore[arg-type]


@bp.get("/metrics")
def metrics_view() -> ResponseReturnValue:
    from prometheus_client import CONTENT_TYPE_LATEST

    from pipeline.delivery_log import STATUSES
    from webhooks.health import delivery_stores, jira_site, monitoring_allowed

    settings = current_app.extensions["impact.settings"]
    if settings.metrics_token and not monitoring_allowed():
        refusal = {
            "status": "rejected",
            "error": "unauthorized",
            "message": "send METRICS_TOKEN as a bearer token (Authorization: Bearer …)",
        }
        return jsonify(refusal), 401, {"WWW-Authenticate": 'Bearer realm="metrics"'}

    delivery_log, queue = delivery_stores(current_app)
    body = exposition(
        counts=delivery_log.counts if delivery_log is not None else None,
        pending=queue.pending if queue is not None else None,
        statuses=STATUSES,
        waiting=queue.inbox.size if queue is not None else None,
        site=jira_site(current_app),
    )
    return Response(body, content_type=CONTENT_TYPE_LATEST)
