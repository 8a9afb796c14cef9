"""The receiver's answers to bad requests: one hierarchy, each carrying its HTTP status, mapped to
a JSON body in one error handler (``webhooks.errors``). None of these statuses makes Jira retry,
except 503. Plain exceptions, no Flask: the pipeline raises ``UnavailableError`` too."""

from __future__ import annotations

from typing import Any


def short_error(exc: BaseException) -> str:
    """The error's type and first line, without the SQL that SQLAlchemy appends (its parameters
    are hidden by the engine, see ``make_engine``)."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return f"{type(inner).__name__}: {text[:200]}"


class ReceiverError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, errors: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "rejected", "error": self.code, "message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


class UnauthenticatedError(ReceiverError):
    status = 401
    code = "unauthenticated"


class BadBodyError(ReceiverError):
    status = 400
    code = "bad_body"


class UnsupportedMediaError(ReceiverError):
    status = 415
    code = "unsupported_media_type"


class InvalidPayloadError(ReceiverError):
    status = 422
    code = "invalid_payload"


class StaleDeliveryError(ReceiverError):
    """A delivery whose signed timestamp is older than ``WEBHOOK_MAX_AGE_SECONDS``: far later
    than Jira retries, so a replay or a relay gone wrong. 422: Jira does not retry it."""

    status = 422
    code = "stale_delivery"


class UnavailableError(ReceiverError):
    """The delivery could not be stored; 503 makes Jira retry it later."""

    status = 503
    code = "unavailable"
