"""Every error the app answers, as a JSON body with its status: the receiver's own hierarchy
(``service.errors``), Werkzeug's HTTP errors, and anything unexpected (500, logged, no trace)."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from service.errors import ReceiverError

log = logging.getLogger(__name__)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ReceiverError)
    def _receiver_error(exc: ReceiverError) -> ResponseReturnValue:
        level = logging.WARNING if exc.status == 401 else logging.INFO
        log.log(
            level, "rejected request from %s: %s %s", request.remote_addr, exc.status, exc.message
        )
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
