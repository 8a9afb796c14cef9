"""Who may see the admin pages: whoever holds ``ADMIN_TOKEN``.

Two ways in: an ``Authorization: Bearer <token>`` header on each request (scripts, curl), or the
login form, which sets a signed session cookie (browsers). Without either, 401.

The cookie holds a random session id signed with a key derived from the token (itsdangerous), so
every web process checks it alike, no other setting is needed, and changing ``ADMIN_TOKEN`` logs
every session out. Logging out records the session id as ended in the queue's store, which every
web process shares (``pipeline.counters``), so the old cookie is refused everywhere after it.
Failed token attempts are counted there too, per client address (``FAILED_LIMIT``).

A POST made with the cookie must carry the session's CSRF token (an HMAC of the session id); a
POST with the bearer header needs none, since a browser never adds that header by itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from webhooks.signature import bearer_ok

COOKIE = "jira_impact_admin"
COOKIE_PATH = "/admin"
SESSION_SECONDS = 12 * 3600
CSRF_FIELD = "csrf_token"
# Failed token attempts one client address may make in a window; then every attempt from it,
# the right token's too, is refused until the window (which the first failure opens) is over.
FAILED_LIMIT = 10
FAILED_WINDOW_SECONDS = 15 * 60
_KEY_PURPOSE = b"jira-customer-impact admin session v1"


@dataclass(frozen=True)
class Admin:
    """The caller, once let in."""

    via: str  # "bearer" | "session"
    csrf: str | None = None  # the token its forms carry (sessions only)


class AdminAuth:
    def __init__(self, token: str | None, *, max_age: int = SESSION_SECONDS) -> None:
        self._token = token or None
        self.max_age = max_age
        self._key = (
            hmac.new(self._token.encode(), _KEY_PURPOSE, hashlib.sha256).digest()
            if self._token
            else b""
        )

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def token_ok(self, given: str | None) -> bool:
        if not self._token or not given:
            return False
        return hmac.compare_digest(given.strip().encode(), self._token.encode())

    def bearer_ok(self, header: str | None) -> bool:
        return bearer_ok(header, token=self._token)

    # ---- sessions

    def new_session(self) -> str:
        """The cookie value for a fresh session."""
        return self._serializer().dumps({"sid": secrets.token_urlsafe(18)})

    def session_id(self, cookie: str | None) -> str | None:
        """The session id a valid, unexpired cookie holds; None otherwise."""
        if not self.enabled or not cookie:
            return None
        try:
            data = self._serializer().loads(cookie, max_age=self.max_age)
        except BadSignature:  # also SignatureExpired
            return None
        sid = data.get("sid") if isinstance(data, dict) else None
        return sid if isinstance(sid, str) and sid else None

    def csrf_token(self, sid: str) -> str:
        return hmac.new(self._key, b"csrf:" + sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, sid: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf_token(sid), str(given))

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._key, salt="admin-session")


def safe_next(target: str | None, default: str) -> str:
    """Where to go after logging in: a path inside the admin pages, never another site."""
    inside = bool(target) and str(target).startswith(COOKIE_PATH + "/")
    if inside and not any(ch in str(target) for ch in "\\\r\n"):
        return str(target)
    return default
