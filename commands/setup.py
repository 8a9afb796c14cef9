"""``jira-impact setup`` (set Jira up for the config) and ``jira-impact config init`` (a starting
config from a Jira field). Registered in ``commands.cli``; thin: the plan is
``jira_setup.setup_plan``'s, the Jira calls ``jira_setup.setup``'s."""

from __future__ import annotations

import difflib
import json
import os
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import click

from commands.common import config_of, fail, plural, settings_from_env
from commands.output import echo
from connector.admin import JiraAdmin
from connector.client import JiraConnector, find_field
from connector.errors import JiraError
from impact.config import DEFAULT_CONFIG_PATH, ConfigError, parse_config
from impact.model import FieldRef
from jira_setup.check import Finding, quoted, redact_url
from jira_setup.setup import Done, SetupError, SetupReport, apply_plan, plan_site
from jira_setup.setup_plan import Change, Item, RegisterWebhook, Status
from jira_setup.starter import guess_levels, starter_config
from jira_setup.webhook import url_problem

_CONFIG_HELP = (
    "The impact config to set Jira up for (default: $IMPACT_CONFIG or config/impact.toml)."
)


@click.command("setup")
@click.option(
    "--url",
    help="This service's public address of the receiver, ending in /webhooks/jira: the admin "
    "webhook is registered there, unless one sends there already.",
)
@click.option("--apply", "apply", is_flag=True, help="Make the changes (default: only plan).")
@click.option("--config", "path", type=click.Path(dir_okay=False), help=_CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON, for scripts.")
def setup_command(url: str | None, apply: bool, path: str | None, as_json: bool) -> None:
    """Set Jira up as the config says, from a site without the impact field.

    Creates the select-list field named in [field] (unless it exists), makes sure its context
    covers the configured projects, adds an option for every level's values that is missing,
    puts the field on the projects' create and edit screens, and with --url registers the admin
    webhook. Then checks the boards and the service account's permissions. Without --apply it
    only reads Jira and prints the plan. Needs Administer Jira. Options a person made are never
    deleted or renamed; on Data Center, which has no REST API for contexts, options and screen
    schemes, those steps are listed for doing by hand.

    Exit 1 when Jira cannot be read, or when --apply leaves something to do.
    """
    if url is not None and (problem := url_problem(url)):
        raise click.BadParameter(problem, param_hint="--url")
    settings = settings_from_env()
    if path is not None:
        settings = replace(settings, impact_config=path)
    config = config_of(settings)
    jira = JiraConnector.from_settings(settings, field=config.field)
    try:
        report = plan_site(settings, config, jira, url=url)
        if not as_json:
            echo(report.connection)
            for finding in report.credential:
                echo(str(finding))
            for item in report.plan.items:
                echo(item.line())
        if apply:
            shown = _show_done if not as_json else lambda done: None
            report = apply_plan(report, settings, config, jira, url=url, on_done=shown)
    except SetupError as exc:
        fail(f"setup: {exc}")
    if as_json:
        echo(json.dumps(_as_json(report), indent=2))
    else:
        _print_summary(report)
    left = report.left
    if apply and (report.failed or left.changes or left.of(Status.MANUAL)):
        sys.exit(1)


def _show_done(done: Done) -> None:
    echo(f"{'done':<8}{done.item.subject}: {done.made}")


def _print_summary(report: SetupReport) -> None:
    if report.failed:
        echo(f"Stopped: {report.failed}", err=True)
        echo(f"Applied: {plural(len(report.done), 'change')} before it stopped.")
        return
    changes = len(report.plan.changes)
    manual = report.left.of(Status.MANUAL)
    by_hand = f" {plural(len(manual), 'step')} to do by hand (marked 'by hand')." if manual else ""
    if report.final is None:
        if changes:
            echo(
                f"Dry run: nothing was changed; {plural(changes, 'change')} to make.{by_hand} "
                "Run again with --apply to make the changes."
            )
        else:
            echo(f"Nothing to change.{by_hand}")
        return
    for item in manual:
        if item not in report.plan.items:  # found only once the changes were made
            echo(item.line())
    waiting = report.final.changes
    if waiting:
        echo(f"{plural(len(waiting), 'change')} could not be made yet: run setup again.")
    if report.done:
        echo(f"Applied: {plural(len(report.done), 'change')}.{by_hand}")
    else:
        echo(f"Nothing to change: Jira is set up as the config says.{by_hand}")


def _as_json(report: SetupReport) -> dict[str, Any]:
    return {
        "jira": report.connection,
        "credential": [
            {
                "ok": f.ok,
                "subject": f.subject,
                "message": f.message,
                **({"fix": f.fix} if f.fix else {}),
            }
            for f in report.credential
        ],
        "applied": report.final is not None,
        "items": [_item_json(item) for item in report.plan.items],
        "done": [{"subject": d.item.subject, "made": d.made} for d in report.done],
        "left": [_item_json(item) for item in report.left.items if item.status is not Status.OK],
        "failed": report.failed,
    }


def _finding_json(finding: Finding) -> dict[str, Any]:
    found: dict[str, Any] = {
        "ok": finding.ok,
        "subject": finding.subject,
        "message": finding.message,
    }
    return found | ({"fix": finding.fix} if finding.fix else {})


def _item_json(item: Item) -> dict[str, Any]:
    found: dict[str, Any] = {
        "status": item.status.value,
        "subject": item.subject,
        "message": item.message,
    }
    if item.fix:
        found["fix"] = item.fix
    if item.who:
        found["who"] = item.who
    if item.change is not None:
        found["change"] = _change_json(item.change)
    return found


def _change_json(change: Change) -> dict[str, Any]:
    if isinstance(change, RegisterWebhook):  # its URL may carry the token
        change = replace(change, url=redact_url(change.url))
    action = "".join(f"-{c.lower()}" if c.isupper() else c for c in type(change).__name__)
    return {"action": action.lstrip("-"), **asdict(change)}


# ---------------------------------------------------------------------------------------------
# config init


def near_names(name: str, names: Sequence[str], *, most: int = 5) -> list[str]:
    """The names most like ``name``: those that differ in case or spacing, contain it or are
    contained in it, then those close in spelling (difflib), each once, best first."""
    folded = " ".join(name.lower().split())
    by_fold: dict[str, str] = {}
    for candidate in names:
        if candidate.strip():
            by_fold.setdefault(" ".join(candidate.lower().split()), candidate)
    found = [by_fold[f] for f in by_fold if f == folded or (folded in f or f in folded)]
    close = difflib.get_close_matches(folded, list(by_fold), n=most, cutoff=0.6)
    found += [by_fold[f] for f in close]
    return list(dict.fromkeys(found))[:most]


@click.command("init")
@click.option(
    "--from-field",
    "field_name",
    required=True,
    help='The name of the Jira select field to start from, e.g. "Customer Impact".',
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default=lambda: os.environ.get("IMPACT_CONFIG") or DEFAULT_CONFIG_PATH,
    show_default="$IMPACT_CONFIG or " + DEFAULT_CONFIG_PATH,
    help="Where to write the config.",
)
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
@click.option(
    "--project",
    "projects",
    multiple=True,
    help="A project to configure (repeatable). On Data Center, options are read from these "
    "projects' create screens.",
)
def config_init_command(
    field_name: str, output: str, force: bool, projects: tuple[str, ...]
) -> None:
    """Write a starting impact.toml that maps a Jira field's options to levels.

    Each option gets the level its words suggest (or, failing that, its place in Jira's list);
    every guess is written as a comment beside it, for you to check. Refuses to overwrite an
    existing file unless --force. Exit 1 when the field is not found or has no options.
    """
    target = Path(output)
    if target.exists() and not force:
        fail(f"{target} exists already: give --output for another file, or --force")
    settings = settings_from_env()
    wanted = FieldRef(name=field_name)
    jira = JiraConnector.from_settings(settings, field=wanted)
    try:
        fields = jira.fields()
        found = find_field(fields, wanted)
        if found is None:
            near = near_names(field_name, [str(f.get("name", "")) for f in fields])
            hint = f"; near names it has: {quoted(near)}" if near else ""
            fail(f"Jira has no field named {field_name!r} (names must match exactly){hint}")
        options = JiraAdmin(jira).field_options(found.id, [p.upper() for p in projects])
    except JiraError as exc:
        fail(f"Jira refused: {exc}" if exc.status else str(exc))
    if not options:
        fail(
            f"found no options of {field_name!r} ({found.id}): on Data Center, or without "
            "Administer Jira, name with --project the projects whose create screens show it"
        )
    text = starter_config(field_name, options, [p.upper() for p in projects])
    try:
        parse_config(tomllib.loads(text), source=str(target))  # what is written must load
    except ConfigError as exc:
        fail(f"the starting config would not load, so nothing was written:\n{exc}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    echo(f"Wrote {target}: {plural(len(options), 'option')} of {field_name!r} mapped:")
    for guess in guess_levels(options):
        echo(f"  {guess.option!r} -> {guess.level} ({guess.why})")
    echo(f"Check each guess in {target}, then run: jira-impact config check --config {target}")
