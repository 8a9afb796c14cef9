"""``GET /metrics``: Prometheus text, what every process counted (``service.metrics``) plus what
the stores hold, read at each scrape.

Deliveries by status are read from the delivery log, and queue depth from the queue's inbox
(accepted, not yet taken by a worker) plus the log's queued deliveries, so every process, on
every machine, answers the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from flask.typing import ResponseReturnValue

from service.metrics import PREFIX, metrics, multiprocess_dir

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)


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
) -> bytes:
    """The text ``/metrics`` answers with."""
    from prometheus_client import generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    folder = multiprocess_dir()
    counted = MultiProcessCollector(None, path=folder) if folder else metrics().registry
    collectors = [counted, DeliveryLogCollector(counts, pending, statuses, waiting)]
    return bytes(generate_latest(_Exposition(collectors)))  # type: ignore[arg-type]


@bp.get("/metrics")
def metrics_view() -> ResponseReturnValue:
    from prometheus_client import CONTENT_TYPE_LATEST

    from pipeline.delivery_log import STATUSES
    from webhooks.health import delivery_stores, monitoring_allowed

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
    )
    return Response(body, content_type=CONTENT_TYPE_LATEST)
