"""The admin webhook that sends issue events here, as ``webhook register`` and ``setup`` make it:
its name, its JQL, and the URL Jira is given (with ``?token=`` where deliveries cannot be signed).
Pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit, urlunsplit

from jira_setup.check import RECEIVER_PATH, is_receiver_url
from service.settings import Settings

DEFAULT_WEBHOOK_NAME = "jira-customer-impact"


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as the receiver's public address; None when it will do."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{url!r} is not an http(s) URL"
    if not is_receiver_url(url):
        return (
            f"give the receiver's address, ending in {RECEIVER_PATH} "
            f"(e.g. https://impact.example.com{RECEIVER_PATH})"
        )
    return None


def projects_jql(keys: Sequence[str]) -> str:
    """The JQL filter naming the configured projects."""
    return f"project in ({', '.join(keys)})"


def delivery_url(url: str, settings: Settings) -> str:
    """The URL to register: with only ``JIRA_WEBHOOK_TOKEN`` set (no secret to sign with), the
    token goes into it as ``?token=…``."""
    if settings.webhook_secret or not settings.webhook_token:
        return url
    parts = urlsplit(url)
    if "token=" in parts.query:
        return url
    query = "&".join(q for q in (parts.query, urlencode({"token": settings.webhook_token})) if q)
    return urlunsplit(parts._replace(query=query))


def same_target(url: str, other: str) -> bool:
    """Whether two webhook URLs send to the same place (their queries aside)."""
    return _without_query(url) == _without_query(other)


def _without_query(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(query="", fragment="")).rstrip("/")
