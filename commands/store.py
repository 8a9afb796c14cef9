"""``jira-impact queue``: the work the queue's store holds, per Jira site, and dropping what a
worker will not touch (a former ``JIRA_URL``'s, a test run's)."""

from __future__ import annotations

import click

from commands.common import fail, settings_from_env
from commands.output import echo
from pipeline.queue import make_huey
from pipeline.sites import clear, site_url, work_in_store


@click.group("queue")
def queue_group() -> None:
    """The queue's store (QUEUE_PATH, or REDIS_URL): its work, per Jira site."""


@queue_group.command("list")
def queue_list() -> None:
    """Each Jira site's work in the store: this one's, and what the worker leaves alone."""
    settings = settings_from_env()
    huey = make_huey(settings)
    found = work_in_store(huey)
    if not found:
        echo("The queue's store holds no work.")
    for work in found:
        mark = "this site" if work.name == huey.name else "left alone"
        echo(f"{mark:<10}  {work.describe()}")
    others = [w for w in found if w.name != huey.name]
    if others:
        echo(
            f"The worker serves {site_url(settings.jira_url)} and leaves the rest alone; drop "
            f"what is stale with: jira-impact queue clear NAME"
        )


@queue_group.command("clear")
@click.argument("name")
def queue_clear(name: str) -> None:
    """Drop every job, delivery, waiting issue and lock the store holds under NAME (as
    `queue list` shows it)."""
    settings = settings_from_env()
    huey = make_huey(settings)
    if name == huey.name:
        fail(
            f"{name} is this site's own work ({site_url(settings.jira_url)}): the worker runs "
            f"it; stop here rather than drop deliveries Jira was told were taken"
        )
    held = clear(huey, name)
    if held is None:
        fail(f"the queue's store holds no work under {name!r}: see jira-impact queue list")
    echo(f"Dropped {held.describe()}")
