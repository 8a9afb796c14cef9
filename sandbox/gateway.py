"""Atlassian's side of the credentials a Jira Cloud admin hands out now, as the sandbox plays it.

- ``/_edge/tenant_info`` on the site: ``{"cloudId": …}``, without credentials.
- The API gateway, ``/ex/jira/{cloudId}/rest/…`` on the same port (``ATLASSIAN_API_URL`` points
  here): what follows the cloud id is served as the site serves it, but only to a scoped API token
  (Basic e-mail + token) or an OAuth bearer token, and only within the token's scopes: a call
  outside them answers 401 ``Unauthorized; scope does not match``, naming no scope, as the
  gateway does. A classic API token there is refused, and so is a scoped token on the site's URL.
- ``POST /oauth/token`` (``ATLASSIAN_AUTH_URL`` points here): the client credentials grant, a
  short-lived bearer token (``token_seconds``, set through the control API).

``SCOPES`` is the sandbox's own table of the scopes each API route needs, from Atlassian's specs
(``tests/test_sandbox_spec.py`` holds it to them); a route not in it (the admin webhook API)
is not offered through the gateway.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.state import Flavour
from sandbox.web import state

bp = Blueprint("gateway", __name__)

GATEWAY_PREFIX = "/ex/jira/"
SCOPE_MISMATCH = "Unauthorized; scope does not match"
ENVIRON_KEY = "sandbox.gateway"  # set on a request that came through the gateway
LOGGED = frozenset({"/_edge/tenant_info", "/oauth/token"})  # in the request log beside the API's

_V = r"/rest/api/[23]"
_AG = r"/rest/agile/1\.0"
_RW, _WW, _U = ("read:jira-work",), ("write:jira-work",), ("read:jira-user",)
_CF, _PR = ("manage:jira-configuration",), ("manage:jira-project",)
SCOPES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("GET", _V + r"/serverInfo", ()),
    ("GET", _V + r"/myself", _U),
    ("GET", _V + r"/user", _U),
    ("GET", _V + r"/user/groups", _U),
    ("GET", _V + r"/field", _RW),
    ("POST", _V + r"/field", _CF),
    ("GET", _V + r"/priority", _RW),
    ("GET", _V + r"/mypermissions", _RW),
    ("POST", _V + r"/issue", _WW),
    ("GET", _V + r"/issue/[^/]+", _RW),
    ("PUT", _V + r"/issue/[^/]+", _WW),
    ("GET", _V + r"/issue/[^/]+/editmeta", _RW),
    ("GET", _V + r"/issue/[^/]+/comment", _RW),
    ("POST", _V + r"/issue/[^/]+/comment", _WW),
    ("GET", _V + r"/issue/[^/]+/properties/[^/]+", _RW),
    ("PUT", _V + r"/issue/[^/]+/properties/[^/]+", _WW),
    ("GET", _V + r"/filter/[^/]+", _RW),
    ("PUT", _V + r"/filter/[^/]+", _WW),
    ("GET", _V + r"/project/[^/]+", _RW),
    ("GET", _V + r"/issue/createmeta/[^/]+/issuetypes(/[^/]+)?", _RW),
    ("GET", _V + r"/field/[^/]+/context(/projectmapping|/[^/]+/option)?", _CF),
    ("POST", _V + r"/field/[^/]+/context(/[^/]+/option)?", _CF),
    ("PUT", _V + r"/field/[^/]+/context/[^/]+/project", _CF),
    ("GET", _V + r"/issuetypescreenscheme/(project|mapping)", _CF),
    ("GET", _V + r"/screenscheme", _PR),
    ("GET", _V + r"/screens(/[^/]+/tabs(/[^/]+/fields)?)?", _PR),
    ("POST", _V + r"/screens/[^/]+/tabs/[^/]+/fields", _PR),
    ("GET", _V + r"/search(/jql)?", _RW),
    ("POST", _V + r"/search(/jql)?", _RW),
    ("GET", _AG + r"/board", ("read:board-scope:jira-software", "read:project:jira")),
    ("GET", _AG + r"/board/[^/]+", ("read:board-scope:jira-software", "read:issue-details:jira")),
    (
        "GET",
        _AG + r"/board/[^/]+/configuration",
        ("read:board-scope.admin:jira-software", "read:project:jira"),
    ),
    (
        "GET",
        _AG + r"/board/[^/]+/issue",
        ("read:board-scope:jira-software", "read:issue-details:jira"),
    ),
    ("PUT", _AG + r"/issue/rank", ("write:issue:jira-software",)),
)
_COMPILED = [(method, re.compile(path), scopes) for method, path, scopes in SCOPES]


def scopes_needed(method: str, path: str) -> tuple[str, ...] | None:
    """The scopes a route needs through the gateway; None when the gateway does not offer it."""
    for wanted, pattern, scopes in _COMPILED:
        if wanted == method and pattern.fullmatch(path):
            return scopes
    return None


class GatewayMiddleware:
    """Serves ``/ex/jira/{cloudId}/…`` as the site serves ``/…``, the request marked as come
    through the gateway; another cloud id is a 404, as for a site that does not exist."""

    def __init__(self, app: Any, jira: Any) -> None:
        self.app = app
        self.jira = jira

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(GATEWAY_PREFIX):
            cloud_id, _, rest = path[len(GATEWAY_PREFIX) :].partition("/")
            if self.jira.flavour is not Flavour.CLOUD or cloud_id != self.jira.cloud_id:
                start_response("404 NOT FOUND", [("Content-Type", "application/json")])
                return [b'{"errorMessages":["Site not found"],"errors":{}}']
            environ["PATH_INFO"] = "/" + rest
            environ[ENVIRON_KEY] = True
        return self.app(environ, start_response)


def via_gateway() -> bool:
    return bool(request.environ.get(ENVIRON_KEY))


def scope_refusal() -> Response:
    response = jsonify({"code": 401, "message": SCOPE_MISMATCH})
    response.status_code = 401
    return response


@bp.get("/_edge/tenant_info")
def tenant_info() -> Any:
    s = state()
    if s.flavour is not Flavour.CLOUD:
        return jsonify({"errorMessages": ["Not found"], "errors": {}}), 404
    return jsonify({"cloudId": s.cloud_id})


@bp.post("/oauth/token")
def oauth_token() -> Any:
    """The client credentials grant (form or JSON body; the client's id and secret in it or as
    Basic auth); OAuth's error shape when refused."""
    form: dict[str, Any] = dict(request.form) or dict(request.get_json(silent=True) or {})
    client_id, secret = form.get("client_id"), form.get("client_secret")
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic" and not client_id:
        try:
            client_id, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            client_id = secret = None
    if form.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "only client_credentials is offered")
    s = state()
    with s.lock:
        account = s.authenticate_client(str(client_id or ""), str(secret or ""))
        if account is None:
            return _oauth_error(401, "access_denied", "Unauthorized")
        token = "sbx-oauth-" + secrets.token_hex(12)
        s.issue_oauth_token(token, account)
        seconds = s.token_seconds
    return jsonify(
        {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(seconds),
            "scope": " ".join(sorted(account.scopes)),
        }
    )


def _oauth_error(status: int, error: str, description: str) -> Any:
    return jsonify({"error": error, "error_description": description}), status
