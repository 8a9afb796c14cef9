"""How an accepted delivery reaches the worker's code.

``process`` parses a stored delivery again and triages it, re-reading the issue when its body
cannot be trusted (``stale_reason``). ``InlineDispatcher`` runs it at once in the calling process:
what the tests of the web layer use.
"""

from __future__ import annotations

import logging
import time

from connector.errors import JiraError
from connector.protocol import Jira
from impact.events import decode_body, parse_event, too_old
from impact.model import ImpactConfig
from pipeline.delivery import Delivery
from pipeline.placements import LocalPlacements, Placements
from pipeline.triage import Outcome, triage

log = logging.getLogger(__name__)


def stale_reason(
    event_ms: int | None, latest_ms: int | None, *, now: float, max_age: float
) -> str | None:
    """Why a delivery's body must not be acted on as it is (the issue is read again), or None.

    A body older than another delivery for the same issue shows the issue as it no longer is;
    one older than ``max_age`` (``WEBHOOK_MAX_AGE_SECONDS``: it waited that long in the queue)
    may too. A body without a timestamp cannot be judged and is trusted."""
    if event_ms is None:
        return None
    if latest_ms is not None and event_ms < latest_ms:
        return "a newer delivery for the issue came in"
    if too_old(event_ms, now=now, max_age=max_age):
        return f"its event is older than {max_age:g} s"
    return None


def process(
    delivery: Delivery,
    *,
    jira: Jira,
    config: ImpactConfig,
    placements: Placements,
    latest_ms: int | None = None,
    max_age: float = float("inf"),
    first_attempt: bool = True,
    now: float | None = None,
) -> Outcome:
    """Parse a stored delivery again and triage it. Raises ``JiraError`` when Jira fails."""
    event = parse_event(decode_body(delivery.body))
    stale = stale_reason(
        event.timestamp_ms,
        latest_ms,
        now=time.time() if now is None else now,
        max_age=max_age,
    )
    if stale is not None:
        log.info("delivery %s: reading %s again: %s", delivery.id, delivery.issue_key, stale)
    return triage(
        event,
        jira=jira,
        config=config,
        placements=placements,
        refresh=stale is not None,
        first_attempt=first_attempt,
    )


class InlineDispatcher:
    def __init__(self, *, jira: Jira, config: ImpactConfig) -> None:
        self.jira = jira
        self.config = config
        self.placements = LocalPlacements()
        self.outcomes: list[Outcome] = []

    def submit(self, delivery: Delivery) -> str:
        try:
            outcome = process(
                delivery, jira=self.jira, config=self.config, placements=self.placements
            )
        except JiraError as exc:
            log.error("delivery %s for %s failed: %s", delivery.id, delivery.issue_key, exc)
            return "failed"
        self.placements.place_all(self.config, self.jira)
        self.outcomes.append(outcome)
        return outcome.status
