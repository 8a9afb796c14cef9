"""The admin webhook that sends issue events here, as ``webhook register`` and ``setup`` make it:
its name, its JQL, and the URL Jira is given (with ``?token=`` where deliveries cannot be signed,
its URL variables written as the site's Jira fills them in); whether Jira kept the JQL filter it
was sent, and the step by hand where it did not. Pure functions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit, urlunsplit

from connector.admin import WEBHOOK_EVENTS, Registered, WebhookApi
from jira_setup.check import RECEIVER_PATH, is_receiver_url, redact_url
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


# URL variables (``issue.key``, ``issue.id``, ``project.key``, …; JRASERVER-68087 lists them):
# Jira before Data Center 10, and Cloud, fill in ``${issue.key}``; Data Center 10 and later fill
# in ``{issue.key}``, without the ``$`` (JRASERVER-78733 and Atlassian's notes on Jira 10's
# webhooks, summed up in ../shared/jira-facts.md section 8), so ``${issue.key}`` would reach us as
# ``$SHOP-1``. A variable is written the way the site's API reads it.
_VARIABLE = re.compile(r"\$?\{([A-Za-z]+\.[A-Za-z]+)\}")


def with_url_variables(url: str, api: WebhookApi) -> str:
    """``url`` with each URL variable written as ``api``'s Jira fills it in."""
    form = "{{{0}}}" if api is WebhookApi.DC10 else "${{{0}}}"
    return _VARIABLE.sub(lambda m: form.format(m.group(1)), url)


def _same_jql(jql: str, other: str) -> bool:
    return " ".join(jql.split()).casefold() == " ".join(other.split()).casefold()


def filter_problem(registered: Registered, jql: str) -> str | None:
    """Why Jira cannot be said to hold the webhook just registered with filter ``jql`` (and
    the issue events), from what it shows when read back; None when it does."""
    read = registered.read
    if read is None:
        return f"registered, but its JQL filter could not be confirmed ({registered.unread})"
    if not _same_jql(read.jql, jql):
        shown = repr(read.jql) if read.jql else "no JQL filter, so it sends every issue"
        return f"registered, but Jira shows {shown} where {jql!r} was sent"
    missing = [e for e in WEBHOOK_EVENTS if e not in read.events]
    if missing:
        return f"registered, but Jira shows it without {', '.join(missing)}"
    return None


def by_hand(name: str, url: str, jql: str) -> str:
    """The step that makes the webhook right by hand (Jira administration's WebHooks page)."""
    return (
        f"in Jira administration > System > WebHooks, edit {name!r} ({redact_url(url)}): set its "
        f"JQL filter to {jql}, tick Issue created and Issue updated, and save"
    )
