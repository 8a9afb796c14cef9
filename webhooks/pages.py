"""What the server-rendered pages (``/admin/``, ``/priorities``) share: the way in, the headers
every page gets, and the process's Jira connector.

A ``Door`` is one set of pages behind tokens (``webhooks.admin.auth.TokenAuth``): a bearer
header, or a session cookie set by the login form, scoped to the pages' path and signed for them
alone, so a session of one door opens no other. Failed token attempts are counted per client
address, and logged-out sessions recorded, in the queue's store that every web process shares
(``pipeline.counters``); the count is one for every door, since the admin token opens both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, redirect, request
from flask.typing import ResponseReturnValue
from markupsafe import escape

from impact.model import ImpactConfig
from pipeline.calls import account_calls
from pipeline.counters import Counts, LocalCounts
from service.errors import short_error
from service.logs import REDACTED
from service.settings import Settings
from webhooks.admin.auth import (
    CSRF_FIELD,
    FAILED_LIMIT,
    FAILED_WINDOW_SECONDS,
    Admin,
    TokenAuth,
    safe_next,
)
from webhooks.health import delivery_stores

log = logging.getLogger(__name__)

LoginPage = Callable[[int, str | None], ResponseReturnValue]  # (status, problem)
MessagePage = Callable[[int, str, str], tuple[str, int]]  # (status, title, message)


@dataclass(frozen=True)
class Door:
    name: str  # "admin": its log lines start with it
    auth: TokenAuth
    cookie: str
    path: str  # the cookie's path: the pages it opens
    tokens_named: str  # "the admin token", for messages


def settings() -> Settings:
    found: Settings = current_app.extensions["impact.settings"]
    return found


def config() -> ImpactConfig:
    found: ImpactConfig = current_app.extensions["impact.config"]
    return found


def counts() -> Counts:
    """Where logged-out sessions and failed attempts are counted: the queue's store, shared by
    every web process (``pipeline.counters``); one process's memory only where there is no
    queue (an app that triages inline: the web layer's tests)."""
    found: Counts | None = current_app.extensions.get("impact.counts")
    if found is None:
        _log, queue = delivery_stores(current_app)
        found = queue.huey.storage if queue is not None else LocalCounts()
        current_app.extensions["impact.counts"] = found
    return found


def client() -> str:
    """The caller's address (the proxies' X-Forwarded-For only with TRUSTED_PROXIES set)."""
    return request.remote_addr or "unknown"


def _failures_key() -> str:
    return f"admin.failed.{client()}"


def throttled(door: Door, message_page: MessagePage) -> ResponseReturnValue | None:
    """A 429 page while this client address has used up its failed attempts, else None."""
    try:
        failed = counts().count(_failures_key())
    except Exception as exc:  # the store is down: the token check still stands alone
        log.warning("%s: failed attempts could not be read: %s", door.name, short_error(exc))
        return None
    if failed < FAILED_LIMIT:
        return None
    log.warning(
        "%s: %s %s refused: client %s is throttled", door.name, request.method, request.path,
        client(),
    )  # fmt: skip
    page, status = message_page(
        429,
        "Too many attempts",
        f"{failed} attempts with a wrong token came from your address. Try again in "
        f"{FAILED_WINDOW_SECONDS // 60} minutes.",
    )
    return page, status, {"Retry-After": str(FAILED_WINDOW_SECONDS)}


def count_failure(door: Door, what: str) -> None:
    try:
        failed = counts().count_up(_failures_key(), ttl=FAILED_WINDOW_SECONDS)
    except Exception as exc:
        log.warning("%s: a failed attempt could not be counted: %s", door.name, short_error(exc))
        failed = 0
    log.warning(
        "%s: %s refused (client %s, failed attempt %d of %d in %d minutes)",
        door.name,
        what,
        client(),
        failed,
        FAILED_LIMIT,
        FAILED_WINDOW_SECONDS // 60,
    )


def session_ended(door: Door, sid: str) -> bool:
    """Whether the session was logged out; True too when the store cannot say (fail closed:
    the bearer header still works)."""
    try:
        return counts().count(f"admin.logout.{sid}") > 0
    except Exception as exc:
        log.warning("%s: sessions cannot be checked: %s", door.name, short_error(exc))
        return True


def let_in(
    door: Door, *, login_page: LoginPage, message_page: MessagePage
) -> tuple[Admin | None, ResponseReturnValue | None]:
    """(who came in, None), or (None, the page that refuses them)."""
    auth = door.auth
    if not auth.enabled:
        return None, login_page(401, None)
    header = request.headers.get("Authorization")
    if header is not None:
        if (refused := throttled(door, message_page)) is not None:
            return None, refused
        if auth.bearer_ok(header):
            return Admin("bearer"), None
        count_failure(door, "an Authorization header with a wrong token was")
        return None, login_page(401, f"The Authorization header does not hold {door.tokens_named}.")
    sid = auth.session_id(request.cookies.get(door.cookie))
    if sid is None or session_ended(door, sid):
        return None, login_page(401, None)
    if request.method not in ("GET", "HEAD") and not auth.csrf_ok(
        sid, request.form.get(CSRF_FIELD)
    ):
        log.warning(
            "%s: %s %s refused: no valid CSRF token", door.name, request.method, request.path
        )
        return None, message_page(
            403,
            "Refused",
            "This form was not sent from this page (its CSRF token is missing or stale). Go "
            "back, reload the page and try again.",
        )
    return Admin("session", auth.csrf_token(sid)), None


def log_in(
    door: Door, *, home: str, login_page: LoginPage, message_page: MessagePage
) -> ResponseReturnValue:
    """The login form's POST: a session cookie and back to where the visitor was going."""
    auth = door.auth
    if not auth.enabled:
        return login_page(401, None)
    if (refused := throttled(door, message_page)) is not None:
        return refused
    if not auth.token_ok(request.form.get("token")):
        count_failure(door, "a login with a wrong token was")
        return login_page(401, f"That is not {door.tokens_named}.")
    response = redirect(safe_next(request.form.get("next"), home, door.path), 303)
    response.set_cookie(
        door.cookie,
        auth.new_session(),
        max_age=auth.max_age,
        path=door.path,
        secure=settings().admin_cookie_secure or _over_https(),
        httponly=True,
        samesite="Strict",
    )
    log.info("%s: logged in through the form (client %s)", door.name, client())
    return response


def _over_https() -> bool:
    """Behind a platform's router TLS ends before the app: its X-Forwarded-Proto says https.
    (Only used to mark the cookie Secure, which a false claim cannot turn to harm; where the
    proxy sends no such header, ADMIN_COOKIE_SECURE=1 marks it always.)"""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.is_secure or forwarded == "https"


def log_out(door: Door, *, then: str) -> ResponseReturnValue:
    sid = door.auth.session_id(request.cookies.get(door.cookie))
    if sid is not None:  # ended for every web process, not just in this browser
        counts().count_up(f"admin.logout.{sid}", ttl=door.auth.max_age)
        log.info("%s: logged out (client %s)", door.name, client())
    response = redirect(then, 303)
    response.delete_cookie(door.cookie, path=door.path, httponly=True, samesite="Strict")
    return response


def login_target() -> str:
    """Where the login form sends the visitor afterwards: the page asked for (GET), or what
    the form carried."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    return request.form.get("next") or ""


def content_policy(style_nonce: str | None = None) -> str:
    """The pages' Content Security Policy: no script at all, styles from this site (and the
    one element carrying ``style_nonce``, an inline chart's)."""
    styles = "'self'" + (f" 'nonce-{style_nonce}'" if style_nonce else "")
    return (
        f"default-src 'none'; style-src {styles}; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


def harden(response: Response, *, csp: str, realm: str) -> Response:
    """The headers every page gets, and the last guard: no secret leaves in a page."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = csp
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = f'Bearer realm="{realm}"'
    if response.mimetype in ("text/html", "application/json", "text/csv") and not (
        response.direct_passthrough
    ):
        page = response.get_data(as_text=True)
        clean = redact_page(page, settings().secrets())
        if clean != page:
            response.set_data(clean)
    return response


def redact_page(page: str, secrets: Sequence[str]) -> str:
    """No secret leaves in a page, raw or HTML-escaped."""
    for secret in sorted(secrets, key=len, reverse=True):
        for form in {secret, str(escape(secret))}:
            page = page.replace(form, REDACTED)
    return page


@contextmanager
def page_jira() -> Iterator[Any]:
    """The Jira client of the pages, one page at a time per process, its calls accounted for
    once the page is done. One connector per process, so that serverInfo, the field list and
    board configurations are looked up once, not on every page view; gevent's workers serve
    pages side by side, and a connector (its session, its record of calls) is not for two."""
    factory: Callable[[], Any] | None = current_app.extensions.get("impact.admin.jira")
    lock = current_app.extensions.setdefault("impact.admin.jira_lock", threading.Lock())
    with lock:
        jira = (
            factory()
            if factory is not None
            else current_app.extensions.get("impact.admin.connector")
        )
        if jira is None:
            from connector.client import JiraConnector

            jira = JiraConnector.from_settings(settings(), field=config().field)
            current_app.extensions["impact.admin.connector"] = jira
        try:
            yield jira
        finally:
            account_calls(jira)
