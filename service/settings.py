"""Deployment settings, read once from the environment (12-factor) and checked at start-up.

A missing or contradictory setting stops the process with every problem listed, each naming the
variable to fix. Secrets are kept out of ``repr`` so they never reach a log or a page.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from impact.config import DEFAULT_CONFIG_PATH

log = logging.getLogger(__name__)

DEFAULT_ENV_FILE = ".env"
DEFAULT_DATABASE_URL = "sqlite:///var/impact.db"
DEFAULT_QUEUE_PATH = "var/queue.db"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
HOUR = 3600.0
MIN_SECRET_LENGTH = 12
# How the product signs in to Jira (JIRA_AUTH): see connector/credentials.py.
AUTH_KINDS = ("basic", "scoped", "oauth", "pat")
DEFAULT_ATLASSIAN_API_URL = "https://api.atlassian.com"
DEFAULT_ATLASSIAN_AUTH_URL = "https://auth.atlassian.com"
# Every secret setting may instead be read from a file named by <NAME>_FILE, as container
# platforms mount secrets; the Jira credentials among them are read again after a 401.
SECRET_SETTINGS = (
    "JIRA_API_TOKEN",
    "JIRA_PAT",
    "JIRA_CLIENT_SECRET",
    "JIRA_WEBHOOK_SECRET",
    "JIRA_WEBHOOK_TOKEN",
    "ADMIN_TOKEN",
    "METRICS_TOKEN",
    "VIEWER_TOKEN",
    "DATABASE_URL",
    "REDIS_URL",
)
EXPIRY_WARNING_DAYS = 14  # JIRA_TOKEN_EXPIRES: warned of from this many days before
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
N = TypeVar("N", int, float)


def read_env_file(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Fill ``environ`` (the process's environment) from the settings file, ``$ENV_FILE`` or
    ``.env`` in the current directory, as ``make run`` does: a variable already set keeps its
    value, so the environment wins over the file. The file read, or None when there is none."""
    from dotenv import dotenv_values

    environ = os.environ if environ is None else environ
    path = environ.get("ENV_FILE") or DEFAULT_ENV_FILE
    if not os.path.isfile(path):
        return None
    for name, value in dotenv_values(path).items():
        if value is not None:
            environ.setdefault(name, value)
    return path


class SettingsError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems

    def __str__(self) -> str:
        lines = ["the environment is not set up right:"] + [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class Settings:
    jira_url: str
    impact_config: str = DEFAULT_CONFIG_PATH
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    port: int = 8000
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    notify_users: bool = False
    allow_unsigned: bool = False
    allow_http_jira: bool = False  # an http:// JIRA_URL that is not on this machine
    trusted_proxies: int = 0  # proxies in front whose X-Forwarded-For/-Proto are believed
    admin_cookie_secure: bool = False  # True: always; False: when the request came over https
    # The queue and the worker (see pipeline/queue.py and pipeline/worker.py).
    queue_path: str = DEFAULT_QUEUE_PATH  # Huey's SQLite file, when REDIS_URL is not set
    worker_threads: int = 4  # with calls of 150 ms, 20 calls a second need 3 in flight
    worker_nice: int = 19  # the worker takes only the CPU that web processes leave (see README)
    rerank_minutes: int = 15  # how often boards of projects with rank = "full" are reranked
    delivery_attempts: int = 12  # with the backoff below: about an hour in all
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 900.0
    lease_seconds: float = 300.0  # a job running longer is taken for dead and run again
    # A worker beats this often in the queue's store; one that missed 5 beats in a row is dead,
    # and its jobs run again at once (see pipeline/heartbeats.py).
    heartbeat_seconds: float = 2.0
    retention_hours: float = 14 * 24.0
    delivery_log_max_rows: int = 1_000_000  # the oldest finished rows beyond go (the sweep)
    # How a burst reaches Jira (see connector/pace.py and pipeline/placements.py).
    jira_max_in_flight: int = 4  # calls to Jira at once, per worker process
    jira_max_calls_per_second: float = 10.0  # per worker process; less after a 429
    placement_delay_seconds: float = 2.0  # issues put in a band wait this long to be placed
    # While Jira is held (connector/breaker.py), one probe this often, or after its Retry-After.
    probe_seconds: float = 5.0
    # A delivery whose signed timestamp is older than this is refused (422); one that waited
    # this long in the queue re-reads its issue. Jira retries for 30 minutes, with the same
    # timestamp: an hour at least, so that no retry of Jira's is refused.
    webhook_max_age_seconds: float = 2 * HOUR
    # The priorities pages (see webhooks/priorities): open to all on an intranet, or behind
    # VIEWER_TOKEN (or ADMIN_TOKEN); what they read kept a while, their reads bounded in time.
    public_priorities: bool = False
    priorities_cache_seconds: float = 60.0
    priorities_read_seconds: float = 10.0
    jira_email: str | None = None
    # How the product signs in to Jira (see connector/credentials.py).
    jira_auth: str = "basic"
    atlassian_api_url: str = DEFAULT_ATLASSIAN_API_URL  # the gateway, for scoped and oauth
    atlassian_auth_url: str = DEFAULT_ATLASSIAN_AUTH_URL  # its /oauth/token, for oauth
    jira_client_id: str | None = None
    jira_token_expires: dt.date | None = None  # the date the admin chose for the token
    # The files secrets were read from, by setting name (JIRA_API_TOKEN: /run/secrets/jira).
    secret_files: Mapping[str, str] = field(default_factory=dict)
    # Secrets: never shown by repr.
    jira_api_token: str | None = field(default=None, repr=False)
    jira_pat: str | None = field(default=None, repr=False)
    jira_client_secret: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_token: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    metrics_token: str | None = field(default=None, repr=False)
    viewer_token: str | None = field(default=None, repr=False)

    @property
    def jira_auth_kind(self) -> str:
        return self.jira_auth

    def expiry_warning(self, today: dt.date | None = None) -> str | None:
        """A sentence when ``JIRA_TOKEN_EXPIRES`` is at most ``EXPIRY_WARNING_DAYS`` away (or
        past); None otherwise."""
        return expiry_warning(self.jira_token_expires, self.jira_auth, today)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """The settings ``env`` gives. A variable left unset takes its field's default, read from
        the class (``cls.port``), so that each default is written once: in the fields above."""
        problems: list[str] = []
        env, secret_files = with_secret_files(env, problems)

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def flag(name: str, default: bool) -> bool:
            raw = env.get(name)
            if raw is None:
                return default
            if raw.strip().lower() in _TRUE:
                return True
            if raw.strip().lower() in _FALSE:
                return False
            problems.append(f"{name}={raw!r} is not a yes/no value (use 1 or 0)")
            return default

        def number(name: str, kind: type[N], default: N, low: N, high: N) -> N:
            """``name`` as a ``kind`` (int or float) from ``low`` to ``high``; else ``default``,
            the problem recorded."""
            raw = get(name)
            if raw is None:
                return default
            whole = kind is int
            try:
                value = kind(raw)
            except ValueError:
                what = "a whole number" if whole else "a number"
                problems.append(f"{name}={raw!r} is not {what}")
                return default
            if not low <= value <= high:  # also false for nan
                if whole:
                    problems.append(f"{name}={value} is out of range ({low} to {high})")
                else:
                    problems.append(f"{name}={raw} is out of range ({low:g} to {high:g})")
                return default
            return value

        jira_url = get("JIRA_URL")
        allow_http = flag("ALLOW_HTTP_JIRA", cls.allow_http_jira)
        if jira_url is None:
            problems.append(
                "JIRA_URL is not set: give your Jira's base URL, e.g. https://acme.atlassian.net"
            )
        else:
            problems += jira_url_problems(jira_url, allow_http=allow_http)

        email, api_token, pat = get("JIRA_EMAIL"), get("JIRA_API_TOKEN"), get("JIRA_PAT")
        client_id, client_secret = get("JIRA_CLIENT_ID"), get("JIRA_CLIENT_SECRET")
        auth = (get("JIRA_AUTH") or "").lower() or default_auth(
            email=email, api_token=api_token, pat=pat, client_id=client_id
        )
        problems += credential_problems(
            auth,
            email=email,
            api_token=api_token,
            pat=pat,
            client_id=client_id,
            client_secret=client_secret,
        )
        api_url = (get("ATLASSIAN_API_URL") or cls.atlassian_api_url).rstrip("/")
        auth_url = (get("ATLASSIAN_AUTH_URL") or cls.atlassian_auth_url).rstrip("/")
        if auth in ("scoped", "oauth"):
            problems += url_problems("ATLASSIAN_API_URL", api_url, allow_http=allow_http)
        if auth == "oauth":
            problems += url_problems("ATLASSIAN_AUTH_URL", auth_url, allow_http=allow_http)
        expires = _date(get("JIRA_TOKEN_EXPIRES"), "JIRA_TOKEN_EXPIRES", problems)

        # The secrets this service checks requests against: a short one is guessed, and it would
        # be replaced in every log line it happens to spell (see service.logs.Redactor).
        secret, token = get("JIRA_WEBHOOK_SECRET"), get("JIRA_WEBHOOK_TOKEN")
        admin_token, metrics_token = get("ADMIN_TOKEN"), get("METRICS_TOKEN")
        viewer_token = get("VIEWER_TOKEN")
        for name, given in [
            ("JIRA_WEBHOOK_SECRET", secret),
            ("JIRA_WEBHOOK_TOKEN", token),
            ("ADMIN_TOKEN", admin_token),
            ("METRICS_TOKEN", metrics_token),
            ("VIEWER_TOKEN", viewer_token),
        ]:
            if given and len(given) < MIN_SECRET_LENGTH:
                problems.append(
                    f"{name} is {len(given)} characters long; use at least {MIN_SECRET_LENGTH} "
                    "(e.g. the output of `openssl rand -hex 32`)"
                )

        if viewer_token and viewer_token == admin_token:
            problems.append(
                "VIEWER_TOKEN is the same as ADMIN_TOKEN: give viewers a token of their own, or "
                "they could open the admin pages"
            )
        public_priorities = flag("PUBLIC_PRIORITIES", cls.public_priorities)

        allow_unsigned = flag("ALLOW_UNSIGNED_WEBHOOKS", cls.allow_unsigned)
        if not secret and not token and not allow_unsigned:
            problems.append(
                "neither JIRA_WEBHOOK_SECRET nor JIRA_WEBHOOK_TOKEN is set: webhooks could not be "
                "authenticated (set one; ALLOW_UNSIGNED_WEBHOOKS=1 accepts unsigned ones, "
                "for tests only)"
            )

        redis_url = get("REDIS_URL")
        redis_scheme = urlsplit(redis_url).scheme if redis_url else "redis"
        if redis_scheme not in ("redis", "rediss", "unix"):
            problems.append(f"REDIS_URL must be a redis:// or rediss:// URL, not {redis_scheme}://")

        retry_base = number("RETRY_BASE_SECONDS", float, cls.retry_base_seconds, 0.01, HOUR)
        retry_max = number("RETRY_MAX_SECONDS", float, cls.retry_max_seconds, 0.01, 24 * HOUR)
        if retry_max < retry_base:
            problems.append(
                f"RETRY_MAX_SECONDS={retry_max:g} is below RETRY_BASE_SECONDS={retry_base:g}"
            )

        settings = cls(
            jira_url=(jira_url or "").rstrip("/"),
            impact_config=get("IMPACT_CONFIG") or cls.impact_config,
            database_url=database_url_from(env),
            redis_url=redis_url,
            port=number("PORT", int, cls.port, 0, 65535),  # 0: a free port, gunicorn logs which
            max_body_bytes=number(
                "MAX_WEBHOOK_BYTES", int, cls.max_body_bytes, 1024, 64 * 1024 * 1024
            ),
            notify_users=flag("JIRA_NOTIFY_USERS", cls.notify_users),
            allow_unsigned=allow_unsigned,
            allow_http_jira=allow_http,
            trusted_proxies=number("TRUSTED_PROXIES", int, cls.trusted_proxies, 0, 5),
            admin_cookie_secure=flag("ADMIN_COOKIE_SECURE", cls.admin_cookie_secure),
            queue_path=get("QUEUE_PATH") or cls.queue_path,
            worker_threads=number("WORKER_THREADS", int, cls.worker_threads, 1, 64),
            worker_nice=number("WORKER_NICE", int, cls.worker_nice, 0, 19),
            rerank_minutes=number("RERANK_MINUTES", int, cls.rerank_minutes, 1, 60),
            delivery_attempts=number("DELIVERY_ATTEMPTS", int, cls.delivery_attempts, 1, 100),
            retry_base_seconds=retry_base,
            retry_max_seconds=retry_max,
            webhook_max_age_seconds=number(
                "WEBHOOK_MAX_AGE_SECONDS", float, cls.webhook_max_age_seconds, HOUR, 48 * HOUR
            ),
            lease_seconds=number(
                "DELIVERY_LEASE_SECONDS", float, cls.lease_seconds, 1.0, 24 * HOUR
            ),
            heartbeat_seconds=number(
                "WORKER_HEARTBEAT_SECONDS", float, cls.heartbeat_seconds, 0.1, 60.0
            ),
            # Jira retries for up to 30 minutes; identifiers are kept at least a day.
            retention_hours=number(
                "DELIVERY_RETENTION_HOURS", float, cls.retention_hours, 24.0, 10 * 365 * 24.0
            ),
            delivery_log_max_rows=number(
                "DELIVERY_LOG_MAX_ROWS", int, cls.delivery_log_max_rows, 1000, 10**9
            ),
            jira_max_in_flight=number("JIRA_MAX_IN_FLIGHT", int, cls.jira_max_in_flight, 1, 256),
            jira_max_calls_per_second=number(
                "JIRA_MAX_CALLS_PER_SECOND", float, cls.jira_max_calls_per_second, 0.1, 10_000.0
            ),
            placement_delay_seconds=number(
                "PLACEMENT_DELAY_SECONDS", float, cls.placement_delay_seconds, 0.0, 600.0
            ),
            probe_seconds=number("JIRA_PROBE_SECONDS", float, cls.probe_seconds, 0.5, 300.0),
            public_priorities=public_priorities,
            priorities_cache_seconds=number(
                "PRIORITIES_CACHE_SECONDS", float, cls.priorities_cache_seconds, 0.0, HOUR
            ),
            priorities_read_seconds=number(
                "PRIORITIES_READ_SECONDS", float, cls.priorities_read_seconds, 1.0, 60.0
            ),
            jira_email=email,
            jira_auth=auth,
            atlassian_api_url=api_url,
            atlassian_auth_url=auth_url,
            jira_client_id=client_id,
            jira_token_expires=expires,
            secret_files=secret_files,
            jira_api_token=api_token,
            jira_pat=pat,
            jira_client_secret=client_secret,
            webhook_secret=secret,
            webhook_token=token,
            admin_token=admin_token,
            metrics_token=metrics_token,
            viewer_token=viewer_token,
        )
        if problems:
            raise SettingsError(problems)
        if secret and token:
            log.warning(
                "JIRA_WEBHOOK_TOKEN is ignored while JIRA_WEBHOOK_SECRET is set: only signed "
                "deliveries are accepted"
            )
        if allow_unsigned and not secret and not token:
            log.warning(
                "ALLOW_UNSIGNED_WEBHOOKS=1: webhooks are accepted without a signature or token; "
                "anyone who can reach this service can trigger edits in Jira"
            )
        if public_priorities and viewer_token:
            log.warning(
                "VIEWER_TOKEN is ignored while PUBLIC_PRIORITIES=1: the priorities pages are "
                "open to whoever reaches this service"
            )
        return settings

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs or pages."""
        values = (
            self.jira_api_token,
            self.jira_pat,
            self.jira_client_secret,
            self.webhook_secret,
            self.webhook_token,
            self.admin_token,
            self.metrics_token,
            self.viewer_token,
        )
        return tuple(v for v in values if v)


def default_auth(
    *, email: str | None, api_token: str | None, pat: str | None, client_id: str | None
) -> str:
    """``JIRA_AUTH`` when it is not set: what the credentials given suggest (``basic`` when
    ``JIRA_EMAIL`` is set, as before the setting existed)."""
    if pat and not (email or api_token):
        return "pat"
    if client_id and not (email or api_token):
        return "oauth"
    return "basic"


_NEEDS = {
    "basic": ("JIRA_EMAIL", "JIRA_API_TOKEN"),
    "scoped": ("JIRA_EMAIL", "JIRA_API_TOKEN"),
    "oauth": ("JIRA_CLIENT_ID", "JIRA_CLIENT_SECRET"),
    "pat": ("JIRA_PAT",),
}
_WHAT = {
    "basic": "an account's e-mail and API token, on the site's URL (Jira Cloud)",
    "scoped": "a service account's e-mail and scoped API token, through the API gateway",
    "oauth": "a service account's OAuth 2.0 client id and secret, through the API gateway",
    "pat": "a personal access token (Jira Data Center)",
}


def credential_problems(auth: str, **given: str | None) -> list[str]:
    """What is wrong with the credential settings for ``JIRA_AUTH=auth``: a kind that does not
    exist, a setting the kind needs that is missing, or one of another kind's that is set."""
    if auth not in AUTH_KINDS:
        return [f"JIRA_AUTH={auth!r} is not one of {', '.join(AUTH_KINDS)}"]
    values = {
        "JIRA_EMAIL": given.get("email"),
        "JIRA_API_TOKEN": given.get("api_token"),
        "JIRA_PAT": given.get("pat"),
        "JIRA_CLIENT_ID": given.get("client_id"),
        "JIRA_CLIENT_SECRET": given.get("client_secret"),
    }
    needed = _NEEDS[auth]
    problems = []
    missing = [name for name in needed if not values[name]]
    if missing and not any(values.values()):
        return [
            "no Jira credentials: set JIRA_EMAIL + JIRA_API_TOKEN (Cloud: JIRA_AUTH=basic, or "
            "scoped for a service account's scoped token), JIRA_CLIENT_ID + JIRA_CLIENT_SECRET "
            "(JIRA_AUTH=oauth) or JIRA_PAT (Data Center)"
        ]
    if missing:
        problems.append(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: "
            f"JIRA_AUTH={auth} signs in with {_WHAT[auth]} ({' + '.join(needed)})"
        )
    others = [name for name, value in values.items() if value and name not in needed]
    if others:
        problems.append(
            f"{', '.join(others)} {'is' if len(others) == 1 else 'are'} set but JIRA_AUTH={auth} "
            f"uses {' + '.join(needed)}: unset {'it' if len(others) == 1 else 'them'}, or set "
            "JIRA_AUTH to the kind of credential you have (basic, scoped, oauth or pat)"
        )
    return problems


def with_secret_files(
    env: Mapping[str, str], problems: list[str]
) -> tuple[Mapping[str, str], dict[str, str]]:
    """``env`` with each secret setting given as ``<NAME>_FILE`` read from its file (trailing
    whitespace dropped, as ``echo`` leaves a newline), and the files read by setting name."""
    filled = dict(env)
    files: dict[str, str] = {}
    for name in SECRET_SETTINGS:
        path = env.get(f"{name}_FILE", "").strip()
        if not path:
            continue
        if env.get(name, "").strip():
            problems.append(f"both {name} and {name}_FILE are set: keep one")
            continue
        try:
            value = read_secret_file(path)
        except OSError as exc:
            problems.append(f"{name}_FILE={path!r} cannot be read ({exc.strerror or exc})")
            continue
        if not value:
            problems.append(f"{name}_FILE={path!r} is empty")
            continue
        filled[name] = value
        files[name] = path
    return filled, files


def read_secret_file(path: str) -> str:
    """A secret kept in a file: its text without the surrounding whitespace."""
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def _date(raw: str | None, name: str, problems: list[str]) -> dt.date | None:
    if raw is None:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        problems.append(f"{name}={raw!r} is not a date: give it as YYYY-MM-DD")
        return None


def expiry_warning(expires: dt.date | None, auth: str, today: dt.date | None = None) -> str | None:
    """The warning ``JIRA_TOKEN_EXPIRES`` calls for today: from ``EXPIRY_WARNING_DAYS`` before
    the date the credential expires, and after it; None otherwise."""
    if expires is None:
        return None
    today = today or dt.date.today()
    left = (expires - today).days
    if left > EXPIRY_WARNING_DAYS:
        return None
    what = {"oauth": "client secret", "pat": "personal access token"}.get(auth, "API token")
    then = "put the new one in place (its setting or file) and JIRA_TOKEN_EXPIRES"
    if left < 0:
        return (
            f"the Jira {what} expired on {expires.isoformat()} (JIRA_TOKEN_EXPIRES): create a "
            f"new one and {then}"
        )
    when = "today" if left == 0 else "tomorrow" if left == 1 else f"in {left} days"
    return (
        f"the Jira {what} expires {when}, on {expires.isoformat()} (JIRA_TOKEN_EXPIRES): "
        f"create a new one and {then}"
    )


def url_problems(name: str, url: str, *, allow_http: bool) -> list[str]:
    """What is wrong with ``url`` as the setting ``name`` (an http(s) URL, https unless on this
    machine or ``ALLOW_HTTP_JIRA``); never quoting credentials in it."""
    if "@" in urlsplit(url).netloc:
        return [f"{name} has a user name or password in it: take them out"]
    return [p.replace("JIRA_URL", name) for p in jira_url_problems(url, allow_http=allow_http)]


def jira_url_problems(url: str, *, allow_http: bool) -> list[str]:
    """What is wrong with ``url`` as ``JIRA_URL``. A problem never quotes a URL that holds
    credentials: the message goes to the log and the terminal."""
    parts = urlsplit(url)
    try:
        host = parts.hostname
    except ValueError:  # an unclosed IPv6 bracket, say
        host = None
    if "@" in parts.netloc:
        return [
            "JIRA_URL has a user name or password in it: give the credentials as "
            "JIRA_EMAIL + JIRA_API_TOKEN (Cloud) or JIRA_PAT (Data Center) instead"
        ]
    if parts.scheme not in ("http", "https") or not host:
        return [f"JIRA_URL={url!r} is not an http(s) URL"]
    if parts.scheme == "http" and not allow_http and not _is_loopback(host):
        return [
            f"JIRA_URL={url!r} is http://, so the service account's credentials would cross the "
            "network in clear: use https://, or set ALLOW_HTTP_JIRA=1 if the link is private"
        ]
    return []


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def database_url_from(env: Mapping[str, str]) -> str:
    """``DATABASE_URL`` (or ``DATABASE_URL_FILE``'s) or the default SQLite file; for the
    commands that need nothing else."""
    url = env.get("DATABASE_URL", "").strip()
    if not url and env.get("DATABASE_URL_FILE", "").strip():
        try:
            url = read_secret_file(env["DATABASE_URL_FILE"].strip())
        except OSError:
            url = ""  # Settings.from_env names the problem
    url = url or DEFAULT_DATABASE_URL
    if url.startswith("postgres://"):  # Heroku-style add-ons still hand these out
        url = "postgresql://" + url.removeprefix("postgres://")
    return url
