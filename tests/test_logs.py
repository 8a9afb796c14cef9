"""Logs: JSON lines, the delivery context on every record, and no secret ever written."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from connector.protocol import Call
from service.logs import (
    REDACTED,
    JsonFormatter,
    Redactor,
    configure_logging,
    delivery_context,
    log_jira_calls,
)
from webhooks.access_log import GunicornLogger

log = logging.getLogger("tests.logs")


@pytest.fixture(autouse=True)
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def stream(settings):
    out = io.StringIO()
    configure_logging(settings, stream=out)
    return out


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_line(stream):
    log.info("hello %s", "world")
    log.warning("two\nlines")
    first, second = lines(stream)
    assert first["message"] == "hello world"
    assert first["level"] == "info"
    assert first["logger"] == "tests.logs"
    assert first["time"].endswith("Z")
    assert second["message"] == "two\nlines"
    assert second["level"] == "warning"


def test_exceptions_and_extra_fields_are_kept(stream):
    try:
        raise ValueError("bad value")
    except ValueError:
        log.exception("it failed", extra={"attempt": 2})
    (entry,) = lines(stream)
    assert entry["attempt"] == 2
    assert "ValueError: bad value" in entry["exception"]


def test_the_delivery_context_is_on_every_record_inside_it(stream):
    log.info("before")
    with delivery_context("wh-1", "SHOP-1"):
        log.info("inside")
        with delivery_context("wh-2"):
            log.info("nested")
        log.info("inside again")
    log.info("after")
    got = [(e["message"], e.get("delivery_id"), e.get("issue_key")) for e in lines(stream)]
    assert got == [
        ("before", None, None),
        ("inside", "wh-1", "SHOP-1"),
        ("nested", "wh-2", None),
        ("inside again", "wh-1", "SHOP-1"),
        ("after", None, None),
    ]


def test_the_context_does_not_leak_to_other_threads(stream):
    inside, logged = threading.Event(), threading.Event()

    def other() -> None:
        inside.wait(10)
        log.info("from another thread")
        logged.set()

    thread = threading.Thread(target=other)
    thread.start()
    with delivery_context("wh-1", "SHOP-1"):
        inside.set()
        assert logged.wait(10)
    thread.join(10)
    (entry,) = lines(stream)
    assert "delivery_id" not in entry and "issue_key" not in entry


def test_one_line_per_jira_call_with_its_delivery(stream):
    with delivery_context("wh-7", "SHOP-7"):
        log_jira_calls(
            [
                Call("POST", "/rest/api/2/issue/SHOP-7/comment", 201, 30.4),
                Call("PUT", "/rest/api/2/issue/SHOP-7", None, 10_000.0),
            ]
        )
    first, second = lines(stream)
    assert first["message"] == "jira POST /rest/api/2/issue/SHOP-7/comment -> 201 (30 ms)"
    assert (first["jira_method"], first["jira_status"], first["jira_ms"]) == ("POST", 201, 30.4)
    assert second["jira_status"] is None
    assert second["message"].startswith("jira PUT /rest/api/2/issue/SHOP-7 -> no answer")
    assert {e["delivery_id"] for e in (first, second)} == {"wh-7"}
    assert {e["issue_key"] for e in (first, second)} == {"SHOP-7"}


def test_configuring_twice_keeps_one_handler(settings):
    out = io.StringIO()
    configure_logging(settings, stream=io.StringIO())
    configure_logging(settings, stream=out)
    log.info("once")
    assert len(out.getvalue().splitlines()) == 1


SECRET = "test-webhook-secret"
API_TOKEN = "jira-api-token"
BASIC = base64.b64encode(b"bot@example.com:jira-api-token").decode()


@pytest.mark.parametrize(
    ("message", "args", "extra"),
    [
        ("secret is %s", (SECRET,), None),
        (f"token {API_TOKEN} refused", (), None),
        ("headers %r", ({"Authorization": f"Basic {BASIC}"},), None),
        ("sent Authorization: Bearer abcdefghijklmnop1234", (), None),
        ("auth header Bearer qrstuvwxyz0123456789", (), None),
        ("GET /webhooks/jira?token=abc123&x=1", (), None),
        ("called with %s", (BASIC,), None),
        ("an extra field", (), {"url": f"https://x/?secret={SECRET}"}),
        ("a nested extra", (), {"request": {"headers": {"X": API_TOKEN}}}),
    ],
)
def test_secrets_and_credentials_are_redacted(stream, message, args, extra):
    log.info(message, *args, extra=extra)
    text = stream.getvalue()
    for secret in (SECRET, API_TOKEN, BASIC, "abcdefghijklmnop1234", "qrstuvwxyz0123456789"):
        assert secret not in text
    assert "abc123" not in text
    assert REDACTED in text


def test_secrets_in_a_traceback_are_redacted(stream):
    try:
        raise RuntimeError(f"login with {API_TOKEN} failed")
    except RuntimeError:
        log.exception("Jira refused")
    (entry,) = lines(stream)
    assert API_TOKEN not in json.dumps(entry)
    assert f"login with {REDACTED} failed" in entry["exception"]


def test_a_secret_that_json_escapes_is_redacted(settings):
    out = io.StringIO()
    odd = 'pa"ss\\word-with-quote'
    configure_logging(replace(settings, webhook_secret=odd), stream=out)
    log.info("secret is %s", odd, extra={"again": odd})
    (entry,) = lines(out)
    assert odd not in json.dumps(entry)
    assert entry["message"] == f"secret is {REDACTED}"
    assert entry["again"] == REDACTED


def test_a_record_with_bad_arguments_is_written_redacted():
    record = logging.makeLogRecord({"msg": "two values %s %s", "args": (SECRET,)})  # one short
    entry = json.loads(JsonFormatter(Redactor([SECRET])).format(record))
    assert entry["message"] == f"two values %s %s ('{REDACTED}',)"


def test_ordinary_words_are_not_redacted(stream):
    log.info("basic checks passed; authorization scheme is basic")
    assert lines(stream)[0]["message"] == "basic checks passed; authorization scheme is basic"


# --------------------------------------------------------------------------------------------
# gunicorn


@pytest.fixture
def gunicorn_logger(monkeypatch):
    for name, value in {
        "JIRA_URL": "https://jira.invalid",
        "JIRA_PAT": "pat-0123456789",
        "JIRA_WEBHOOK_TOKEN": "hook-token-0123456789",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("JIRA_EMAIL", "JIRA_API_TOKEN", "JIRA_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("errorlog", "-")
    logger = GunicornLogger(cfg)
    outputs = {}
    for target in (logger.error_log, logger.access_log):
        (handler,) = [h for h in target.handlers if getattr(h, "_gunicorn", False)]
        outputs[target.name] = io.StringIO()
        handler.setStream(outputs[target.name])
    yield logger, outputs
    for target in (logger.error_log, logger.access_log):
        for handler in [h for h in target.handlers if getattr(h, "_gunicorn", False)]:
            target.removeHandler(handler)


def test_gunicorns_access_line_is_json_without_the_query_string(gunicorn_logger):
    logger, outputs = gunicorn_logger
    request = SimpleNamespace(
        method="POST", path="/webhooks/jira", query="token=hook-token-0123456789"
    )
    response = SimpleNamespace(status="202 ACCEPTED")
    logger.access(response, request, {}, timedelta(milliseconds=12))
    (line,) = outputs["gunicorn.access"].getvalue().splitlines()
    entry = json.loads(line)
    assert entry["logger"] == "gunicorn.access"
    assert entry["message"] == "POST /webhooks/jira 202 12 ms"
    assert (entry["path"], entry["status"], entry["duration_ms"]) == ("/webhooks/jira", 202, 12.0)
    assert "hook-token" not in line


def test_access_line_of_a_webhook_says_what_became_of_the_delivery(gunicorn_logger, client):
    from flask import request

    from tests.conftest import issue_payload, post_signed

    logger, outputs = gunicorn_logger
    environ: dict = {}  # what the view leaves in the WSGI environ, which gunicorn hands over
    client.application.after_request(lambda response: environ.update(request.environ) or response)
    headers = {"X-Atlassian-Webhook-Identifier": "wh-9"}
    response = post_signed(client, issue_payload(), headers=headers)
    wsgi_request = SimpleNamespace(method="POST", path="/webhooks/jira", query="")
    logger.access(SimpleNamespace(status="202 ACCEPTED"), wsgi_request, environ,
                  timedelta(milliseconds=3))  # fmt: skip
    entry = json.loads(outputs["gunicorn.access"].getvalue())
    assert response.status_code == 202
    assert entry["message"] == f"POST /webhooks/jira 202 3 ms {response.json['status']}"
    assert (entry["delivery_id"], entry["issue_key"]) == ("wh-9", "SHOP-311")
    assert entry["delivery_status"] == response.json["status"]


def test_gunicorns_error_lines_are_json_and_redacted(gunicorn_logger):
    logger, outputs = gunicorn_logger
    logger.error("worker saw %s and %s", "hook-token-0123456789", "pat-0123456789")
    (line,) = outputs["gunicorn.error"].getvalue().splitlines()
    entry = json.loads(line)
    assert entry["logger"] == "gunicorn.error"
    assert entry["message"] == f"worker saw {REDACTED} and {REDACTED}"


def test_a_refused_webhook_is_logged_with_the_client_address(stream, client):
    """A run of bad signatures shows where it comes from (webhooks are not throttled: Jira
    Cloud's deliveries share their addresses with every other site's, see the README)."""
    body = b'{"webhookEvent": "jira:issue_created"}'
    headers = {"Content-Type": "application/json", "X-Hub-Signature": "sha256=00"}
    r = client.post(
        "/webhooks/jira", data=body, headers=headers, environ_base={"REMOTE_ADDR": "203.0.113.7"}
    )
    assert r.status_code == 401
    refused = [line for line in lines(stream) if line["message"].startswith("rejected request")]
    assert refused[-1]["level"] == "warning"
    assert refused[-1]["message"] == (
        "rejected request from 203.0.113.7: 401 X-Hub-Signature does not match the body"
    )
