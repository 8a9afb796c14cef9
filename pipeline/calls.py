"""The Jira calls a piece of work made: taken from the client that made them, then counted
(``jira_impact_jira_calls_total``) and logged, one line each. The worker, the scheduled reranks
and the admin pages account for their calls this one way.

Work that holds a lock in the queue's store (an issue's, a board's) makes its calls
``within_lease``: they end before the lock's time to live, so no other thread takes the issue or
the board while the work still writes to it, however slow Jira or long its ``Retry-After``."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

from connector.protocol import Call, Jira
from service import metrics
from service.logs import log_jira_calls

LEASE_SHARE = 0.8  # of a lock's time to live, what the Jira calls of the work holding it may take


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


def within_lease(jira: Jira, lease: float) -> AbstractContextManager[None]:
    """The calls made inside end, retryably (``JiraUnavailableError`` or Jira's 429), before a
    lock of ``lease`` seconds taken just before would expire."""
    return jira.time_limit(lease * LEASE_SHARE)
