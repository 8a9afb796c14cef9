"""The sandbox's WSGI app and server: auth, limits, faults and the request log around its views.

``create_app(state)`` builds the Flask app; ``make_server`` binds it on loopback with werkzeug's
threaded server; ``start_in_thread`` runs one in a background thread (for tests and the demo).
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server as werkzeug_server

from sandbox import (
    agile,
    control,
    field_admin,
    gateway,
    jira_webhooks,
    meta,
    platform,
    search,
    web,
    webhook_admin,
)
from sandbox.faults import Outage
from sandbox.hooks import HookDispatcher
from sandbox.limits import Refusal
from sandbox.seed import SandboxState
from sandbox.state import Account, Flavour, JiraApiError, JiraState

NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."


def create_app(state: JiraState, dispatcher: HookDispatcher | None = None) -> Flask:
    app = Flask("sandbox")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["sandbox"] = state
    app.extensions["sandbox.hooks"] = dispatcher
    blueprints = (
        platform,
        meta,
        field_admin,
        search,
        agile,
        webhook_admin,
        jira_webhooks,
        control,
        gateway,
    )
    for module in blueprints:
        app.register_blueprint(module.bp)
    app.wsgi_app = gateway.GatewayMiddleware(app.wsgi_app, state)  # type: ignore[method-assign]
    app.before_request(_before)
    app.after_request(_after)
    app.register_error_handler(JiraApiError, _jira_error)
    app.register_error_handler(HTTPException, _http_error)
    return app


def _is_api(path: str) -> bool:
    return path.startswith("/rest/")


def _before() -> Response | None:
    g.started = time.monotonic()
    g.account = None
    if not _is_api(request.path):
        return None
    state = web.state()
    # Who calls is known first, so the request log says whose calls a limit refused (Jira counts
    # its limits per account); a fault still answers in place of whatever would come next.
    account = _authenticate(state)
    outage = state.faults.outage()
    if outage is not None:  # the whole site: before its limits, as a load balancer answers
        return _down(state, outage, account)
    refusal = state.limits.admit(request.method, request.path)
    if refusal is not None:
        g.account = account
        return _rate_limited(refusal)
    if state.limits.latency:
        time.sleep(state.limits.latency)
    fault = state.faults.take(request.method, request.path)
    if fault is not None:
        if fault.delay_ms:
            time.sleep(fault.delay_ms / 1000)
        if fault.answer is not None:
            g.account = account
            return jsonify(fault.answer)
        if fault.status is not None:
            response = jsonify(fault.body())
            response.status_code = fault.status
            response.headers.update(fault.headers())
            return response
    if account is None:
        if gateway.via_gateway():  # a token it does not know (expired, revoked, a classic one)
            return _gateway_refusal()
        response = jsonify({"errorMessages": [NOT_AUTHENTICATED], "errors": {}})
        response.status_code = 401
        scheme = "Basic" if state.flavour is Flavour.CLOUD else "Bearer"
        response.headers["WWW-Authenticate"] = f'{scheme} realm="protected-area"'
        return response
    g.account = account
    if gateway.via_gateway():
        needed = gateway.scopes_needed(request.method, request.path)
        if needed is None or not set(needed) <= account.scopes:
            return gateway.scope_refusal()
    return None


def _gateway_refusal() -> Response:
    response = jsonify({"code": 401, "message": "Unauthorized"})
    response.status_code = 401
    return response


def _down(state: JiraState, outage: Outage, account: Account | None) -> Response:
    """The outage's answer: its status (and Retry-After), or with mode ``down`` no answer at
    all (the connection is reset; the call log shows it with status 0)."""
    g.account = account
    if outage.status is not None:
        response = jsonify(outage.body())
        response.status_code = outage.status
        response.headers.update(outage.headers())
        return response
    g.dropped = True
    connection = request.environ.get("werkzeug.socket")
    if connection is not None:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.shutdown(socket.SHUT_RDWR)  # closed with a reset: the client gets no answer

    def dropped() -> Iterator[bytes]:
        raise ConnectionAbortedError("the sandbox is down")  # werkzeug lets it go quietly
        yield b""  # pragma: no cover

    return Response(dropped())


def _rate_limited(refusal: Refusal) -> Response:
    """A 429 shaped as Jira Cloud's rate limiter sends it."""
    reset = datetime.now(UTC) + timedelta(seconds=refusal.retry_after)
    response = jsonify({"errorMessages": ["Rate limit exceeded."], "errors": {}})
    response.status_code = 429
    response.headers.update(
        {
            "Retry-After": str(refusal.retry_after),
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%MZ"),
            "RateLimit-Reason": refusal.reason,
        }
    )
    return response


def _authenticate(state: JiraState) -> Account | None:
    """On the site: Basic e-mail + classic API token on Cloud, Bearer PAT on Data Center (Basic
    is off, as from Jira 11). Through the gateway: Basic e-mail + scoped token, or an OAuth
    bearer token (``sandbox.gateway``). Nothing else."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    with state.lock:
        if gateway.via_gateway():
            if scheme.lower() == "bearer":
                return state.authenticate_oauth(credentials.strip())
            if scheme.lower() != "basic":
                return None
            try:
                user, _, secret = (
                    base64.b64decode(credentials, validate=True).decode().partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                return None
            return state.authenticate_scoped(user, secret)
        if state.flavour is Flavour.CLOUD and scheme.lower() == "basic":
            try:
                user, _, secret = (
                    base64.b64decode(credentials, validate=True).decode().partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                return None
            return state.authenticate_basic(user, secret)
        if state.flavour is Flavour.DC and scheme.lower() == "bearer":
            return state.authenticate_bearer(credentials.strip())
    return None


def _after(response: Response) -> Response:
    if _is_api(request.path) or request.path in gateway.LOGGED:
        account: Account | None = g.get("account")
        for name, value in web.state().limits.headers().items():
            response.headers.setdefault(name, value)
        web.state().record_call(
            {
                "method": request.method,
                "path": request.path,
                "query": {k: v if len(v) > 1 else v[0] for k, v in request.args.lists()},
                "status": 0 if g.get("dropped") else response.status_code,
                "json": request.get_json(silent=True, force=True) if request.get_data() else None,
                "user": account.name if account else None,
                "ms": round((time.monotonic() - g.get("started", time.monotonic())) * 1000, 1),
                "at": round(time.time(), 3),  # when it was answered, epoch seconds
                **({"gateway": True} if gateway.via_gateway() else {}),
            }
        )
    return response


def _jira_error(error: JiraApiError) -> Response:
    response = jsonify(error.body())
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _http_error(error: HTTPException) -> Response:
    response = jsonify({"errorMessages": [error.description or error.name], "errors": {}})
    response.status_code = error.code or 500
    return response


# ---------------------------------------------------------------- serving


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def make_server(
    state: JiraState,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    dispatcher: HookDispatcher | None = None,
) -> BaseWSGIServer:
    """Bind the sandbox on a loopback ``host``; the state's base URL becomes the bound address."""
    if not is_loopback_host(host):
        raise ValueError(f"the sandbox serves on loopback only, not {host!r}")
    dispatcher = dispatcher or HookDispatcher()
    app = create_app(state, dispatcher)
    server = werkzeug_server(host, port, app, threaded=True)
    shown = f"[{host}]" if ":" in host else host
    state.set_base_url(f"http://{shown}:{server.server_port}")
    dispatcher.attach(state).start()
    return server


@dataclass
class RunningSandbox:
    url: str
    state: JiraState
    dispatcher: HookDispatcher
    server: BaseWSGIServer
    thread: threading.Thread

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(10)
        self.server.server_close()
        self.dispatcher.close()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def start_in_thread(
    *,
    flavour: Flavour | str = Flavour.CLOUD,
    seed: str = "demo",
    with_field: bool = True,
    host: str = "127.0.0.1",
    port: int = 0,
    dispatcher: HookDispatcher | None = None,
    version: str | None = None,
) -> RunningSandbox:
    """A sandbox serving from a daemon thread; ``close()`` it when done. ``with_field=False``
    starts it without the impact field, as a Jira the product has not been set up on;
    ``version`` (Data Center) the Jira version it plays, e.g. "10.3.6"."""
    state = SandboxState(flavour=flavour, seed=seed, with_field=with_field, version=version)
    dispatcher = dispatcher or HookDispatcher()
    server = make_server(state, host=host, port=port, dispatcher=dispatcher)
    serve = functools.partial(server.serve_forever, poll_interval=0.05)  # quick shutdown
    thread = threading.Thread(target=serve, name="sandbox-http", daemon=True)
    thread.start()
    return RunningSandbox(state.base_url, state, dispatcher, server, thread)
