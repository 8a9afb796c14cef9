"""Bad requests against the receiver with the real queue behind it: a corpus of more than 50,
then a Hypothesis fuzz. Never a 5xx, never a crash, and nothing stored or queued for a request
that is rejected (or ignored)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.client import JiraConnector
from connector.errors import JiraError
from impact.model import FieldRef, ImpactClass, Plan, Source
from pipeline.delivery_log import DeliveryLog, make_engine, migrate
from pipeline.queue import DeliveryQueue, Inbox, QueueDispatcher, make_huey
from tests.conftest import SECRET, issue_payload, load_payload
from webhooks import create_app
from webhooks.signature import sign

URL = "/webhooks/jira"
JSON = "application/json"
MAX_BODY = 64 * 1024
VALID = json.dumps(issue_payload()).encode()


@dataclass
class Service:
    client: Any
    log: DeliveryLog
    huey: Any

    def stored(self) -> tuple[int, int]:
        """(deliveries kept: rows in the delivery log plus the queue's inbox, jobs in the queue).
        A delivery accepted waits in the inbox; a duplicate is a row in the log."""
        kept = sum(self.log.counts().values()) + Inbox(self.huey).size()
        return kept, self.huey.pending_count()


@pytest.fixture(scope="module")
def service(tmp_path_factory, impact_config) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("bad-requests")
    from service.settings import Settings

    s = Settings.from_env(
        {
            "JIRA_URL": "https://jira.invalid",
            "JIRA_PAT": "pat",
            "JIRA_WEBHOOK_SECRET": SECRET,
            "DATABASE_URL": f"sqlite:///{folder}/impact.db",
            "QUEUE_PATH": str(folder / "queue.db"),
        }
    )
    s = replace(s, max_body_bytes=MAX_BODY)
    engine = make_engine(s.database_url)
    migrate(engine)
    log = DeliveryLog(engine)
    huey = make_huey(s)
    dispatcher = QueueDispatcher(log=log, queue=DeliveryQueue(huey))
    app = create_app({"SETTINGS": s, "IMPACT": impact_config, "DISPATCHER": dispatcher})
    yield Service(app.test_client(), log, huey)
    engine.dispose()


@pytest.fixture(scope="module")
def impact_config():
    from impact.config import load_config
    from tests.conftest import ROOT

    return load_config(ROOT / "config" / "impact.toml")


# --------------------------------------------------------------------------------------------
# The corpus


@dataclass(frozen=True)
class Bad:
    name: str
    body: bytes
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    signed: bool = True  # sign the body with the right secret
    method: str = "POST"
    path: str = URL
    content_type: str | None = "application/json"


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


# Not issue keys, though an older check let each of them by (and on into a Jira path).
BAD_KEYS = (".", "..", "SHOP-1/../../myself", "shop-1", "SHOP-", "SHOP-1a", "SHOP-1%2F", "-1")


def _with(path: str, value: Any) -> bytes:
    """The valid payload with one part (a dotted path) replaced, or removed when ``...``."""
    payload = issue_payload()
    *parents, last = path.split(".")
    node = payload
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return _json(payload)


CORPUS: list[Bad] = [
    # authentication (401): checked before anything is parsed
    Bad("unsigned", VALID, 401, signed=False),
    Bad("wrong secret", VALID, 401, {"X-Hub-Signature": sign(VALID, secret="nope")}, False),
    Bad("signature of another body", VALID, 401, {"X-Hub-Signature": sign(b"{}", secret=SECRET)}),
    Bad("empty signature", VALID, 401, {"X-Hub-Signature": ""}, False),
    Bad("no method", VALID, 401, {"X-Hub-Signature": "0123abcd"}, False),
    Bad("unknown method", VALID, 401, {"X-Hub-Signature": "md5=0123abcd"}, False),
    Bad("method only", VALID, 401, {"X-Hub-Signature": "sha256="}, False),
    Bad("non-hex digest", VALID, 401, {"X-Hub-Signature": "sha256=zzzz"}, False),
    Bad("non-ascii digest", VALID, 401, {"X-Hub-Signature": "sha256=\xe9\xe9"}, False),
    Bad("huge signature", VALID, 401, {"X-Hub-Signature": "sha256=" + "a" * 8000}, False),
    Bad("token instead of signature", VALID, 401, signed=False, path=URL + "?token=guess"),
    # bodies that are not JSON (400)
    Bad("empty body", b"", 400),
    Bad("whitespace body", b"  \n\t ", 400),
    *[Bad(f"truncated at {n}", VALID[:n], 400) for n in (1, 2, 17, 100, 1000, len(VALID) - 1)],
    Bad("not json", b"{not json", 400),
    Bad("trailing garbage", VALID + b"}", 400),
    Bad("single quotes", b"{'webhookEvent': 'jira:issue_created'}", 400),
    Bad("latin-1", '{"webhookEvent": "jira:issue_créated"}'.encode("latin-1"), 400),
    Bad("utf-16", '{"webhookEvent": "jira:issue_created"}'.encode("utf-16"), 400),
    Bad("overlong utf-8", b'{"webhookEvent": "\xc0\xaf"}', 400),
    Bad("lone continuation byte", b'{"webhookEvent": "\x80"}', 400),
    Bad("nul bytes", b"\x00" * 64, 400),
    Bad("deep nesting", b"[" * 100_000 + b"]" * 100_000, 413),
    Bad("deep nesting under limit", b"[" * 30_000 + b"]" * 30_000, 400),
    Bad("binary", bytes(range(256)), 400),
    # JSON of the wrong shape (422)
    Bad("array", b"[1, 2]", 422),
    Bad("string", b'"jira:issue_created"', 422),
    Bad("number", b"42", 422),
    Bad("null", b"null", 422),
    Bad("true", b"true", 422),
    Bad("empty object", b"{}", 422),
    Bad("event missing", _with("webhookEvent", ...), 422),
    Bad("event a number", _with("webhookEvent", 42), 422),
    Bad("event a list", _with("webhookEvent", ["jira:issue_created"]), 422),
    Bad("event an object", _with("webhookEvent", {"name": "x"}), 422),
    Bad("event null", _with("webhookEvent", None), 422),
    Bad("issue missing", _with("issue", ...), 422),
    Bad("issue a string", _with("issue", "SHOP-1"), 422),
    Bad("issue key missing", _with("issue.key", ...), 422),
    Bad("issue key a number", _with("issue.key", 311), 422),
    Bad("fields missing", _with("issue.fields", ...), 422),
    Bad("project missing", _with("issue.fields.project", ...), 422),
    Bad("project key a list", _with("issue.fields.project", {"key": ["SHOP"]}), 422),
    Bad("user a list", _with("user", [1]), 422),
    Bad("changelog items not a list", _with("changelog", {"items": "labels"}), 422),
    Bad("changelog item without field", _with("changelog", {"items": [{"to": "x"}]}), 422),
    # an issue key that is not a key, or not of the project the body names
    *[Bad(f"issue key {key!r}", _with("issue.key", key), 422) for key in BAD_KEYS],
    Bad("key of another project", _with("issue.key", "SUP-1"), 422),
    Bad("key under another project", _json(issue_payload(project={"key": "SUP"})), 422),
    # too large (413)
    Bad("over the limit", _with("issue.fields.description", "x" * MAX_BODY), 413),
    Bad("huge unsigned", b"x" * (4 * MAX_BODY), 413, signed=False),
    # content types (415); a missing one is taken as JSON
    Bad("text/plain", VALID, 415, content_type="text/plain"),
    Bad("form", VALID, 415, content_type="application/x-www-form-urlencoded"),
    Bad("xml", VALID, 415, content_type="application/xml"),
    Bad("multipart", VALID, 415, content_type="multipart/form-data; boundary=x"),
    Bad("octet-stream", VALID, 415, content_type="application/octet-stream"),
    # unknown or other events, other projects: acknowledged, ignored, nothing stored (202)
    Bad("unknown event", _with("webhookEvent", "made:up"), 202),
    Bad("empty event name", _with("webhookEvent", ""), 202),
    Bad("issue deleted", _with("webhookEvent", "jira:issue_deleted"), 202),
    Bad("sprint started", _json({"webhookEvent": "sprint_started", "sprint": {"id": 1}}), 202),
    Bad("comment created", _json(load_payload("cloud_comment_created.json")), 202),
    Bad("other project", _json(issue_payload(key="OPS-311", project={"key": "OPS"})), 202),
    # wrong methods and routes
    Bad("GET", b"", 405, method="GET"),
    Bad("PUT", VALID, 405, method="PUT"),
    Bad("DELETE", b"", 405, method="DELETE"),
    Bad("other path", VALID, 404, path="/webhooks/jira/extra"),
    Bad("root", VALID, 404, path="/"),
]


def _send(service: Service, bad: Bad):
    headers = dict(bad.headers)
    if bad.signed:
        headers.setdefault("X-Hub-Signature", sign(bad.body, secret=SECRET))
    if bad.content_type is not None:
        headers["Content-Type"] = bad.content_type
    return service.client.open(bad.path, method=bad.method, data=bad.body, headers=headers)


def test_corpus_is_large_and_names_are_unique():
    assert len(CORPUS) >= 50
    assert len({b.name for b in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("bad", CORPUS, ids=lambda b: b.name)
def test_bad_request_is_refused_cleanly_and_nothing_is_stored(service, bad):
    before = service.stored()
    r = _send(service, bad)
    assert r.status_code == bad.status, r.get_data(as_text=True)[:300]
    assert r.is_json
    if bad.status >= 400:
        assert r.json["status"] == "rejected"
        assert r.json["message"]
    else:
        assert r.json["status"] == "ignored"
    assert service.stored() == before


def test_an_issue_key_of_another_project_is_refused_naming_both(service):
    """A signed body whose key is of one project and whose project is another is not triaged
    under either: the worker would write to an issue of a project the admin never configured."""
    body = _json(issue_payload(key="SUP-1", project={"key": "SHOP"}))
    r = _send(service, Bad("key of SUP under SHOP", body, 422))
    assert r.status_code == 422
    assert r.json["errors"] == {
        "issue.key": ["SUP-1 is not an issue of project 'SHOP' (issue.fields.project.key)"]
    }


@pytest.mark.parametrize("key", BAD_KEYS)
def test_keys_that_are_not_jira_keys_never_reach_a_jira_path(key):
    """The connector refuses them before any request names them: only the service's own
    set-up calls (serverInfo, myself) are made, whatever the plan asks for."""
    jira = JiraConnector("https://jira.invalid", field=FieldRef(name="x"), pat="pat")
    server_info = {"versionNumbers": [9, 12, 0], "deploymentType": "DataCenter"}
    plan = Plan(
        issue_key=key,
        level=None,
        source=Source.MISSING,
        impact_class=ImpactClass.UNKNOWN,
        score=20,
        add_labels=("needs-customer-impact",),
        comment="which impact?",
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.get("https://jira.invalid/rest/api/2/serverInfo", json=server_info)
        mocked.get("https://jira.invalid/rest/api/2/myself", json={"name": "bot"})
        for attempt in (lambda: jira.get_issue(key), lambda: jira.apply_plan(plan)):
            with pytest.raises(JiraError, match="is not an issue key"):
                attempt()
        sent = {call.request.path_url for call in mocked.calls}
    assert sent <= {"/rest/api/2/serverInfo", "/rest/api/2/myself"}


def test_with_a_secret_set_an_unsigned_delivery_is_refused_even_with_the_right_token(
    settings, impact_config, jira
):
    """The README says unsigned deliveries are refused once a secret is set: the token, were
    it leaked from a URL in some log, must not stand in for the signature."""
    both = replace(settings, webhook_token="url-token-0123")
    client = create_app({"SETTINGS": both, "IMPACT": impact_config, "JIRA": jira}).test_client()
    r = client.post("/webhooks/jira?token=url-token-0123", data=VALID, content_type=JSON)
    assert r.status_code == 401
    assert r.json["message"] == "missing X-Hub-Signature header"
    assert jira.requests == [] and jira.applied == []
    signed = client.post(
        "/webhooks/jira?token=url-token-0123",
        data=VALID,
        headers={"Content-Type": JSON, "X-Hub-Signature": sign(VALID, secret=SECRET)},
    )
    assert signed.status_code == 202


def test_odd_but_harmless_headers_are_accepted(service):
    """Headers Jira never sends this way fall back to safe defaults instead of failing."""
    cases = [
        {"X-Atlassian-Webhook-Identifier": "x" * 500},  # too long: the body hash is used
        {"X-Atlassian-Webhook-Identifier": "bad\x7fid"},
        {"X-Atlassian-Webhook-Retry": "many"},
        {"X-Atlassian-Webhook-Retry": "99999999999"},
        {"X-Atlassian-Webhook-Flow": "Sideways"},
    ]
    for n, headers in enumerate(cases):
        body = _json(issue_payload(key=f"SHOP-{9000 + n}"))
        r = _send(service, Bad("odd", body, 202, headers))
        assert r.status_code == 202, (headers, r.json)
        assert r.json["status"] == "queued"


# --------------------------------------------------------------------------------------------
# The fuzz

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
PATHS = [
    "webhookEvent",
    "issue",
    "issue.key",
    "issue.fields",
    "issue.fields.project",
    "issue.fields.project.key",
    "issue.fields.labels",
    "user",
    "changelog",
    "timestamp",
]


@st.composite
def bodies(draw) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "mutated", "cut"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return _json(draw(json_values))
    if kind == "cut":
        return VALID[: draw(st.integers(0, len(VALID)))]
    path = draw(st.sampled_from(PATHS))
    value = draw(st.just(...) | json_values)
    try:
        return _with(path, value)
    except (KeyError, TypeError):
        return VALID


header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=bodies(),
    signed=st.booleans(),
    content_type=st.sampled_from(["application/json", "", "text/plain", "application/json; x"]),
    extra=st.dictionaries(
        st.sampled_from(
            [
                "X-Atlassian-Webhook-Identifier",
                "X-Atlassian-Webhook-Retry",
                "X-Atlassian-Webhook-Flow",
                "X-Hub-Signature",
            ]
        ),
        header_text,
        max_size=3,
    ),
)
def test_fuzzed_requests_never_fail_the_server(service, body, signed, content_type, extra):
    headers = dict(extra)
    if signed:
        headers["X-Hub-Signature"] = sign(body, secret=SECRET)
    if content_type:
        headers["Content-Type"] = content_type
    rows, jobs = service.stored()
    r = service.client.post(URL, data=body, headers=headers)
    assert r.status_code < 500, r.get_data(as_text=True)[:300]
    assert r.is_json
    new_rows, new_jobs = service.stored()
    if r.status_code == 202 and r.json["status"] in ("queued", "duplicate"):
        assert new_rows == rows + 1
        assert new_jobs == jobs + (r.json["status"] == "queued")
    else:
        assert (new_rows, new_jobs) == (rows, jobs)
