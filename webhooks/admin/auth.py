"""Who may see the admin pages: whoever holds ``ADMIN_TOKEN``. (``TokenAuth`` is the same for any
set of tokens: the priorities pages let in ``VIEWER_TOKEN`` or ``ADMIN_TOKEN`` with it.)

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
from collections.abc import Sequence
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


class TokenAuth:
    """Lets in whoever holds one of ``tokens``; its sessions are signed with a key derived from
    all of them and ``purpose``, so a session of one set of pages opens no other, and changing
    a token ends every session."""

    def __init__(
        self, tokens: Sequence[str | None], *, purpose: bytes, max_age: int = SESSION_SECONDS
    ) -> None:
        self._tokens = tuple(t for t in tokens if t)
        self.max_age = max_age
        material = b"\0".join(t.encode() for t in self._tokens)
        self._key = hmac.new(material, purpose, hashlib.sha256).digest() if material else b""

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def token_ok(self, given: str | None) -> bool:
        if not given:
            return False
        sent = given.strip().encode()
        return any([hmac.compare_digest(sent, t.encode()) for t in self._tokens])

    def bearer_ok(self, header: str | None) -> bool:
        return any([bearer_ok(header, token=t) for t in self._tokens])

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
        # the key is of this set of pages already; the salt is the one admin sessions had
        return URLSafeTimedSerializer(self._key, salt="admin-session")


class AdminAuth(TokenAuth):
    def __init__(self, token: str | None, *, max_age: int = SESSION_SECONDS) -> None:
        super().__init__((token,), purpose=_KEY_PURPOSE, max_age=max_age)


def safe_next(target: str | None, default: str, inside_of: str = COOKIE_PATH) -> str:
    """Where to go after logging in: a path inside the pages (``inside_of``), never another
    site."""
    text = str(target or "")
    inside = text == inside_of or text.startswith((inside_of + "/", inside_of + "?"))
    if inside and not any(ch in text for ch in "\\\r\n"):
        return text
    return default
