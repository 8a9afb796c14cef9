"""Webhook authentication over the raw body, and bearer tokens. Pure functions: bytes and strings
in, verdict out.

Jira signs admin webhooks that have a secret with ``X-Hub-Signature: <method>=<hex>`` (WebSub
style; today ``sha256``). Installs that cannot sign put a shared token in the URL instead.
"""

from __future__ import annotations

import hashlib
import hmac

# Methods Jira may name in the header; the docs warn it may change, so it is parsed, not assumed.
_DIGESTS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


class SignatureError(Exception):
    """The request is not authenticated; the message says why (never echoing a secret)."""


def sign(body: bytes, *, secret: str, method: str = "sha256") -> str:
    """The header value Jira would send for ``body``."""
    digest = hmac.new(secret.encode(), body, _DIGESTS[method]).hexdigest()
    return f"{method}={digest}"


def verify_signature(body: bytes, header: str | None, *, secret: str) -> None:
    """Raise ``SignatureError`` unless ``header`` is a valid signature of ``body``."""
    if not secret:
        raise SignatureError("no webhook secret is configured to check X-Hub-Signature against")
    if not header:
        raise SignatureError("missing X-Hub-Signature header")
    method, sep, given = header.strip().partition("=")
    method = method.lower()
    if not sep or not given:
        raise SignatureError("malformed X-Hub-Signature header: expected '<method>=<hex digest>'")
    if method not in _DIGESTS:
        raise SignatureError(f"unsupported X-Hub-Signature method {method[:20]!r}")
    expected = sign(body, secret=secret, method=method).partition("=")[2]
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode("ascii", "replace")):
        raise SignatureError("X-Hub-Signature does not match the body")


def verify_token(given: str | None, *, token: str) -> None:
    """Raise ``SignatureError`` unless ``given`` equals the shared webhook token."""
    if not token:
        raise SignatureError("no webhook token is configured")
    if not given:
        raise SignatureError("missing token query parameter")
    if not hmac.compare_digest(token.encode(), given.encode("utf-8", "replace")):
        raise SignatureError("webhook token does not match")


def bearer_ok(header: str | None, *, token: str | None) -> bool:
    """Whether an ``Authorization`` header is ``Bearer <token>`` (constant-time); never with no
    token configured."""
    scheme, _, given = (header or "").partition(" ")
    if not token or scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode())
