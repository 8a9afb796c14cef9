"""What the admin's commands share: failing with a message, the settings and the config,
plurals."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click

from commands.output import echo
from connector.errors import JiraError
from impact.config import ConfigError, load_config
from impact.model import ImpactConfig
from service.errors import short_error
from service.settings import Settings, SettingsError

TRACEBACK_VARIABLE = "JIRA_IMPACT_TRACEBACK"  # 1: a command's unexpected failure shows its stack


def fail(message: str) -> NoReturn:
    """Print ``message`` on stderr and exit 1 (a problem found, or Jira failed)."""
    echo(message, err=True)
    sys.exit(1)


def settings_from_env() -> Settings:
    """The deployment settings, as the web and worker processes read them; exit 1 naming every
    problem."""
    try:
        return Settings.from_env(os.environ)
    except SettingsError as exc:
        fail(str(exc))


def config_of(settings: Settings) -> ImpactConfig:
    """The impact config ``settings`` name; exit 1 naming every problem in it."""
    try:
        return load_config(settings.impact_config)
    except ConfigError as exc:
        fail(str(exc))


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def failure_line(exc: Exception) -> str:
    """The one line a command ends with when ``exc`` stopped it: what failed and what to do."""
    from pipeline.delivery_log import SchemaError

    if isinstance(exc, JiraError):
        return f"Stopped: {exc.plain()} ({exc}); {exc.advice()}."
    if isinstance(exc, SchemaError):
        return f"Stopped: {exc}."
    text = short_error(exc)
    if "no such table" in text or "UndefinedTable" in text:
        return (
            "Stopped: the delivery log has no tables yet (DATABASE_URL); create them with "
            "`jira-impact db upgrade`."
        )
    if type(exc).__module__.startswith(("sqlalchemy", "sqlite3", "psycopg")):
        return (
            f"Stopped: the delivery log's database failed ({text}); check DATABASE_URL and that "
            "the database is up."
        )
    if type(exc).__module__.startswith("redis"):
        return f"Stopped: the queue's Redis failed ({text}); check REDIS_URL and that Redis is up."
    return (
        f"Stopped by an unexpected error ({text}); run it again with {TRACEBACK_VARIABLE}=1 to "
        "see where, and report it."
    )


class Commands(click.Group):
    """A group whose commands never end in a traceback: an error they do not handle ends in one
    line naming what failed and what to do (``failure_line``), exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get(TRACEBACK_VARIABLE) == "1":
                raise
            fail(failure_line(exc))
