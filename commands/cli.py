"""``jira-impact``: the admin's command line. Exit codes scripts can trust: 0 fine, 1 a finding
or an error the command reports, 2 a usage mistake (click's own)."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime

import click

from commands.admin import backfill_command, check_command, webhook_group
from commands.common import Commands, fail, settings_from_env
from commands.output import echo
from commands.rerank import rerank_command
from commands.setup import config_init_command, setup_command
from commands.store import queue_group
from impact.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, pattern_warnings
from pipeline.delivery_log import (
    STATUSES,
    DeliveryLog,
    SchemaError,
    check_schema,
    migrate,
    schema_revisions,
)
from pipeline.queue import DeliveryQueue, make_huey
from pipeline.worker import run_worker
from service.settings import database_url_from, read_env_file


@click.group(cls=Commands)
@click.version_option(package_name="jira-customer-impact")
def main() -> None:
    """Triage Jira issues by their impact on paying customers.

    Settings come from the environment, or from .env in the current directory ($ENV_FILE names
    another file); a variable set in the environment wins over the file."""
    read_env_file()


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
        fail(str(exc))
    echo(
        f"{path}: OK — {len(cfg.levels)} levels, {len(cfg.rules)} rules, "
        f"{len(cfg.projects)} project(s): {', '.join(p.key for p in cfg.projects) or 'none'}"
    )
    for where, why in pattern_warnings(cfg):  # not errors: every search has a time limit
        echo(f"warning: {where}: may be slow on a long description: {why}")


def _delivery_log(*, checked: bool = True) -> DeliveryLog:
    """The log at $DATABASE_URL (or the default SQLite file); needs no other setting.
    ``checked``: exit 1 naming `jira-impact db upgrade` when its schema is behind."""
    delivery_log = DeliveryLog.from_url(database_url_from(os.environ))
    if checked:
        check_schema(delivery_log.engine)
    return delivery_log


@main.command()
def worker() -> None:
    """Run the queue's worker: triage the deliveries the web process accepted."""
    from service.logs import configure_logging
    from service.metrics import prepare_multiprocess

    prepare_multiprocess()  # before any metric: the web's /metrics adds the worker's counts
    settings = settings_from_env()
    configure_logging(settings)
    try:
        cfg = load_config(settings.impact_config)
        run_worker(settings, cfg)
    except (ConfigError, SchemaError) as exc:
        fail(str(exc))


@main.group()
def db() -> None:
    """The delivery log's database ($DATABASE_URL, default an SQLite file under var/)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision.")
def db_upgrade(revision: str) -> None:
    """Create or upgrade the delivery log's tables (safe to run on every deploy)."""
    engine = _delivery_log(checked=False).engine
    migrate(engine, revision)
    current, _head = schema_revisions(engine)
    echo(f"{engine.url.render_as_string(hide_password=True)}: at schema {current}")


@main.group()
def deliveries() -> None:
    """The delivery log: what Jira sent and what became of it."""


@deliveries.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only deliveries in this state.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
def deliveries_list(status: str | None, limit: int) -> None:
    """The newest deliveries first, one a line."""
    delivery_log = _delivery_log()
    counts = delivery_log.counts()
    echo(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no deliveries")
    for e in delivery_log.entries(status=status, limit=limit):
        outcome = e.error or e.plan or ""
        echo(
            f"{_when(e.received_at)}  {e.status:<9} {e.attempts:>2}x  {e.issue_key or '-':<12} "
            f"{e.identifier}  {e.event}  {outcome.splitlines()[0][:100] if outcome else ''}"
        )


@deliveries.command("show")
@click.argument("identifier")
def deliveries_show(identifier: str) -> None:
    """Everything the log holds about one delivery (the calls made, Jira's message)."""
    entry = _delivery_log().get(identifier)
    if entry is None:
        fail(f"no delivery {identifier!r} in the log")
    for name, value in vars(entry).items():
        if name.endswith("_at"):
            value = _when(value) if value is not None else None
        if value is not None and "\n" in str(value):
            value = "\n    " + str(value).replace("\n", "\n    ")
        echo(f"{name}: {value if value is not None else '-'}")


@deliveries.command("replay")
@click.argument("identifiers", nargs=-1)
@click.option("--all-dead", is_flag=True, help="Replay every dead delivery.")
def deliveries_replay(identifiers: tuple[str, ...], all_dead: bool) -> None:
    """Queue finished deliveries again (dead, failed, done or ignored), attempts from zero."""
    if bool(identifiers) == all_dead:
        raise click.UsageError("give delivery identifiers or --all-dead, not both or neither")
    settings = settings_from_env()
    delivery_log = _delivery_log()
    queue = DeliveryQueue(make_huey(settings))
    replayed = delivery_log.replay(identifiers, all_dead=all_dead, now=time.time())
    for delivery in replayed:
        queue.enqueue(delivery)
        echo(f"queued {delivery.id} ({delivery.issue_key})")
    missing = set(identifiers) - {d.id for d in replayed}
    for identifier in sorted(missing):
        echo(f"not replayed: {identifier} (unknown, or still queued or running)", err=True)
    echo(f"{len(replayed)} delivery(ies) queued again")
    if missing:
        sys.exit(1)


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# The admin's commands that live in their own modules.
for _command in (
    check_command,
    setup_command,
    backfill_command,
    webhook_group,
    rerank_command,
    queue_group,
):
    main.add_command(_command)
config.add_command(config_init_command)
