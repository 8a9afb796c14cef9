"""``POST /webhooks/jira``: bytes → authenticated event → handed to the dispatcher → 202.

``Receiver`` holds the steps as plain methods over bytes and mappings (no Flask), so they are
tested without a server; the view only feeds it the request.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from impact.events import (
    EventError,
    WebhookEvent,
    body_text,
    decode_body,
    parse_event,
    should_triage,
    too_old,
)
from impact.model import ImpactConfig
from pipeline.delivery import Delivery, Dispatcher
from service import metrics
from service.errors import (
    BadBodyError,
    InvalidPayloadError,
    ReceiverError,
    StaleDeliveryError,
    UnauthenticatedError,
    UnsupportedMediaError,
)
from service.logs import delivery_context
from service.settings import Settings
from webhooks.access_log import ACCESS_FIELDS
from webhooks.signature import SignatureError, verify_signature, verify_token

log = logging.getLogger(__name__)

_JSON_TYPES = {"", "application/json", "text/json"}


class Receiver:
    def __init__(
        self,
        *,
        settings: Settings,
        config: ImpactConfig,
        dispatcher: Dispatcher,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.projects = frozenset(p.key for p in config.projects)
        self.dispatcher = dispatcher
        self.clock = clock

    def authenticate(
        self, body: bytes, headers: Mapping[str, str], args: Mapping[str, str]
    ) -> None:
        """With a secret set, only a valid ``X-Hub-Signature`` lets a delivery in (a ``?token=``
        is not enough); with only a token, the token; with neither, ``ALLOW_UNSIGNED_WEBHOOKS``
        (checked at start-up) lets anything in."""
        signature = headers.get("X-Hub-Signature")
        secret, expected_token = self.settings.webhook_secret, self.settings.webhook_token
        try:
            if secret:
                verify_signature(body, signature, secret=secret)
            elif signature is not None:
                raise SignatureError(
                    "request is signed but JIRA_WEBHOOK_SECRET is not set on this service"
                )
            elif expected_token or args.get("token") is not None:
                verify_token(args.get("token"), token=expected_token or "")
            elif not self.settings.allow_unsigned:
                raise SignatureError("request is neither signed nor carries a token")
        except SignatureError as exc:
            raise UnauthenticatedError(str(exc)) from exc

    def receive(
        self,
        body: bytes,
        headers: Mapping[str, str],
        args: Mapping[str, str],
        mimetype: str = "application/json",
    ) -> dict[str, Any]:
        """The answer's body for a delivery taken; raises ``ReceiverError`` otherwise. Every
        outcome is counted here, once."""
        try:
            text, event = self.read(body, headers, args, mimetype)
        except ReceiverError:
            metrics.webhook_received(None, "rejected")
            raise
        try:
            result = self.take(text, event, body, headers)
        except ReceiverError as exc:
            metrics.webhook_received(event.name, "unavailable" if exc.status == 503 else "rejected")
            raise
        metrics.webhook_received(event.name, result["status"])
        return result

    def read(
        self, body: bytes, headers: Mapping[str, str], args: Mapping[str, str], mimetype: str
    ) -> tuple[str, WebhookEvent]:
        """Authenticate, then parse: the body as text, and the event it holds."""
        self.authenticate(body, headers, args)
        if mimetype not in _JSON_TYPES:
            raise UnsupportedMediaError(f"Content-Type {mimetype!r} is not JSON")
        try:
            text = body_text(body)
            return text, parse_event(decode_body(text))
        except EventError as exc:
            if exc.status == 422:
                raise InvalidPayloadError(str(exc), errors=getattr(exc, "errors", None)) from exc
            raise BadBodyError(str(exc)) from exc

    def take(
        self, text: str, event: WebhookEvent, body: bytes, headers: Mapping[str, str]
    ) -> dict[str, Any]:
        """Hand the delivery to the dispatcher, unless it is nothing for this product."""
        reason = should_triage(event, service_account=None, projects=self.projects)
        if reason is not None:
            log.info("ignored %s for %s: %s", event.name, event.issue_key, reason)
            return {"status": "ignored", "reason": reason}
        now = self.clock()
        self.refuse_if_stale(event, now)
        delivery = Delivery(
            id=_delivery_id(body, headers),
            event=event.name,
            issue_key=event.issue_key,
            body=text,
            retry=_retry_count(headers),
            received_at=now,
            event_ms=event.timestamp_ms,
        )
        with delivery_context(delivery.id, delivery.issue_key):
            status = self.dispatcher.submit(delivery)
            log.debug("delivery %s (%s): %s", delivery.id, event.name, status)
        return {"status": status, "delivery": delivery.id, "issue": delivery.issue_key}

    def refuse_if_stale(self, event: WebhookEvent, now: float) -> None:
        """Refuse a body whose signed timestamp is older than ``WEBHOOK_MAX_AGE_SECONDS``."""
        limit = self.settings.webhook_max_age_seconds
        if event.timestamp_ms is None or not too_old(event.timestamp_ms, now=now, max_age=limit):
            return
        age = now - event.timestamp_ms / 1000
        raise StaleDeliveryError(
            f"the delivery's timestamp is {age:.0f} s old, more than WEBHOOK_MAX_AGE_SECONDS "
            f"({limit:g}); Jira retries for 30 minutes, so this is a replay or a late relay"
        )


def _delivery_id(body: bytes, headers: Mapping[str, str]) -> str:
    given = (headers.get("X-Atlassian-Webhook-Identifier") or "").strip()
    if given and len(given) <= 200 and given.isprintable():
        return given
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _retry_count(headers: Mapping[str, str]) -> int:
    raw = (headers.get("X-Atlassian-Webhook-Retry") or "0").strip()
    return int(raw) if raw.isdigit() and len(raw) < 6 else 0


bp = Blueprint("receiver", __name__)


@bp.post("/webhooks/jira")
def receive_jira() -> ResponseReturnValue:
    receiver: Receiver = current_app.extensions["impact.receiver"]
    result = receiver.receive(
        request.get_data(cache=False), request.headers, request.args, request.mimetype
    )
    request.environ[ACCESS_FIELDS] = {
        "delivery_id": result.get("delivery"),
        "delivery_status": result["status"],
        "issue_key": result.get("issue"),
    }
    return jsonify(result), 202
