"""Work in the queue's store is tied to the Jira site it came for: a worker started against
another site leaves it alone and says so, and ``jira-impact queue clear`` drops it. On real
SQLite and Redis, with the Procfile's worker against the sandbox."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from commands.cli import main
from impact.ranking import Pending
from pipeline.delivery import Delivery
from pipeline.placements import PlacementQueue
from pipeline.queue import DeliveryQueue, make_huey
from pipeline.sites import queue_name, site_url, work_in_store
from sandbox.stack import Stack, wait_until
from service.settings import Settings
from tests.servers import redis_server

OLD_SITE = "https://old-site.example.net/"


def test_a_site_is_its_url_whatever_its_spelling() -> None:
    assert site_url("HTTPS://Acme.Atlassian.NET/") == "https://acme.atlassian.net"
    assert queue_name("https://acme.atlassian.net/") == queue_name("https://ACME.atlassian.net")
    assert queue_name("https://acme.atlassian.net") != queue_name("https://other.atlassian.net")
    dc = queue_name("https://jira.example.com/jira")
    assert dc != queue_name("https://jira.example.com/other")
    assert re.fullmatch(r"jira_impact_[0-9a-f]{16}", dc)  # what Huey's Redis keeps of a name


@pytest.fixture(params=["sqlite", "redis"])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {"QUEUE_PATH": str(tmp_path / "queue.db")}
    else:
        with redis_server() as url:
            yield {"REDIS_URL": url}


def _settings(env: dict[str, str], jira_url: str) -> Settings:
    return Settings.from_env(
        {**env, "JIRA_URL": jira_url, "ALLOW_UNSIGNED_WEBHOOKS": "1", "JIRA_PAT": "x" * 12}
    )


def _old_work(env: dict[str, str]) -> None:
    """What a test run (or a former JIRA_URL) leaves: an issue waiting on board 1 with its
    placement run scheduled, and a delivery accepted but not taken."""
    huey = make_huey(_settings(env, OLD_SITE))
    PlacementQueue(huey, delay=0.5, lease=60).wait(1, Pending("SHOP-3", 100, "blocking"))
    body = {"webhookEvent": "jira:issue_created", "issue": {"key": "SHOP-6"}}
    delivery = Delivery(
        id="old-1",
        event="jira:issue_created",
        issue_key="SHOP-6",
        body=json.dumps(body),
        received_at=time.time(),
    )
    assert DeliveryQueue(huey).accept(delivery)


@pytest.mark.e2e
def test_a_worker_leaves_another_sites_work_alone_and_says_so(
    store_env: dict[str, str], tmp_path: Path
) -> None:
    stack_dir = tmp_path / "stack"
    env = {**store_env}
    if "QUEUE_PATH" in env:
        env["QUEUE_PATH"] = str(stack_dir / "queue.db")  # the stack's own store
    stack_dir.mkdir()
    _old_work(env)
    old = queue_name(OLD_SITE)

    with Stack(stack_dir, seed="demo", env={**env, "PLACEMENT_DELAY_SECONDS": "0.2"}) as stack:
        ours = Settings.from_env(stack.env())
        # Work of the worker's own site, for contrast: it is done.
        PlacementQueue(make_huey(ours), delay=0.2, lease=60).wait(1, Pending("SHOP-2", 10, "none"))
        mine = queue_name(ours.jira_url)
        wait_until(
            "the worker to place its own site's issue",
            lambda: all(w.name != mine for w in work_in_store(make_huey(ours))),
            timeout=60,
        )
        stack.settle()
        worker_log = stack.log("worker")

        # The other site's work is where it was, untouched.
        left = {w.name: w for w in work_in_store(make_huey(ours))}
        assert set(left) == {old}
        # (the placement run is queued or scheduled, as Huey keeps it: nothing ran it)
        assert (left[old].waiting, left[old].inbox, left[old].jobs + left[old].scheduled) == (
            1,
            1,
            2,
        )
        assert left[old].site == site_url(OLD_SITE)
        touched = [
            c for c in stack.calls() if "SHOP-3" in json.dumps(c) or "SHOP-6" in json.dumps(c)
        ]
        assert touched == []
        assert "board 1 has issues waiting and no placement run" not in worker_log
        # ... and the worker said so, with the way to drop it.
        said = [line for line in worker_log.splitlines() if "will not touch" in line]
        assert len(said) == 1, worker_log[-3000:]
        assert site_url(OLD_SITE) in said[0]
        assert f"jira-impact queue clear {old}" in said[0]
        assert "1 issue(s) waiting on a board" in said[0]

        # The command line lists it and drops it; this site's own work it refuses to drop.
        cli_env = {**stack.env(), "ENV_FILE": "/nonexistent"}
        listed = CliRunner().invoke(main, ["queue", "list"], env=cli_env)
        assert listed.exit_code == 0, listed.output
        assert f"left alone  {old} (for {site_url(OLD_SITE)})" in listed.output
        own = CliRunner().invoke(main, ["queue", "clear", queue_name(ours.jira_url)], env=cli_env)
        assert own.exit_code == 1
        assert "this site's own work" in own.output
        dropped = CliRunner().invoke(main, ["queue", "clear", old], env=cli_env)
        assert dropped.exit_code == 0, dropped.output
        assert dropped.output.startswith(f"Dropped {old} (for {site_url(OLD_SITE)})")
        assert work_in_store(make_huey(ours)) == []
        again = CliRunner().invoke(main, ["queue", "clear", old], env=cli_env)
        assert again.exit_code == 1
        assert "holds no work" in again.output
