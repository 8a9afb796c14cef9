"""``JiraConnector``: the product's one way to Jira, built on the pycontribs ``jira`` library.

The library's ``ResilientSession`` would retry 429 and 503 by sleeping, so the client is built
with ``max_retries=0``: every failure surfaces at once as a ``connector.errors.JiraError``. Calls
keep to the process's ``connector.pace.Pace`` (calls in flight, calls a second); a 429 is sent
again after Jira's ``Retry-After``, up to ``RATE_LIMIT_TRIES`` times and ``RATE_LIMIT_WAIT``
seconds in all (every thread would wait as long anyway), then raised for the queue to retry later.
Inside ``time_limit`` neither the wait for a turn nor a ``Retry-After`` outlasts the limit: the
call raises at once (a job ends before its lock expires; a page answers in time).

With a ``connector.breaker.SiteBreaker``, nothing is sent while the site is held (a call raises
``JiraHeldError`` unsent), and every call's outcome tells the breaker whether the site answered;
``probe`` is the one call that goes while it is held.

Every HTTP request is recorded as a ``Call`` (a response hook on the library's session, plus the
requests that got no answer) so the delivery log can say what was sent for each issue.

The field list (``GET /field``) is kept for ``FIELDS_TTL_SECONDS``, and read again after
``MISSING_FIELD_RETRY_SECONDS`` while the impact field is not in it: a field that an admin (or
``jira-impact setup``) creates is seen by running processes within a minute, with no restart.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import orjson
import requests
from jira import JIRA, JIRAError

from connector.boards import BoardsMixin
from connector.breaker import SiteBreaker
from connector.credentials import (
    TENANT_INFO,
    TOKEN_PATH,
    Credential,
    CredentialSettings,
    Secret,
    credential_for,
)
from connector.edits import edit_body, edit_params
from connector.errors import (
    JiraAnswerError,
    JiraAuthError,
    JiraBadRequestError,
    JiraConflictError,
    JiraError,
    JiraForbiddenError,
    JiraNotFoundError,
    JiraRateLimitError,
    JiraServerError,
    JiraUnavailableError,
)
from connector.pace import NoTurnError, Pace
from connector.protocol import API, Call
from connector.search import SearchMixin
from impact.decide import ASK_MARKER
from impact.keys import is_issue_ref
from impact.model import FieldRef, Person, Plan

log = logging.getLogger(__name__)

FIELDS_TTL_SECONDS = 60.0
MISSING_FIELD_RETRY_SECONDS = 10.0
_TEXT_KEPT = 200  # characters of a non-JSON error body kept as Jira's message
RATE_LIMIT_TRIES = 5  # sends of one call that Jira answers 429 before the error is raised
RATE_LIMIT_WAIT = 60.0  # the longest a call waits in all for Jira's rate limits
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Pure helpers: what Jira said, and which field is the impact field


@dataclass(frozen=True)
class ImpactField:
    id: str
    multi_select: bool = False


def find_field(fields: Sequence[Mapping[str, Any]], ref: FieldRef) -> ImpactField | None:
    """The field ``ref`` names among ``GET /field``'s answer, or ``None`` when there is none.

    A name shared by several fields prefers the custom ones; if that still leaves more than one,
    the admin has to give the id, so this raises a ``JiraError`` naming the candidates."""
    if ref.id:
        found = [f for f in fields if f.get("id") == ref.id]
    elif ref.name:
        found = [f for f in fields if f.get("name") == ref.name]
        if len(found) > 1:
            found = [f for f in found if f.get("custom") is True] or found
    else:
        return None
    if not found:
        return None
    if len(found) > 1:
        ids = ", ".join(str(f.get("id")) for f in found)
        raise JiraError(
            f"several Jira fields are named {ref.name!r} ({ids}): "
            "give the impact field's id instead of its name in the config"
        )
    schema = found[0].get("schema") or {}
    return ImpactField(str(found[0]["id"]), multi_select=schema.get("type") == "array")


def jira_messages(response: requests.Response) -> tuple[str, ...]:
    """Jira's own words from an error answer: ``errorMessages``, then ``errors`` as
    ``"field: message"``, then ``message`` / ``errorMessage`` (older and proxy answers)."""
    messages: list[str] = []
    denied = response.headers.get("X-Authentication-Denied-Reason")
    if denied:  # Data Center's reason for a 403 after failed logins (CAPTCHA, say)
        messages.append(denied)
    try:
        data = response.json()
    except ValueError:
        text = " ".join(response.text.split())
        if text:
            messages.append(text if len(text) <= _TEXT_KEPT else text[:_TEXT_KEPT] + "…")
        return tuple(messages)
    if not isinstance(data, dict):
        return tuple(messages)
    listed = data.get("errorMessages")
    if isinstance(listed, list):
        messages += [str(m) for m in listed]
    elif listed:
        messages.append(str(listed))
    errors = data.get("errors")
    if isinstance(errors, dict):
        messages += [f"{name}: {text}" for name, text in errors.items()]
    for key in ("message", "errorMessage"):
        if isinstance(data.get(key), str) and data[key]:
            messages.append(data[key])
    return tuple(messages)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds; ``None`` when absent or not a number (Jira sends seconds)."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


_ERROR_BY_STATUS: dict[int, type[JiraError]] = {
    400: JiraBadRequestError,
    422: JiraBadRequestError,
    401: JiraAuthError,
    403: JiraForbiddenError,
    404: JiraNotFoundError,
    409: JiraConflictError,
}


def error_for_response(response: requests.Response, *, method: str, path: str) -> JiraError:
    """The ``JiraError`` for a non-2xx answer, carrying Jira's messages and where it was sent."""
    status = response.status_code
    said = f"Jira answered {status} {response.reason or ''}".rstrip()
    messages = jira_messages(response)
    if status == 429:
        return JiraRateLimitError(
            said,
            retry_after=retry_after(response.headers),
            reason=response.headers.get("RateLimit-Reason"),
            status=status,
            messages=messages,
            method=method,
            path=path,
        )
    if status >= 500:
        return JiraServerError(
            said,
            retry_after=retry_after(response.headers),
            status=status,
            messages=messages,
            method=method,
            path=path,
        )
    kind = _ERROR_BY_STATUS.get(status, JiraError)
    return kind(said, status=status, messages=messages, method=method, path=path)


def _person(raw: Mapping[str, Any]) -> Person:
    return Person(
        account_id=raw.get("accountId"),
        name=raw.get("name"),
        key=raw.get("key"),
        display_name=raw.get("displayName"),
        email=raw.get("emailAddress"),
    )


# --------------------------------------------------------------------------------------------
# The connector


class JiraSettings(CredentialSettings, Protocol):
    """What the connector reads from the deployment settings (``service.settings.Settings``)."""

    @property
    def notify_users(self) -> bool: ...


class _SignedBy(requests.auth.AuthBase):
    """Puts the credential's ``Authorization`` on each request as it is sent (an OAuth token
    fetched again, a token read again from its file, are used from the next request on)."""

    def __init__(self, credential: Credential) -> None:
        self.credential = credential
        self.sent: str | None = None  # the last request's (a connector serves one thread)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self.sent = self.credential.header()
        return request


class JiraConnector(BoardsMixin, SearchMixin):
    """The real ``connector.protocol.Jira``, signing in with ``credential``
    (``connector.credentials``: basic, scoped, oauth or pat); ``email`` + ``api_token`` or
    ``pat`` make a basic or pat one. ``BoardsMixin`` adds the ``connector.protocol.Boards``
    methods (board ranking), ``SearchMixin`` issue search.

    Nothing is sent until first use; the first use finds where calls go (the site, or the API
    gateway with the site's cloud id) and fetches ``serverInfo`` (Cloud or Data Center). A call
    Jira answers 401 is sent once more when the credential has changed since (a file read
    again, a new OAuth token), then raised as ``JiraAuthError``.
    """

    def __init__(
        self,
        url: str,
        *,
        field: FieldRef,
        email: str | None = None,
        api_token: str | None = None,
        pat: str | None = None,
        credential: Credential | None = None,
        notify_users: bool = False,
        timeout: float = 10.0,
        pace: Pace | None = None,
        breaker: SiteBreaker | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the Jira URL must be an http(s) URL, got {url!r}")
        if parts.username or parts.password:
            raise ValueError("give Jira credentials as email/api_token or pat, not in the URL")
        if credential is not None and (pat or email or api_token):
            raise ValueError("give a credential, or email + api_token, or pat: not several")
        if pat and (email or api_token):
            raise ValueError("give email + api_token (Cloud) or pat (Data Center), not both")
        if credential is None and not pat and not (email and api_token):
            raise ValueError("Jira needs email + api_token (Cloud) or pat (Data Center)")
        if credential is None:
            secret = Secret("JIRA_PAT" if pat else "JIRA_API_TOKEN", pat or api_token or "")
            credential = Credential("pat" if pat else "basic", email=email, secret=secret)
        if timeout <= 0:
            raise ValueError("timeout must be positive")

        self.url = url.rstrip("/")
        self.field = field
        self.notify_users = notify_users
        self.timeout = timeout
        self.pace = pace
        self.breaker = breaker
        self.sleep = sleep
        self.calls: list[Call] = []

        self.credential = credential
        self._auth = _SignedBy(credential)
        self._base = self.url  # where REST calls go: the site, or the gateway (see _jira)
        self._context_path = parts.path.rstrip("/")  # Data Center often lives under /jira
        self._client: JIRA | None = None
        self._cloud = False
        self._clock = clock
        self._fields: list[dict[str, Any]] | None = None
        self._fields_read_at = 0.0
        self._myself: Person | None = None
        self._deadline: float | None = None  # set by time_limit()
        self._probing = False  # set by probe(): the one call sent while the site is held
        self._sent_timeout = timeout  # the last request's timeout (see _timed)

    @classmethod
    def from_settings(
        cls,
        settings: JiraSettings,
        *,
        field: FieldRef,
        pace: Pace | None = None,
        breaker: SiteBreaker | None = None,
    ) -> JiraConnector:
        return cls(
            settings.jira_url,
            field=field,
            credential=credential_for(settings),
            notify_users=settings.notify_users,
            pace=pace,
            breaker=breaker,
        )

    def __repr__(self) -> str:
        return f"JiraConnector(url={self.url!r}, auth={self.credential.kind!r})"

    # ---- the protocol

    def field_id(self) -> str | None:
        found = self._impact_field()
        return found.id if found else None

    def service_account(self) -> Person:
        if self._myself is None:
            client = self._jira()
            self._myself = _person(self._call("GET", f"{API}/myself", client.myself))
        return self._myself

    def get_issue(self, key: str) -> Mapping[str, Any]:
        path = _issue_path(key)
        client = self._jira()
        raw: dict[str, Any] = self._call("GET", path, lambda: client.issue(key).raw)
        return raw

    def user_groups(self, person: Person) -> tuple[str, ...]:
        # The library's ``user()`` puts the name into the URL unquoted; params are encoded.
        self._jira()
        if self._cloud:
            if not person.account_id:
                return ()
            listed = self.request(
                "GET", f"{API}/user/groups", params={"accountId": person.account_id}
            )
            groups = listed if isinstance(listed, list) else []
        else:
            if person.name:
                params = {"username": person.name, "expand": "groups"}
            elif person.key:
                params = {"key": person.key, "expand": "groups"}
            else:
                return ()
            user = self.request("GET", f"{API}/user", params=params)
            groups = (user.get("groups") or {}).get("items", []) if isinstance(user, dict) else []
        return tuple(str(g["name"]) for g in groups if isinstance(g, dict) and g.get("name"))

    def apply_plan(self, plan: Plan, *, may_have_asked: bool = True) -> tuple[Call, ...]:
        first = len(self.calls)
        found = self._impact_field() if plan.field_value else None
        if plan.field_value and found is None:
            log.warning(
                "%s: not writing %r, the impact field %s is not in Jira",
                plan.issue_key,
                plan.field_value,
                self.field.describe(),
            )
        body = edit_body(
            plan,
            field_id=found.id if found else None,
            multi_select=found.multi_select if found else False,
        )
        # The comment goes first: if the edit then fails, the retried plan still asks, and
        # _already_asked() keeps a retry (or a stale second delivery) from asking twice; it is
        # skipped where nothing could have asked yet (``may_have_asked``: see pipeline.triage).
        comment = plan.comment
        if comment and not (may_have_asked and self._already_asked(plan.issue_key)):
            path = _issue_path(plan.issue_key) + "/comment"
            client = self._jira()
            self._call("POST", path, lambda: client.add_comment(plan.issue_key, comment))
        if body is not None:
            params = edit_params(notify_users=self.notify_users)
            self.request("PUT", _issue_path(plan.issue_key), params=params, body=body)
        return tuple(self.calls[first:])

    def _already_asked(self, key: str) -> bool:
        """Whether the service account already posted the missing-impact ask on this issue."""
        me = self.service_account()
        listed = self.request(
            "GET",
            _issue_path(key) + "/comment",
            params={"orderBy": "-created", "maxResults": "100"},
        )
        comments = listed.get("comments", []) if isinstance(listed, dict) else []
        return any(
            isinstance(c, dict)
            and ASK_MARKER in str(c.get("body", ""))
            and me.same_as(_person(c.get("author") or {}))
            for c in comments
        )

    def probe(self, seconds: float) -> None:
        """One cheap call (``serverInfo``) that goes even while the site is held, answered
        within ``seconds``; raises ``JiraError`` when the site still fails."""
        self._probing = True
        try:
            with self.time_limit(seconds):
                if self._client is None:
                    self._jira()  # reads serverInfo
                else:
                    self.request("GET", f"{API}/serverInfo")
        finally:
            self._probing = False

    def probe_credential(self, seconds: float) -> None:
        """The probe of a refused credential, sent while the site is held: the credential read
        again (its file; a new OAuth token), then who it signs in as (``GET /myself``), within
        ``seconds``; raises ``JiraError`` (``JiraAuthError`` when still refused)."""
        self.credential.renew()
        self._myself = None  # a new token may be another account's
        self._probing = True
        try:
            with self.time_limit(seconds):
                self.service_account()
        finally:
            self._probing = False
            self.take_calls()

    def is_cloud(self) -> bool:
        """Jira Cloud (or Data Center), as ``serverInfo`` says; read on first use."""
        self._jira()
        return self._cloud

    def server_version(self) -> tuple[int, ...]:
        """Jira's version, as ``serverInfo``'s ``versionNumbers`` say (e.g. ``(10, 3, 6)``); read
        on first use. Data Center 10 moved the admin webhooks (``connector.admin``)."""
        numbers = getattr(self._jira(), "_version", ())
        return tuple(n for n in numbers if isinstance(n, int))

    @contextmanager
    def time_limit(self, seconds: float) -> Iterator[None]:
        """Calls made inside wait for Jira ``seconds`` in all: each request's timeout is what is
        left of them, and a call due after they ran out (or whose turn or ``Retry-After`` would
        come after) raises unsent: for a page that must answer in time however many pages a read
        takes, and for a job that must end before its lock expires. (``requests`` applies a
        timeout to the connection and to each wait for bytes, so an answer that trickles in can
        still outlast it.)"""
        previous, deadline = self._deadline, self._clock() + seconds
        self._deadline = deadline if previous is None else min(previous, deadline)  # nested: both
        try:
            yield
        finally:
            self._deadline = previous

    def _left(self) -> float | None:
        """The seconds left of ``time_limit``; None outside one."""
        return None if self._deadline is None else self._deadline - self._clock()

    def _timeout(self, method: str, path: str) -> float:
        left = self._left()
        if left is None:
            return self.timeout
        if left <= 0:
            raise JiraUnavailableError(
                "Jira did not answer within the time limit", method=method, path=path, ours=True
            )
        return min(self.timeout, left)

    # ---- calls made

    def take_calls(self) -> tuple[Call, ...]:
        """The calls recorded since the last take, oldest first; the record is then emptied."""
        taken = tuple(self.calls)
        self.calls.clear()
        return taken

    # ---- plumbing

    def _jira(self) -> JIRA:
        """The library client, built on first use.

        The library is told not to fetch ``serverInfo`` itself so that the hook recording calls
        is in place first; this then sets what the library would have set from the answer."""
        if self._client is not None:
            return self._client
        path = f"{API}/serverInfo"
        base = self.credential.base_url(self.url, self._tenant_info)
        if base != self._base:
            self._base, self._context_path = base, urlsplit(base).path.rstrip("/")
        client = JIRA(
            server=base,
            max_retries=0,
            timeout=self._timeout("GET", path),
            get_server_info=False,
        )
        client._session.auth = self._auth
        client._session.hooks["response"].append(self._record)
        info = self._call("GET", path, client.server_info)
        if not isinstance(info, dict) or not info.get("versionNumbers"):
            raise JiraError(
                "serverInfo has no versionNumbers: is the URL a Jira site?", method="GET", path=path
            )
        client.deploymentType = info.get("deploymentType")
        client._version = tuple(info["versionNumbers"])
        self._cloud = client.deploymentType == "Cloud"
        self._client = client
        return client

    def _tenant_info(self, url: str) -> Any:
        """The site's ``/_edge/tenant_info`` (no credentials needed): where its cloud id is."""

        def send() -> Any:
            response = requests.get(url, timeout=self._timeout("GET", TENANT_INFO))
            self._record(response)
            if not response.ok:
                raise error_for_response(response, method="GET", path=TENANT_INFO)
            return response.json()

        return self._call("GET", TENANT_INFO, send)

    @property
    def base_url(self) -> str:
        """Where REST calls go: the site, or the API gateway for this site (once known)."""
        return self._base

    def fields(self) -> list[dict[str, Any]]:
        """Every Jira field (``GET /field``), kept for ``FIELDS_TTL_SECONDS``."""
        kept = self._fields
        if kept is None or self._age_of_fields() >= FIELDS_TTL_SECONDS:
            client = self._jira()
            answer = self._call("GET", f"{API}/field", client.fields)
            if not isinstance(answer, list) or not all(
                isinstance(f, Mapping) and isinstance(f.get("id"), str) for f in answer
            ):
                raise JiraAnswerError(
                    "Jira's field list is not a list of fields", method="GET", path=f"{API}/field"
                )
            kept = list(answer)
            self._fields, self._fields_read_at = kept, self._clock()
        return kept

    def forget_fields(self) -> None:
        """Read the field list again on next use (after creating a field, say)."""
        self._fields = None

    def _age_of_fields(self) -> float:
        return self._clock() - self._fields_read_at

    def _impact_field(self) -> ImpactField | None:
        found = find_field(self.fields(), self.field)
        if found is None and self._age_of_fields() >= MISSING_FIELD_RETRY_SECONDS:
            self.forget_fields()
            found = find_field(self.fields(), self.field)
        return found

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | Sequence[str]] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send what the library has no fitting method for; the parsed answer, None when empty.
        A parameter given a list is repeated (``id=1&id=2``)."""
        session = self._jira()._session

        def send() -> Any:
            response = session.request(
                method,
                self._base + path,
                params=params,
                data=None if body is None else json.dumps(body),
            )
            # orjson: a board's pages of issues parse in a third of the standard library's time
            return orjson.loads(response.content) if response.content else None

        return self._call(method, path, send)

    def _call(self, method: str, path: str, send: Callable[[], T]) -> T:
        """``send()`` unless the site is held, its outcome told to the breaker."""
        if self.breaker is None:
            return self._signed(method, path, send)
        if not self._probing:
            self.breaker.check()
        try:
            result = self._signed(method, path, send)
        except JiraError as exc:
            self.breaker.failed(exc)
            raise
        self.breaker.answered()
        return result

    def _signed(self, method: str, path: str, send: Callable[[], T]) -> T:
        """``send()``, and once more after a 401 when the credential has changed since (read
        again from its file, a new OAuth token); a second 401 is raised."""
        self._auth.sent = None
        try:
            return self._paced(method, path, send)
        except JiraAuthError as exc:
            if exc.path in (TENANT_INFO, TOKEN_PATH) or not self.credential.refused(
                self._auth.sent
            ):
                raise
            log.warning("%s %s: Jira refused the credential (%s); trying the renewed one",
                        method, path, exc.status)  # fmt: skip
            return self._paced(method, path, send)

    def _paced(self, method: str, path: str, send: Callable[[], T]) -> T:
        """``send()`` with its errors translated. With a pace: in a turn of it, and a 429 sent
        again after Jira's ``Retry-After`` while the tries and the wait allow (see the module's
        docstring); without one, at once and raised as it comes."""
        if self.pace is None:
            with self._translated(method, path):
                return self._timed(method, path, send)
        waited = 0.0
        for tries in range(1, RATE_LIMIT_TRIES + 1):
            try:
                with self.pace.slot(self._left()), self._translated(method, path):
                    return self._timed(method, path, send)
            except NoTurnError as exc:
                said = f"not sent, {exc} (the time limit)"
                if exc.wait is None:  # every turn is taken by calls in flight
                    raise JiraUnavailableError(said, method=method, path=path, ours=True) from exc
                # paused for Jira's rate limit, or spaced by it: the queue retries after the wait
                raise JiraRateLimitError(
                    said, retry_after=exc.wait, method=method, path=path, ours=True
                ) from exc
            except JiraRateLimitError as exc:
                wait = self.pace.refused(exc.retry_after, exc.reason)
                left = self._left()
                if tries == RATE_LIMIT_TRIES or waited + wait > RATE_LIMIT_WAIT:
                    raise
                if left is not None and wait >= left:  # raised now: the caller retries later
                    raise
                log.info("%s %s: rate limited (%s), again in %.1fs", method, path, exc.reason, wait)
                waited += wait
                self.sleep(wait)
        raise AssertionError("unreachable")  # the last try returns or raises

    def _timed(self, method: str, path: str, send: Callable[[], T]) -> T:
        """``send()`` with the request's timeout (see ``time_limit``); the library's session
        gives every request the timeout it holds."""
        timeout = self._sent_timeout = self._timeout(method, path)
        if self._client is not None:
            self._client._session.timeout = timeout
        return send()

    def _record(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        if self.pace is not None:
            self.pace.answered(response.status_code, response.headers)
        url = response.request.url or ""
        self.calls.append(
            Call(
                method=response.request.method or "?",
                path=self._path_of(url),
                status=response.status_code,
                ms=response.elapsed.total_seconds() * 1000,
            )
        )

    def _path_of(self, url: str) -> str:
        path = urlsplit(url).path
        if self._context_path and path.startswith(self._context_path + "/"):
            return path[len(self._context_path) :]
        return path

    @contextmanager
    def _translated(self, method: str, path: str) -> Iterator[None]:
        """Turn the library's and requests' exceptions into ``connector.errors`` types, here only.

        With ``max_retries=0`` a non-2xx answer surfaces at once as ``JIRAError`` with
        ``.response``; a request that got no answer raises a requests exception."""
        started = time.monotonic()
        try:
            yield
        except JIRAError as exc:
            if exc.response is None:
                raise JiraError(
                    str(exc.text or "the jira library failed"), method=method, path=path
                ) from exc
            raise error_for_response(exc.response, method=method, path=path) from exc
        except requests.exceptions.SSLError as exc:
            self._no_answer(method, path, started)
            raise JiraError(f"TLS with Jira failed: {exc}", method=method, path=path) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            self._no_answer(method, path, started)
            said = f"no answer from Jira ({_no_answer_reason(exc)})"
            # a wait cut short to what was left of the time limit says little of the site
            cut = isinstance(exc, requests.Timeout) and self._sent_timeout < self.timeout
            if self._deadline is not None and isinstance(exc, requests.Timeout):
                said = f"Jira did not answer within the time limit ({type(exc).__name__})"
            raise JiraUnavailableError(said, method=method, path=path, ours=cut) from exc
        except (requests.JSONDecodeError, orjson.JSONDecodeError) as exc:
            raise JiraError(
                "Jira's answer was not JSON: is the URL a Jira site?", method=method, path=path
            ) from exc
        except requests.RequestException as exc:
            raise JiraError(f"the request failed: {exc}", method=method, path=path) from exc

    def _no_answer(self, method: str, path: str, started: float) -> None:
        self.calls.append(Call(method, path, None, (time.monotonic() - started) * 1000))


def _issue_path(key: str) -> str:
    if not is_issue_ref(key):  # nothing that could bend the path reaches it
        raise JiraError(f"{key[:40]!r} is not an issue key")
    return f"{API}/issue/{key}"


_OS_ERROR = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _no_answer_reason(exc: requests.RequestException) -> str:
    """Why no answer came, in the system's words (``Connection refused``, ``Name or service not
    known``), without the library's retelling of the address and its connection pool."""
    found = _OS_ERROR.search(str(exc))
    if found:
        return found.group(1).strip()
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return type(exc).__name__
