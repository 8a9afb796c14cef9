"""``jira-impact rerank --board N [--apply]``: show, then on request carry out, a board's rerank.

Registered in ``commands.cli`` with ``main.add_command(rerank_command)``.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

from commands.output import echo
from connector.errors import JiraError, RankPartialError
from impact.config import ConfigError, load_config
from pipeline.ranking import RankRefusedError, apply_rerank, plan_board
from service.settings import Settings, SettingsError

AGAIN = "Running the command again plans from the board as it is now."


@click.command("rerank")
@click.option("--board", "board_id", type=int, required=True, help="The board's id.")
@click.option("--apply", "apply", is_flag=True, help="Carry the plan out (default: only show it).")
def rerank_command(board_id: int, apply: bool) -> None:
    """Put a board in band order: the fewest moves, each band keeping its order.

    Prints the plan (how many issues move, in how many rank calls, and for each moved issue
    its band, from where to where and why) and changes nothing, unless --apply is given.
    Exits 1 when the board cannot be ranked (the message says what to fix) or Jira fails.
    """
    from connector.client import JiraConnector  # the command's only Jira client

    try:
        settings = Settings.from_env(os.environ)
        config = load_config(settings.impact_config)
    except (SettingsError, ConfigError) as exc:
        _fail(str(exc))
    jira = JiraConnector.from_settings(settings, field=config.field)
    try:
        review = plan_board(board_id, config, jira)
    except RankRefusedError as exc:
        _fail(str(exc))
    except JiraError as exc:
        _fail(f"board {board_id}: {exc}")
    plan = review.plan
    echo(review.describe())
    if not apply:
        if plan.calls:
            echo("Dry run: nothing was changed. Run again with --apply to carry it out.")
        return
    if not plan.calls:
        return
    try:
        apply_rerank(board_id, plan, jira)
    except RankPartialError as exc:
        _fail(f"Applied, but {exc}. {AGAIN}")
    except JiraError as exc:
        _fail(f"Stopped: {exc}. {AGAIN}")
    echo(
        f"Applied: {plan.moved} issue{'' if plan.moved == 1 else 's'} moved in "
        f"{len(plan.calls)} rank call{'' if len(plan.calls) == 1 else 's'}."
    )


def _fail(message: str) -> NoReturn:
    echo(message, err=True)
    sys.exit(1)
