"""``jira-impact rerank --board N [--apply]``: show, then on request carry out, a board's rerank.

With ``--apply`` the board's lock is held from the plan to the last rank call (in the queue's
store, the one the worker's placement runs and scheduled reranks take), so the board does not
change under the plan; the calls end ``within_lease`` of it (``DELIVERY_LEASE_SECONDS``), and a
rerank that would need longer stops and is run again. Registered in ``commands.cli`` with
``main.add_command(rerank_command)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import click
from huey.exceptions import TaskLockedException

from commands.common import config_of, fail, plural, settings_from_env
from commands.output import echo
from connector.errors import JiraError, RankPartialError
from pipeline.calls import within_lease
from pipeline.placements import board_lock
from pipeline.queue import make_huey
from pipeline.ranking import RankRefusedError, apply_rerank, plan_board
from service.settings import Settings

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

    settings = settings_from_env()
    config = config_of(settings)
    jira = JiraConnector.from_settings(settings, field=config.field)
    limit = within_lease(jira, settings.lease_seconds) if apply else nullcontext()
    with holding_board(settings, board_id) if apply else nullcontext(), limit:
        try:
            review = plan_board(board_id, config, jira)
        except RankRefusedError as exc:
            fail(str(exc))
        except JiraError as exc:
            fail(f"board {board_id}: {exc}")
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
            fail(f"Applied, but {exc}. {AGAIN}")
        except JiraError as exc:
            fail(f"Stopped: {exc}. {AGAIN}")
    echo(f"Applied: {plural(plan.moved, 'issue')} moved in {plural(len(plan.calls), 'rank call')}.")


@contextmanager
def holding_board(settings: Settings, board_id: int) -> Iterator[None]:
    """The board's lock, or exit 1 when the worker is placing issues on it or reranking it."""
    lock = make_huey(settings).lock_task(
        board_lock(board_id), ttl=math.ceil(settings.lease_seconds)
    )
    try:
        lock.acquire()
    except TaskLockedException:
        fail(
            f"board {board_id} is being placed or reranked by the worker right now: "
            "run the command again in a moment"
        )
    try:
        yield
    finally:
        lock.release()
