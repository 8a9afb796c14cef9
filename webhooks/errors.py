"""The receiver's answers to bad requests: one hierarchy, each carrying its HTTP status, mapped to
a JSON body in one error handler. None of these statuses makes Jira retry, except 503."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


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


class UnavailableError(ReceiverError):
    """The delivery could not be stored; 503 makes Jira retry it later."""

    status = 503
    code = "unavailable"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ReceiverError)
    def _receiver_error(exc: ReceiverError) -> ResponseReturnValue:
        log.info("rejected request: %s %s", exc.status, exc.message)
        return jsonify(exc.body()), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> ResponseReturnValue:
        # 404, 405, 413 (body over MAX_WEBHOOK_BYTES) and friends, as JSON like the rest.
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"body is larger than {limit} bytes (MAX_WEBHOOK_BYTES)"
        body = {
            "status": "rejected",
            "error": exc.name.lower().replace(" ", "_"),
            "message": message,
        }
        return jsonify(body), status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        # Our own fault, never the client's input: logged with the trace, answered without it.
        log.exception("unexpected error while handling a request")
        return jsonify({"status": "error", "error": "internal", "message": "internal error"}), 500
