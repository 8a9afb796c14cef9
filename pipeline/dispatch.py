"""How an accepted delivery reaches the worker's code.

``InlineDispatcher`` runs it at once in the calling process: what the tests of the web layer use.
"""

from __future__ import annotations

import logging

from connector.errors import JiraError
from connector.protocol import Jira
from impact.events import decode_body, parse_event
from impact.model import ImpactConfig
from pipeline.delivery import Delivery
from pipeline.triage import Outcome, triage

log = logging.getLogger(__name__)


def process(
    delivery: Delivery, *, jira: Jira, config: ImpactConfig, refresh: bool = False
) -> Outcome:
    """Parse a stored delivery again and triage it. Raises ``JiraError`` when Jira fails."""
    event = parse_event(decode_body(delivery.body))
    return triage(event, jira=jira, config=config, refresh=refresh or delivery.retry > 0)


class InlineDispatcher:
    def __init__(self, *, jira: Jira, config: ImpactConfig) -> None:
        self.jira = jira
        self.config = config
        self.outcomes: list[Outcome] = []

    def submit(self, delivery: Delivery) -> str:
        try:
            outcome = process(delivery, jira=self.jira, config=self.config)
        except JiraError as exc:
            log.error("delivery %s for %s failed: %s", delivery.id, delivery.issue_key, exc)
            return "failed"
        self.outcomes.append(outcome)
        return outcome.status
