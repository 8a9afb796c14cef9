"""Deployment settings, read once from the environment (12-factor) and checked at start-up.

A missing or contradictory setting stops the process with every problem listed, each naming the
variable to fix. Secrets are kept out of ``repr`` so they never reach a log or a page.
"""

from __future__ import annotations

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
    # Secrets: never shown by repr.
    jira_api_token: str | None = field(default=None, repr=False)
    jira_pat: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_token: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    metrics_token: str | None = field(default=None, repr=False)
    viewer_token: str | None = field(default=None, repr=False)

    @property
    def jira_auth_kind(self) -> str:
        return "pat" if self.jira_pat else "basic"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """The settings ``env`` gives. A variable left unset takes its field's default, read from
        the class (``cls.port``), so that each default is written once: in the fields above."""
        problems: list[str] = []

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
        if pat and (email or api_token):
            problems.append(
                "both JIRA_PAT and JIRA_EMAIL/JIRA_API_TOKEN are set: use JIRA_EMAIL + "
                "JIRA_API_TOKEN for Jira Cloud, or JIRA_PAT for Data Center, not both"
            )
        elif not pat and not (email and api_token):
            if email and not api_token:
                problems.append(
                    "JIRA_EMAIL is set but JIRA_API_TOKEN is not (Jira Cloud needs both)"
                )
            elif api_token and not email:
                problems.append(
                    "JIRA_API_TOKEN is set but JIRA_EMAIL is not (Jira Cloud needs both)"
                )
            else:
                problems.append(
                    "no Jira credentials: set JIRA_EMAIL + JIRA_API_TOKEN (Cloud) "
                    "or JIRA_PAT (Data Center)"
                )

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
            port=number("PORT", int, cls.port, 1, 65535),
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
            jira_api_token=api_token,
            jira_pat=pat,
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
            self.webhook_secret,
            self.webhook_token,
            self.admin_token,
            self.metrics_token,
            self.viewer_token,
        )
        return tuple(v for v in values if v)


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
    """``DATABASE_URL`` or the default SQLite file; for the commands that need nothing else."""
    url = env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    if url.startswith("postgres://"):  # Heroku-style add-ons still hand these out
        url = "postgresql://" + url.removeprefix("postgres://")
    return url
