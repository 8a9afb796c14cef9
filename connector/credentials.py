"""How the product signs in to Jira: one ``Credential`` per process, of the kind ``JIRA_AUTH``
names, shared by every connector (and thread) of the process.

- ``basic``: an account's e-mail and API token, Basic auth, on the site's URL (``JIRA_URL``).
- ``scoped``: a service account's e-mail and *scoped* API token, Basic auth, through Atlassian's
  API gateway, ``{ATLASSIAN_API_URL}/ex/jira/{cloudId}`` (the site's URL refuses such a token).
- ``oauth``: a service account's OAuth 2.0 client credentials, exchanged at
  ``{ATLASSIAN_AUTH_URL}/oauth/token`` for a short-lived bearer token, used on the gateway. The
  token is kept until shortly before it expires (``EXPIRY_MARGIN``), and fetched again after a
  401. oauthlib (a dependency of the ``jira`` library) writes the token request and reads the
  answer, its errors included; requests sends it.
- ``pat``: a Data Center personal access token, as a bearer, on the site's URL.

The gateway's cloud id is read once from ``{JIRA_URL}/_edge/tenant_info``. ``JIRA_URL`` stays
the site's address for everything shown to people (links) and for the webhook's target.

A secret given as a file (``JIRA_API_TOKEN_FILE``, …) is read again when Jira refuses it
(``refused``): a token rotated in the file is used without a restart.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from oauthlib.oauth2 import BackendApplicationClient, OAuth2Error

from connector.errors import JiraAuthError, JiraError, JiraUnavailableError

log = logging.getLogger(__name__)

KINDS = ("basic", "scoped", "oauth", "pat")
GATEWAY_KINDS = frozenset({"scoped", "oauth"})
TENANT_INFO = "/_edge/tenant_info"
TOKEN_PATH = "/oauth/token"
EXPIRY_MARGIN = 60.0  # seconds before its expiry an OAuth token is fetched again (at most)
TOKEN_TIMEOUT = 10.0
DESCRIBED = {
    "basic": "an API token",
    "scoped": "a scoped API token, through the API gateway",
    "oauth": "OAuth 2.0 client credentials, through the API gateway",
    "pat": "a personal access token",
}


class CredentialSettings(Protocol):
    """What a credential is made from (``service.settings.Settings``)."""

    @property
    def jira_url(self) -> str: ...
    @property
    def jira_auth(self) -> str: ...
    @property
    def jira_email(self) -> str | None: ...
    @property
    def jira_api_token(self) -> str | None: ...
    @property
    def jira_pat(self) -> str | None: ...
    @property
    def jira_client_id(self) -> str | None: ...
    @property
    def jira_client_secret(self) -> str | None: ...
    @property
    def atlassian_api_url(self) -> str: ...
    @property
    def atlassian_auth_url(self) -> str: ...
    @property
    def secret_files(self) -> Mapping[str, str]: ...


class Secret:
    """A secret setting's value; one given as a file is read again by ``reread``."""

    def __init__(self, name: str, value: str, path: str | None = None) -> None:
        self.name = name
        self.path = path
        self._value = value
        self._lock = threading.Lock()

    def get(self) -> str:
        return self._value

    def reread(self) -> bool:
        """Read the file again (when there is one); whether the value changed. A file that
        cannot be read, or is empty, leaves the value as it was (a rotation half done)."""
        if self.path is None:
            return False
        try:
            with open(self.path, encoding="utf-8") as f:
                value = f.read().strip()
        except OSError as exc:
            log.warning("%s_FILE cannot be read: %s", self.name, exc.strerror or exc)
            return False
        with self._lock:
            changed = bool(value) and value != self._value
            if changed:
                self._value = value
        if changed:
            log.warning("%s: a new value was read from %s_FILE", self.name, self.name)
        return changed


@dataclass
class _Token:
    value: str
    expires_at: float  # time.time() seconds; inf when the answer gave no lifetime
    lifetime: float


class Credential:
    """The service account's credential, of one ``kind`` (see the module's docstring)."""

    def __init__(
        self,
        kind: str,
        *,
        email: str | None = None,
        secret: Secret | None = None,
        client_id: str | None = None,
        api_url: str = "https://api.atlassian.com",
        auth_url: str = "https://auth.atlassian.com",
        cloud_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"no such kind of credential: {kind!r}")
        if secret is None or (kind in ("basic", "scoped") and not email):
            raise ValueError(f"a {kind} credential needs its secret (and e-mail)")
        if kind == "oauth" and not client_id:
            raise ValueError("an oauth credential needs its client id")
        self.kind = kind
        self.email = email
        self.secret = secret
        self.client_id = client_id
        self.api_url = api_url.rstrip("/")
        self.auth_url = auth_url.rstrip("/")
        self.clock = clock
        self._cloud_id = cloud_id
        self._token: _Token | None = None
        self._lock = threading.Lock()
        self._http = requests.Session()  # the token endpoint's (not Jira's)

    @classmethod
    def from_settings(cls, settings: CredentialSettings) -> Credential:
        kind = settings.jira_auth
        files = settings.secret_files
        name, value = {
            "basic": ("JIRA_API_TOKEN", settings.jira_api_token),
            "scoped": ("JIRA_API_TOKEN", settings.jira_api_token),
            "oauth": ("JIRA_CLIENT_SECRET", settings.jira_client_secret),
            "pat": ("JIRA_PAT", settings.jira_pat),
        }[kind]
        return cls(
            kind,
            email=settings.jira_email,
            secret=Secret(name, value or "", files.get(name)),
            client_id=settings.jira_client_id,
            api_url=settings.atlassian_api_url,
            auth_url=settings.atlassian_auth_url,
        )

    def __repr__(self) -> str:
        return f"Credential(kind={self.kind!r})"

    @property
    def gateway(self) -> bool:
        """Whether calls go through the API gateway rather than to the site."""
        return self.kind in GATEWAY_KINDS

    def describe(self) -> str:
        """``a scoped API token, through the API gateway`` (for check and setup)."""
        return DESCRIBED[self.kind]

    # ---- where calls go

    def base_url(self, site: str, tenant_info: Callable[[str], Any]) -> str:
        """The base of REST calls: the site, or the gateway with the site's cloud id, read on
        first use with ``tenant_info(url)`` (the parsed answer of a GET without credentials)."""
        if not self.gateway:
            return site.rstrip("/")
        if self._cloud_id is None:
            answer = tenant_info(site.rstrip("/") + TENANT_INFO)
            found = answer.get("cloudId") if isinstance(answer, Mapping) else None
            if not isinstance(found, str) or not found.strip() or "/" in found:
                raise JiraError(
                    "the site's tenant_info gave no cloud id: is JIRA_URL a Jira Cloud site?",
                    method="GET",
                    path=TENANT_INFO,
                )
            self._cloud_id = found.strip()
        return f"{self.api_url}/ex/jira/{self._cloud_id}"

    @property
    def cloud_id(self) -> str | None:
        return self._cloud_id

    # ---- what each request carries

    def header(self) -> str:
        """The ``Authorization`` header's value for a request sent now."""
        if self.kind in ("basic", "scoped"):
            pair = f"{self.email}:{self.secret.get()}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        if self.kind == "pat":
            return "Bearer " + self.secret.get()
        return "Bearer " + self._bearer()

    def refused(self, sent: str | None) -> bool:
        """Jira answered 401 to a request carrying ``sent`` (its Authorization header): read
        the secret's file again and, for OAuth, let go of the token. Whether another try may
        be answered otherwise (the credential is not the one refused)."""
        changed = self.secret.reread()
        if self.kind == "oauth":
            with self._lock:
                token = self._token
                if token is not None and sent == "Bearer " + token.value:
                    self._token = None  # the next request fetches a new one
                    changed = True
                else:  # another thread has let go of it, or fetched a newer one, already
                    changed = True
        elif sent is not None and sent != self.header():
            changed = True  # another thread has read the file already
        return changed

    def renew(self) -> None:
        """Read the secret's file again and, for OAuth, let go of the token: the next request
        carries the credential as it is now (the probe of a refused credential)."""
        self.secret.reread()
        with self._lock:
            self._token = None

    def _bearer(self) -> str:
        """The OAuth access token: the one kept, unless it expires within the margin."""
        with self._lock:
            token = self._token
            if token is not None and self.clock() < token.expires_at - self._margin(token):
                return token.value
            token = self._token = self._fetch_token()
            return token.value

    @staticmethod
    def _margin(token: _Token) -> float:
        return min(EXPIRY_MARGIN, token.lifetime / 10)

    def _fetch_token(self) -> _Token:
        """A new access token from the token endpoint (client credentials grant)."""
        assert self.client_id is not None
        client = BackendApplicationClient(client_id=self.client_id)
        body = client.prepare_request_body(include_client_id=True, client_secret=self.secret.get())
        url = self.auth_url + TOKEN_PATH
        try:
            response = self._http.post(
                url,
                data=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
                timeout=TOKEN_TIMEOUT,
            )
        except requests.RequestException as exc:
            raise JiraUnavailableError(
                f"no answer from the OAuth token endpoint ({type(exc).__name__})",
                method="POST",
                path=TOKEN_PATH,
            ) from exc
        try:
            token = client.parse_request_body_response(response.text)
        except OAuth2Error as exc:
            said = f"the token endpoint refused the client credentials: {exc.error}"
            if exc.description:
                said += f" ({exc.description})"
            if response.status_code >= 500:
                raise JiraUnavailableError(said, method="POST", path=TOKEN_PATH) from exc
            raise JiraAuthError(
                said, status=401, method="POST", path=TOKEN_PATH, messages=(str(exc.error),)
            ) from exc
        except ValueError as exc:  # not JSON
            raise JiraUnavailableError(
                f"the token endpoint answered {response.status_code} without a token",
                method="POST",
                path=TOKEN_PATH,
            ) from exc
        lifetime = float(token.get("expires_in") or 0) or float("inf")
        expires_at = self.clock() + lifetime  # from when the answer came, on our clock
        log.info("fetched an OAuth access token for the service account (%.0f s)", lifetime)
        return _Token(str(token["access_token"]), expires_at, lifetime)


_made: dict[tuple[Any, ...], Credential] = {}
_made_lock = threading.Lock()


def credential_for(settings: CredentialSettings) -> Credential:
    """The process's credential for these settings: made once, so that every connector and
    thread shares its OAuth token, its cloud id and what it read again from a file."""
    key = (
        settings.jira_url,
        settings.jira_auth,
        settings.jira_email,
        settings.jira_api_token,
        settings.jira_pat,
        settings.jira_client_id,
        settings.jira_client_secret,
        settings.atlassian_api_url,
        settings.atlassian_auth_url,
        tuple(sorted(settings.secret_files.items())),
    )
    with _made_lock:
        found = _made.get(key)
        if found is None:
            found = _made[key] = Credential.from_settings(settings)
        return found
