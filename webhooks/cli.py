"""``jira-impact``: the admin's command line. Exit codes scripts can trust: 0 fine, 1 a finding
or an error the command reports, 2 a usage mistake (click's own)."""

from __future__ import annotations

import os
import sys

import click

from impact.config import DEFAULT_CONFIG_PATH, ConfigError, load_config


@click.group()
@click.version_option(package_name="jira-customer-impact")
def main() -> None:
    """Triage Jira issues by their impact on paying customers."""


@main.group()
def config() -> None:
    """The admins' impact config (config/impact.toml)."""


@config.command("check")
@click.option(
    "--config",
    "path",
    type=click.Path(dir_okay=False),
    default=lambda: os.environ.get("IMPACT_CONFIG") or DEFAULT_CONFIG_PATH,
    show_default="$IMPACT_CONFIG or " + DEFAULT_CONFIG_PATH,
    help="The file to check.",
)
def config_check(path: str) -> None:
    """Validate the config file without starting anything; exit 1 on errors."""
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(
        f"{path}: OK — {len(cfg.levels)} levels, {len(cfg.rules)} rules, "
        f"{len(cfg.projects)} project(s): {', '.join(p.key for p in cfg.projects) or 'none'}"
    )
