"""Webhook delivery: registered webhooks receive issue and comment events as Jira sends them.

Events are turned into payloads at once (under the state lock, so they show the issue as it was)
and sent by one background thread, in order. A delivery answered 408/409/425/429/5xx, or one
whose connection failed, is retried a bounded number of times with a short growing pause; the
``X-Atlassian-Webhook-Identifier`` stays the same across retries.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import ipaddress
import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from sandbox.state import Flavour, JiraState, Webhook

RETRY_STATUSES = frozenset({408, 409, 425, 429})
REDUCED_ISSUE_FIELDS = ("summary", "issuetype", "project", "assignee", "priority", "status")
MAX_RECORDS = 5_000


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` is http(s) to this machine (the only place the sandbox delivers to)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload_for(flavour: Flavour, event: dict[str, Any]) -> dict[str, Any]:
    """The body Jira sends for ``event`` in this flavour."""
    payload = copy.deepcopy(event)
    if flavour is Flavour.DC:  # Server/DC changelog items carry no fieldId
        for item in payload.get("changelog", {}).get("items", []):
            item.pop("fieldId", None)
    if payload["webhookEvent"] == "comment_created":
        if flavour is Flavour.CLOUD:  # Cloud sends a reduced issue; Server/DC none
            issue = payload["issue"]
            fields = issue["fields"]
            payload["issue"] = {
                "id": issue["id"],
                "self": issue["self"],
                "key": issue["key"],
                "fields": {name: fields.get(name) for name in REDUCED_ISSUE_FIELDS},
            }
        else:
            payload.pop("issue")
    order = ("timestamp", "webhookEvent", "issue_event_type_name", "user", "issue", "changelog")
    return {k: payload[k] for k in order if k in payload} | {
        k: v for k, v in payload.items() if k not in order
    }


@dataclass
class _Job:
    record: dict[str, Any]
    url: str
    body: bytes
    headers: dict[str, str]


def fill_url(url: str, event: dict[str, Any], *, dc10: bool) -> str:
    """The webhook's URL with its variables filled in: ``${issue.key}`` before Data Center 10
    (and on Cloud), ``{issue.key}`` from 10 on, where a ``$`` before one is left as it is."""
    for part in ("key", "id"):
        value = issue_part(event, part)
        if dc10:
            url = url.replace(f"{{issue.{part}}}", value)
        else:
            url = url.replace(f"${{issue.{part}}}", value)
    return url


class HookDispatcher:
    """Sends webhook deliveries from one background thread; records every attempt."""

    def __init__(
        self,
        *,
        max_retries: int = 5,
        backoff: float = 0.2,
        timeout: tuple[float, float] = (2.0, 10.0),
    ) -> None:
        self.max_retries = max_retries
        self.backoff = backoff
        self.timeout = timeout
        self._jobs: deque[_Job] = deque()
        self._records: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._busy = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    def attach(self, state: JiraState) -> HookDispatcher:
        state.set_emitter(self.on_event)
        return self

    def start(self) -> HookDispatcher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self._session.close()

    # ---------------------------------------------------------------- queueing

    def on_event(self, state: JiraState, event: dict[str, Any]) -> None:
        """Queue one delivery per registered webhook that wants this event."""
        issue = event.get("issue") or {}
        for webhook in list(state.webhooks.values()):
            if not webhook.active or event["webhookEvent"] not in webhook.events:
                continue
            if webhook.query is not None and not webhook.query.matches(issue):
                continue
            self._queue(state, webhook, event)

    def _queue(self, state: JiraState, webhook: Webhook, event: dict[str, Any]) -> None:
        identifier = str(uuid.uuid4())
        payload = payload_for(state.flavour, event)
        body = b"" if webhook.exclude_body else json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Atlassian Webhook HTTP Client",
            "X-Atlassian-Webhook-Identifier": identifier,
            "X-Atlassian-Webhook-Flow": "Primary",
        }
        if webhook.secret:
            headers["X-Hub-Signature"] = sign(webhook.secret, body)
        url = fill_url(webhook.url, event, dc10=state.dc10)
        record = {
            "id": identifier,
            "webhook": webhook.id,
            "event": event["webhookEvent"],
            "issue_event_type_name": event.get("issue_event_type_name"),
            "issue": issue_part(event, "key"),
            "url": url,
            "signed": bool(webhook.secret),
            "state": "pending",
            "attempts": 0,
            "statuses": [],
            "status": None,
            "answer": None,  # the "status" word of the receiver's JSON answer, if it gave one
            "error": None,
            "payload": payload if not webhook.exclude_body else None,
        }
        with self._cond:
            self._records.append(record)
            del self._records[:-MAX_RECORDS]
            self._jobs.append(_Job(record, url, body, headers))
            self._cond.notify_all()

    # ---------------------------------------------------------------- reading

    def records(self, since: int = 0) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(r, statuses=list(r["statuses"])) for r in self._records[since:]]

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued delivery is finished (or ``timeout`` seconds pass)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._jobs and not self._busy, timeout)

    def clear(self) -> None:
        with self._cond:
            self._jobs.clear()
            self._records.clear()

    # ---------------------------------------------------------------- sending

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._cond:
                self._cond.wait_for(lambda: self._jobs or self._stopping.is_set())
                if self._stopping.is_set():
                    return
                job = self._jobs.popleft()
                self._busy = True
            try:
                self._deliver(job)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _deliver(self, job: _Job) -> None:
        record = job.record
        for attempt in range(self.max_retries + 1):
            headers = dict(job.headers)
            if attempt:
                headers["X-Atlassian-Webhook-Retry"] = str(attempt)
            status, error, answer = self._post(job.url, job.body, headers)
            with self._cond:
                record["attempts"] = attempt + 1
                record["statuses"].append(status)
                record["status"], record["error"], record["answer"] = status, error, answer
            if status is not None and 200 <= status < 300:
                self._finish(record, "delivered")
                return
            if status is not None and status not in RETRY_STATUSES and status < 500:
                self._finish(record, "rejected")  # Jira does not retry other 4xx
                return
            if attempt == self.max_retries or self._stopping.wait(self.backoff * (attempt + 1)):
                break
        self._finish(record, "failed")

    def _post(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None, str | None]:
        if not is_loopback_url(url):
            return None, "not a loopback URL", None
        try:
            response = self._session.post(
                url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            return None, f"{type(exc).__name__}: {exc}", None
        try:
            said = response.json()
        except ValueError:
            said = None
        response.close()
        answer = said.get("status") if isinstance(said, dict) else None
        return response.status_code, None, answer if isinstance(answer, str) else None

    def _finish(self, record: dict[str, Any], outcome: str) -> None:
        with self._cond:
            record["state"] = outcome


def issue_part(event: dict[str, Any], name: str) -> str:
    issue = event.get("issue") or {}
    return str(issue.get(name, ""))
