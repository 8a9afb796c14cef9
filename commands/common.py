"""What the admin's commands share: failing with a message, the settings and the config,
plurals."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from commands.output import echo
from impact.config import ConfigError, load_config
from impact.model import ImpactConfig
from service.settings import Settings, SettingsError


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
