"""What travels through the pipeline: a delivery as the web process took it, the job that runs
it, and the interface the receiver hands deliveries to.

These sit below everything that passes them around (the receiver, the queue, the log, the
worker), so none of those modules needs another to name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Delivery:
    """One accepted webhook delivery, as handed to the worker."""

    id: str  # X-Atlassian-Webhook-Identifier, or "sha256:<hash of the body>" without one
    event: str
    issue_key: str | None
    body: str  # the JSON text as received; the worker parses it again
    retry: int = 0  # X-Atlassian-Webhook-Retry: 0 on the first attempt
    received_at: float = 0.0  # epoch seconds
    event_ms: int | None = None  # the body's (signed) timestamp, epoch ms, when it has one


@dataclass(frozen=True)
class Job:
    """The delivery a queued job runs, and its issue (for the issue's lock): all that queueing
    a delivery again takes. The queue's message also says when it was queued (for the sweep)."""

    id: str
    issue_key: str | None


class Dispatcher(Protocol):
    """Where the receiver hands a delivery it accepted: the queue in production
    (``pipeline.queue.QueueDispatcher``), triage in the request in the web layer's tests
    (``pipeline.dispatch.InlineDispatcher``)."""

    def submit(self, delivery: Delivery) -> str:
        """Take the delivery (durably, once it's a queue); return its status word."""
