"""Jira's failures as one exception hierarchy.

Every error carries the HTTP status Jira gave (``None`` when no answer came) and Jira's own
messages (``errorMessages`` plus ``errors`` as ``"field: message"``), so the delivery log and the
admin can read what Jira said. ``retryable`` tells the worker whether to try again.
"""

from __future__ import annotations


class JiraError(Exception):
    status: int | None = None
    retryable = False
    # The failure is of our own limits (a call not sent for want of a turn or of time, or a
    # timeout shortened to what was left of a job's time), not something the site did.
    ours = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        messages: tuple[str, ...] = (),
        method: str | None = None,
        path: str | None = None,
        ours: bool = False,
    ) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.ours = ours
        self.messages = messages
        self.method = method
        self.path = path

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.method and self.path else ""
        said = f" (Jira said: {'; '.join(self.messages)})" if self.messages else ""
        return f"{where}{self.args[0]}{said}"

    def plain(self) -> str:
        """What happened, in a sentence for people: no address, no library's words (those are
        for the log, see ``str``)."""
        if self.status is None:
            return "Jira answered in a way the product cannot read"
        return f"Jira answered with an error ({self.status})"

    def advice(self) -> str:
        """What to do about it, for whoever runs the product."""
        return "try again; if it persists, look at what Jira said in the log"


class JiraBadRequestError(JiraError):
    """400 or 422: the request was refused as invalid (a field not on the edit screen, say)."""

    status = 400


class JiraAuthError(JiraError):
    """401: the service account's credentials were refused."""

    status = 401

    def plain(self) -> str:
        return "Jira refused the service account's credentials"

    def advice(self) -> str:
        return (
            "check the credential JIRA_AUTH names (JIRA_EMAIL and JIRA_API_TOKEN (Cloud), "
            "JIRA_CLIENT_ID and JIRA_CLIENT_SECRET (OAuth) or JIRA_PAT (Data Center)): it may "
            "have expired or lack a scope; jira-impact check says which"
        )


class JiraForbiddenError(JiraError):
    """403: the service account lacks a permission."""

    status = 403

    def plain(self) -> str:
        return "Jira refused: the service account lacks a permission"

    def advice(self) -> str:
        return "run jira-impact check to see which permission is missing"


class JiraNotFoundError(JiraError):
    """404: no such issue, board or field, or the account cannot see it."""

    status = 404


class JiraConflictError(JiraError):
    """409: a conflicting update; worth another try."""

    status = 409
    retryable = True


class JiraRateLimitError(JiraError):
    """429: too many requests; ``retry_after`` is Jira's ``Retry-After`` in seconds, if sent,
    and ``reason`` its ``RateLimit-Reason`` (``jira-burst-based``, ``jira-per-issue-on-write``)."""

    status = 429
    retryable = True

    def plain(self) -> str:
        return "Jira asked the product to slow down (rate limit)"

    def advice(self) -> str:
        return "try again in a few minutes"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        reason: str | None = None,
        **kw: object,
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after
        self.reason = reason


class JiraServerError(JiraError):
    """5xx from Jira; ``retry_after`` is set when a 503 carried ``Retry-After``."""

    status = 500
    retryable = True

    def plain(self) -> str:
        return f"Jira failed ({self.status}: an error on Jira's side)"

    def advice(self) -> str:
        return "try again once Jira is back (its status page may say more)"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class JiraUnavailableError(JiraError):
    """No answer: connection refused or reset, DNS failure, or a timeout."""

    retryable = True

    def plain(self) -> str:
        return "Jira did not answer"

    def advice(self) -> str:
        return "check that JIRA_URL is right and that Jira is up, then try again"


class JiraAnswerError(JiraError):
    """An answer that is not what Jira's API documents (a list that is not one, a board that
    lists an issue twice): a broken proxy, a page that moved while it was read, or a hostile
    server. Worth another try; never taken as data."""

    retryable = True

    def plain(self) -> str:
        return "Jira's answer could not be used"

    def advice(self) -> str:
        return "try again; if it persists, check that JIRA_URL reaches Jira itself"


class JiraHeldError(JiraError):
    """Not sent: calls to this Jira site are held (``connector.breaker``), for ``cause``
    (``outage``: the site fails as a whole) since ``since`` (epoch seconds); ``reason`` is what
    the site last said. Work that meets it waits for the site, spending none of its attempts."""

    retryable = True

    def __init__(
        self, message: str, *, cause: str, since: float, reason: str, **kw: object
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.cause = cause
        self.since = since
        self.reason = reason


class RankPartialError(JiraError):
    """A rank call answered 207 and some entries still failed after retrying them."""

    status = 207
    retryable = True

    def __init__(self, message: str, *, failed: dict[str, str], **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.failed = failed  # issue key -> Jira's message
