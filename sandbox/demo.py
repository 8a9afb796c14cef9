"""``make demo``: the product's main job, end to end, against the bundled Jira sandbox.

Starts the sandbox (a project SHOP with a dozen realistic issues on board 1, and no impact field
yet) and the Procfile's web and worker processes. ``jira-impact setup --apply`` sets Jira up
(the field, its options, the screens); the people who filed issues state their impact; a second
``setup`` registers the admin webhook and finds the rest in place. Then it triages the existing
issues (``jira-impact backfill``), orders the board (``jira-impact rerank``), files a few new
issues as people do and lets the webhooks do the rest. Prints the board before and after, with
each issue's impact, labels and why it sits where it does, and the Jira calls made per issue.
Leaves nothing running.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

from impact.config import load_config
from impact.decide import decide, explain
from impact.model import ProjectConfig
from impact.snapshot import issue_from_json
from sandbox.catalog import IMPACT_FIELD
from sandbox.seed import stated_impacts
from sandbox.stack import ROOT, Stack

BOARD = 1
CONFIG = ROOT / "config" / "impact.toml"
NEW_ISSUES = [
    {
        "as": "ana",
        "summary": "Customers are charged twice when they retry a failed payment",
        "issuetype": "Bug",
        "components": ["Billing"],
        "description": "Three tickets today; card statements show two charges.",
    },
    {
        "as": "ben",
        "summary": "Flip-chart markers for the client workshop on Thursday",
        "impact": "Indirect: feeds customer-facing work",
        "description": "The consultants run a paid workshop at the client's office.",
    },
    {
        "as": "carla",
        "summary": "New monitor arm for the logistics desk",
        "description": "The current one wobbles.",
    },
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__)
    parser.add_argument("--flavour", choices=["cloud", "dc"], default="cloud")
    args = parser.parse_args(argv)
    project = load_config(CONFIG).for_project("SHOP")
    assert project is not None, "config/impact.toml configures project SHOP"
    started = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="impact-demo-") as tmp:
        say(f"Starting the Jira sandbox ({args.flavour}, no impact field yet), the web process")
        say("and the worker…")
        stack = Stack(Path(tmp), flavour=args.flavour, seed="demo", sandbox_args=["--no-field"])
        with stack:
            say(f"  Jira sandbox {stack.sandbox_url}   product {stack.app_url}")
            set_jira_up(stack)
            show_board(stack, project, "The board before: in the order the team left it")

            run(
                stack,
                "Registering the admin webhook (issue created / updated, signed with a secret)",
                "setup",
                "--url",
                f"{stack.app_url}/webhooks/jira",
                "--apply",
            )

            mark = stack.last_call()
            run(
                stack,
                "Triaging the existing issues",
                "backfill",
                "--jql",
                "project = SHOP",
                "--apply",
                "--no-rank",
            )
            stack.settle()
            backfill_calls = stack.calls(since=mark)

            run(stack, "Planning the board's order (dry run)", "rerank", "--board", str(BOARD))
            mark = stack.last_call()
            run(stack, "Applying it", "rerank", "--board", str(BOARD), "--apply")
            stack.settle()
            rerank_calls = stack.calls(since=mark)

            say("Filing new issues as people do; Jira's webhooks bring them to the product…")
            mark = stack.last_call()
            keys = []
            for fields in NEW_ISSUES:
                keys.append(stack.create_issue(**fields))
                say(f"  {keys[-1]} by {fields['as']}: {fields['summary']}")
            stack.settle()  # the placement runs included (queued jobs)
            new_calls = [c for c in stack.calls(since=mark) if c["user"] == "impact-bot"]

            show_board(stack, project, "The board after: customer-facing work first")
            show_calls(backfill_calls, rerank_calls, keys, new_calls)
            show_asks(stack)
    say(f"Done in {time.monotonic() - started:.0f}s; everything it started is stopped.")
    return 0


def set_jira_up(stack: Stack) -> None:
    """Set Jira up for the config, do what Data Center leaves to an admin, and let the people
    who filed issues state their impact in the new field. The webhook comes after (the first
    run leaves it, and exits 1), so that the backfill triages every issue."""
    run(
        stack,
        "Setting Jira up for config/impact.toml (the webhook comes later)",
        "setup",
        "--apply",
        allowed=(0, 1),
    )
    if stack.flavour == "dc":
        say("An admin adds the options and puts the field on the screens by hand, as Data Center's")
        say("REST API cannot (here through the sandbox's control API)…")
        config = load_config(CONFIG)
        fields = stack.jira("GET", "/rest/api/2/field").json()
        field_id = next(f["id"] for f in fields if f["name"] == config.field.name)
        values = [value for level in config.levels for value in level.values]
        stack.control("POST", f"/fields/{field_id}/options", json={"add": values})
        stack.control("POST", "/projects/SHOP/screen", json={"add": [field_id]})
    say("People state the impact of the issues they filed, now that the field is on their screens:")
    for key, person, value in stated_impacts():
        stack.control("POST", f"/issues/{key}/edit", json={"as": person, "impact": value})
        say(f"  {key} by {person}: {value}")


def run(stack: Stack, title: str, *command: str, allowed: tuple[int, ...] = (0,)) -> int:
    """Run a ``jira-impact`` command as an admin would, printing its output; its exit code,
    which must be one of ``allowed``."""
    say(f"{title}: jira-impact {' '.join(_quote(c) for c in command)}")
    done = subprocess.run(
        ["jira-impact", *command],
        cwd=stack.workdir,  # what a command keeps (backfill's progress) stays in the demo's folder
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    for line in (done.stdout + done.stderr).rstrip().splitlines():
        say(f"  │ {line}")
    if done.returncode not in allowed:
        raise SystemExit(f"jira-impact {command[0]} failed with exit code {done.returncode}")
    return done.returncode


def show_board(stack: Stack, project: ProjectConfig, title: str) -> None:
    say("")
    say(title)
    rows = [row for row in stack.board(BOARD) if row["status"] != "Done"]
    say(f"  {'#':>2}  {'key':<8} {'summary':<52} {'impact':<12} {'labels':<44} why")
    for n, row in enumerate(rows, 1):
        raw = stack.control("GET", f"/issues/{row['key']}")
        why, level = reason(raw, project)
        labels = ", ".join(sorted(row["labels"])) or "-"
        say(
            f"  {n:>2}  {row['key']:<8} {_cut(row['summary'], 52):<52} {level:<12} "
            f"{_cut(labels, 44):<44} {why}"
        )
    say("")


def reason(raw: dict[str, Any], project: ProjectConfig) -> tuple[str, str]:
    """Why the issue sits in its band: its level and how the level was reached."""
    issue = issue_from_json(raw, impact_field_id=IMPACT_FIELD)
    labels = set(issue.labels)
    if not labels & project.managed_labels:
        return "not triaged yet", "?"
    plan = decide(issue, project)
    return explain(plan), plan.level or "missing"


def show_calls(
    backfill: list[dict[str, Any]],
    rerank: list[dict[str, Any]],
    keys: list[str],
    new: list[dict[str, Any]],
) -> None:
    """The calls of each step; for the new issues, each one's own, then the placement run's
    (the issues wait for it together) and the lookups each worker thread makes once."""
    say("Jira calls the product made")
    for title, calls in (
        ("triaging the existing issues", backfill),
        ("ordering the board", rerank),
    ):
        mine = [c for c in calls if c["user"] == "impact-bot"]
        say(f"  {title}: {len(mine)} calls — {_tally(mine)}")
    for key in keys:
        own = [c for c in new if f"/issue/{key}" in c["path"]]
        say(f"  {key}: {len(own)} calls — {_tally(own)}")
    placing = [c for c in new if c["path"].startswith("/rest/agile/") and not _is_lookup(c["path"])]
    say(f"  placing the {len(keys)} new issues on the board together: {len(placing)} calls — "
        f"{_tally(placing)}")  # fmt: skip
    lookups = [c for c in new if _is_lookup(c["path"])]
    if lookups:
        say(f"  and {len(lookups)} one-time lookups a worker thread then caches")
    say("")


def _tally(calls: list[dict[str, Any]]) -> str:
    kinds = Counter(f"{c['method']} {_endpoint(c['path'])}" for c in calls)
    return ", ".join(f"{n}× {k}" for k, n in kinds.items())


def _is_lookup(path: str) -> bool:
    """Site and board facts each worker thread reads once and caches: not per-issue work."""
    return (
        path.endswith(("/serverInfo", "/field", "/myself", "/configuration")) or "/filter/" in path
    )


def show_asks(stack: Stack) -> None:
    asked = [row["key"] for row in stack.board(BOARD) if "needs-customer-impact" in row["labels"]]
    say(f"Issues asked for their impact (one comment each): {', '.join(asked) or 'none'}")
    if asked:
        body = stack.comments(asked[0])[0]["body"]
        say(f"  The comment on {asked[0]}:")
        for line in body.splitlines():
            say("    " + line)
    say("")


def _endpoint(path: str) -> str:
    parts = path.split("/")
    return "/".join("{key}" if "-" in p and p.split("-")[-1].isdigit() else p for p in parts)


def _cut(text: str, width: int) -> str:
    return textwrap.shorten(text, width=width, placeholder="…")


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg


def say(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
