"""Logs as JSON lines on stderr: one object a line, saying which delivery and issue it concerns.

- ``configure_logging(settings)`` sends the root logger's records to stderr as JSON lines. Every
  line goes through a ``Redactor``: each value of ``Settings.secrets()`` (and the Basic
  credentials built from them), Authorization header values and ``token=`` query parameters
  become ``[redacted]``.
- ``delivery_context(delivery_id, issue_key)``: while it is open (in this thread or task; it is a
  ``contextvars`` value), every record carries ``delivery_id`` and ``issue_key``.
- ``log_jira_calls(calls)``: one line per Jira call.
- ``webhooks.access_log.GunicornLogger`` writes gunicorn's own lines the same way.
"""

from __future__ import annotations

import base64
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

from connector.protocol import Call
from service.settings import Settings, SettingsError

REDACTED = "[redacted]"
CALLS_LOGGER = "webhooks.jira_calls"

_OURS = "_jira_impact_json"  # marks the handlers configure_logging installed
_AUTH_VALUE = re.compile(r"""(?i)(\bauthorization["']?\s*[:=]\s*["']?)[^"'\r\n]+""")
_SCHEME_VALUE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{16,}")
_TOKEN_PARAM = re.compile(r"(?i)([?&](?:token|api_token|access_token)=)[^&\s\"']+")
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

_context: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar(
    "jira_impact_log_context", default=()
)


# --------------------------------------------------------------------------------------------
# Context


@contextmanager
def delivery_context(delivery_id: str | None, issue_key: str | None = None) -> Iterator[None]:
    """Every record logged inside carries ``delivery_id`` and ``issue_key`` (those given)."""
    fields = tuple((k, v) for k, v in (("delivery_id", delivery_id), ("issue_key", issue_key)) if v)
    token = _context.set(fields)
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Stamps the open ``delivery_context`` on each record (an explicit ``extra`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


# --------------------------------------------------------------------------------------------
# Redaction


class Redactor:
    """Replaces secrets, and credentials in the forms they travel in, in text: each log line
    whole (``JsonFormatter``), and what the health and admin pages show."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: tuple[str, ...] = ()
        self.update(secrets)

    @classmethod
    def from_settings(cls, settings: Settings | None) -> Redactor:
        return cls(secret_values(settings) if settings else ())

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Redactor:
        """For gunicorn's master, which builds no app: the secrets the environment gives."""
        try:
            return cls.from_settings(Settings.from_env(env))
        except SettingsError:
            return cls()  # the workers will refuse to start, and say why

    def update(self, secrets: Iterable[str]) -> None:
        # Each as written and as a JSON string spells it (a log line is JSON); longest first, so
        # a secret that contains another is replaced whole.
        forms = {f for s in secrets if s for f in (s, json.dumps(s, ensure_ascii=False)[1:-1])}
        self.secrets = tuple(sorted(forms, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if not _may_carry_credentials(text):
            return text
        text = _AUTH_VALUE.sub(lambda m: m.group(1) + REDACTED, text)
        text = _SCHEME_VALUE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        return _TOKEN_PARAM.sub(lambda m: m.group(1) + REDACTED, text)


def _may_carry_credentials(text: str) -> bool:
    """False when none of the patterns can match: a plain search is some 50 times cheaper than
    the three case-blind regexes, and most lines carry nothing. Non-ASCII text always goes to the
    regexes, whose case-blindness matches more than ``str.lower`` does (ı for i, ſ for s)."""
    if not text.isascii():
        return True
    low = text.lower()  # the words the patterns need:
    return "authorization" in low or "bearer" in low or "basic" in low or "token=" in low


def secret_values(settings: Settings) -> tuple[str, ...]:
    """``Settings.secrets()`` plus the forms they travel in: Basic credentials (email:token)."""
    values = list(settings.secrets())
    if settings.jira_email and settings.jira_api_token:
        pair = f"{settings.jira_email}:{settings.jira_api_token}".encode()
        values.append(base64.b64encode(pair).decode())
    return tuple(values)


# --------------------------------------------------------------------------------------------
# JSON lines


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then the record's context and
    extra fields, then the exception's traceback if any."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        entry: dict[str, Any] = {
            "time": stamp.replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _message(record),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and not name.startswith("_"):
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        line = json.dumps(entry, default=str, ensure_ascii=False)
        # On the whole line, once: message, traceback and every extra, strings or not.
        return self.redactor.redact(line) if self.redactor else line


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # bad %-arguments: show what there is (redacted with the line), no error
        return f"{record.msg} {record.args!r}"


def json_handler(stream: IO[str] | None, redactor: Redactor) -> logging.Handler:
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    equip(handler, redactor)
    setattr(handler, _OURS, True)
    return handler


def equip(handler: logging.Handler, redactor: Redactor) -> None:
    """Make ``handler`` write redacted JSON lines with the delivery context."""
    handler.setFormatter(JsonFormatter(redactor))
    for old in [f for f in handler.filters if isinstance(f, ContextFilter)]:
        handler.removeFilter(old)
    handler.addFilter(ContextFilter())


def configure_logging(
    settings: Settings | None = None,
    *,
    level: int | str = logging.INFO,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every record to ``stream`` (stderr) as a redacted JSON line. Safe to call again (a
    second call replaces the first one's handler); other handlers (pytest's) are left alone."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    handler = json_handler(stream, Redactor.from_settings(settings))
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def log_jira_calls(calls: Iterable[Call], logger: logging.Logger | None = None) -> None:
    """One line per Jira call (method, path, status, time), in the open delivery context."""
    target = logger or logging.getLogger(CALLS_LOGGER)
    for call in calls:
        target.info(
            "jira %s (%.0f ms)",
            call,
            call.ms,
            extra={
                "jira_method": call.method,
                "jira_path": call.path,
                "jira_status": call.status,
                "jira_ms": round(call.ms, 1),
            },
        )
