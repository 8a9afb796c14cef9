"""Every kind of credential (``connector.credentials``) against the sandbox, which plays
Atlassian's gateway, its token endpoint and scoped tokens: where calls go, what they carry, a
token kept and fetched again, a token refused, a file read again after a 401."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.client import JiraConnector
from connector.credentials import Credential, Secret
from connector.errors import JiraAuthError
from impact.model import FieldRef
from sandbox.app import RunningSandbox, start_in_thread
from sandbox.gateway import SCOPE_MISMATCH
from sandbox.seed import SERVICE_SCOPES
from sandbox.stack import BOT_CLIENT, BOT_EMAIL, BOT_SCOPED_TOKEN, BOT_TOKEN

FIELD = FieldRef(name="External customer impact")


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_in_thread(seed="demo") as running:
        yield running


def control(sandbox: RunningSandbox, **body: Any) -> dict[str, Any]:
    import requests

    answer = requests.post(f"{sandbox.url}/_sandbox/credentials", json=body, timeout=10)
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def logged(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    import requests

    answer = requests.get(f"{sandbox.url}/_sandbox/calls?since=0", timeout=10)
    found: list[dict[str, Any]] = answer.json()["calls"]
    return found


def connector(sandbox: RunningSandbox, kind: str, secret: Secret | None = None, **kw: Any) -> Any:
    if kind == "scoped":
        secret = secret or Secret("JIRA_API_TOKEN", BOT_SCOPED_TOKEN)
        credential = Credential(kind, email=BOT_EMAIL, secret=secret, api_url=sandbox.url)
    elif kind == "oauth":
        client_id, client_secret = BOT_CLIENT
        secret = secret or Secret("JIRA_CLIENT_SECRET", client_secret)
        credential = Credential(
            kind, client_id=client_id, secret=secret, api_url=sandbox.url, auth_url=sandbox.url
        )
    else:
        secret = secret or Secret("JIRA_API_TOKEN", BOT_TOKEN)
        credential = Credential(kind, email=BOT_EMAIL, secret=secret)
    return JiraConnector(sandbox.url, field=FIELD, credential=credential, **kw)


@pytest.mark.parametrize("kind", ["scoped", "oauth"])
def test_scoped_and_oauth_calls_go_through_the_gateway_with_the_sites_cloud_id(sandbox, kind):
    jira = connector(sandbox, kind)
    assert jira.service_account().display_name == "Impact Bot"
    assert jira.get_issue("SHOP-1")["key"] == "SHOP-1"
    cloud_id = sandbox.state.cloud_id
    assert jira.base_url == f"{sandbox.url}/ex/jira/{cloud_id}"
    seen = logged(sandbox)
    assert seen[0]["path"] == "/_edge/tenant_info"
    api = [c for c in seen if c["path"].startswith("/rest/")]
    assert api and all(c.get("gateway") for c in api)
    assert {c["user"] for c in api} == {"impact-bot"}
    # the connector records the calls by their REST path, as on the site
    assert any(c.path == "/rest/api/2/issue/SHOP-1" for c in jira.calls)


def test_a_scoped_token_on_the_sites_url_is_refused(sandbox):
    secret = Secret("JIRA_API_TOKEN", BOT_SCOPED_TOKEN)
    jira = JiraConnector(
        sandbox.url, field=FIELD, credential=Credential("basic", email=BOT_EMAIL, secret=secret)
    )
    with pytest.raises(JiraAuthError):
        jira.service_account()


def test_a_call_outside_the_tokens_scopes_is_refused_as_the_gateway_refuses_it(sandbox):
    control(sandbox, scopes=[s for s in SERVICE_SCOPES if s != "write:jira-work"])
    jira = connector(sandbox, "scoped")
    assert jira.get_issue("SHOP-1")["key"] == "SHOP-1"  # reads are within its scopes
    with pytest.raises(JiraAuthError) as refused:
        jira.request("PUT", "/rest/api/2/issue/SHOP-1", body={"fields": {"labels": ["x"]}})
    assert refused.value.status == 401
    assert SCOPE_MISMATCH in str(refused.value)
    assert "write:jira-work" not in str(refused.value)  # the gateway names no scope
    # and the classic token still works on the site, which knows nothing of scopes
    assert connector(sandbox, "basic").get_issue("SHOP-1")["key"] == "SHOP-1"


def test_the_oauth_token_is_kept_until_shortly_before_it_expires_then_fetched_again(sandbox):
    control(sandbox, token_seconds=3)
    now = [1000.0]
    client_id, client_secret = BOT_CLIENT
    credential = Credential(
        "oauth",
        client_id=client_id,
        secret=Secret("JIRA_CLIENT_SECRET", client_secret),
        api_url=sandbox.url,
        auth_url=sandbox.url,
        clock=lambda: now[0],
    )
    first = credential.header()
    assert credential.header() == first  # kept
    now[0] += 2.6
    assert credential.header() == first  # kept until its last tenth
    now[0] += 0.2  # within its last tenth: fetched again
    assert credential.header() != first
    tokens = [c for c in logged(sandbox) if c["path"] == "/oauth/token"]
    assert len(tokens) == 2


def test_an_oauth_token_refused_is_fetched_again_and_the_call_sent_once_more(sandbox):
    jira = connector(sandbox, "oauth")
    jira.service_account()
    control(sandbox, expire_oauth_tokens=True)  # Jira forgets every token issued so far
    assert jira.get_issue("SHOP-2")["key"] == "SHOP-2"
    statuses = [(c["path"], c["status"]) for c in logged(sandbox)]
    assert ("/rest/api/2/issue/SHOP-2", 401) in statuses
    assert statuses[-1] == ("/rest/api/2/issue/SHOP-2", 200)
    assert sum(1 for path, _ in statuses if path == "/oauth/token") == 2


def test_a_refused_client_secret_is_a_credential_error_naming_the_token_endpoint(sandbox):
    jira = connector(sandbox, "oauth", secret=Secret("JIRA_CLIENT_SECRET", "wrong"))
    with pytest.raises(JiraAuthError, match="token endpoint refused the client credentials"):
        jira.service_account()


def test_a_token_rotated_in_its_file_is_read_again_after_a_401(sandbox, tmp_path: Path):
    token_file = tmp_path / "token"
    token_file.write_text(BOT_SCOPED_TOKEN + "\n")
    jira = connector(
        sandbox, "scoped", secret=Secret("JIRA_API_TOKEN", BOT_SCOPED_TOKEN, str(token_file))
    )
    jira.service_account()
    control(sandbox, scoped_token="rotated-scoped-token")  # the old one expires
    with pytest.raises(JiraAuthError):
        jira.get_issue("SHOP-1")  # the file still holds the old token
    token_file.write_text("rotated-scoped-token\n")
    assert jira.get_issue("SHOP-1")["key"] == "SHOP-1"  # no restart


def test_data_center_refuses_basic_and_takes_a_personal_access_token():
    with start_in_thread(flavour="dc", seed="demo") as dc:
        basic = connector(dc, "basic")
        with pytest.raises(JiraAuthError):
            basic.service_account()
        pat = JiraConnector(
            dc.url,
            field=FIELD,
            credential=Credential("pat", secret=Secret("JIRA_PAT", "sandbox-pat")),
        )
        assert pat.service_account().name == "impact-bot"
        import requests

        assert requests.get(f"{dc.url}/_edge/tenant_info", timeout=10).status_code == 404
