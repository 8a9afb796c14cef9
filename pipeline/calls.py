"""The Jira calls a piece of work made: taken from the client that made them, then counted
(``jira_impact_jira_calls_total``) and logged, one line each. The worker, the scheduled reranks
and the admin pages account for their calls this one way."""

from __future__ import annotations

from collections.abc import Sequence

from connector.protocol import Call, Jira
from service import metrics
from service.logs import log_jira_calls


def calls_made_by(jira: Jira) -> tuple[Call, ...]:
    """The calls the client recorded since last asked (the real connector keeps them all, GETs
    included); empty for a client that does not record."""
    take = getattr(jira, "take_calls", None)
    return tuple(take()) if callable(take) else ()


def record_calls(calls: Sequence[Call]) -> None:
    """Count and log ``calls``."""
    metrics.jira_calls(calls)
    log_jira_calls(calls)


def account_calls(jira: Jira) -> tuple[Call, ...]:
    """Take the client's calls, count and log them; the calls."""
    calls = calls_made_by(jira)
    record_calls(calls)
    return calls
