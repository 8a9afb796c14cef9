"""The admin's commands against the live Jira: ``check``, ``backfill`` and ``webhook``.

Registered in ``commands.cli`` with ``main.add_command(...)``. Settings come from the environment
as for the web and worker processes. Exit codes: 0 all well, 1 a problem found or Jira failed
(the message says what to do), 2 a usage mistake (click's own), 3 (``webhook register``) the
webhook was registered but Jira does not show its JQL filter: a step by hand is left.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from typing import Any

import click

from commands.backfill import (
    CHANGED,
    FAILED,
    GONE,
    SKIPPED,
    STATE_DIR,
    Backfill,
    IssueResult,
    Progress,
    Report,
    format_table,
    summarise,
)
from commands.common import config_of, fail, plural, settings_from_env
from commands.output import echo
from connector.admin import AdminWebhook, JiraAdmin
from connector.client import JiraConnector
from connector.errors import JiraError
from impact.config import ConfigError, load_config
from impact.model import ImpactConfig
from jira_setup.check import Finding, is_receiver_url, redact_url, run_checks
from jira_setup.webhook import (
    DEFAULT_WEBHOOK_NAME,
    by_hand,
    delivery_url,
    filter_problem,
    projects_jql,
    same_target,
    url_problem,
    with_url_variables,
)
from pipeline.placements import PlacementQueue
from pipeline.queue import make_huey
from service.settings import Settings

UNCONFIRMED = 3  # webhook register's exit status: registered, its filter left to set by hand


def _connector(settings: Settings, config: ImpactConfig) -> JiraConnector:
    return JiraConnector.from_settings(settings, field=config.field)


# ---------------------------------------------------------------------------------------------
# check


@click.command("check")
def check_command() -> None:
    """Check the config, then the live Jira against it.

    The impact field exists and each of its options maps to a level; each project exists and
    the service account holds Browse projects, Edit issues, Add comments and Schedule issues
    where needed; each board's filter is ordered by Rank; an admin webhook sends the projects'
    issue events here. One line per finding, failed ones with how to fix them. Exit 1 when
    anything is wrong.
    """
    settings = settings_from_env()
    try:
        config = load_config(settings.impact_config)
    except ConfigError as exc:
        for path, message in exc.errors:
            where = f"{exc.source}: {path}" if path else exc.source
            echo(str(Finding(False, "config", f"{where}: {message}", "edit the file")))
        fail(f"{plural(len(exc.errors), 'config error')}: Jira was not checked")
    keys = ", ".join(p.key for p in config.projects) or "none"
    summary = (
        f"{config.source}: {plural(len(config.levels), 'level')}, "
        f"{plural(len(config.rules), 'rule')}, projects {keys}"
    )
    findings = [
        Finding(True, "config", summary),
        *run_checks(settings, config, _connector(settings, config)),
    ]
    for finding in findings:
        echo(str(finding))
    problems = sum(1 for f in findings if not f.ok)
    if problems:
        fail(f"{plural(problems, 'problem')} found")
    echo(f"All {len(findings)} checks passed.")


# ---------------------------------------------------------------------------------------------
# backfill


@click.command("backfill")
@click.option("--jql", required=True, help='The issues to triage, e.g. "project = SHOP".')
@click.option("--apply", "apply", is_flag=True, help="Carry the changes out (default: only count).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many issues this run.")
@click.option(
    "--no-comments", is_flag=True, help="Do not post the ask for the impact on these issues."
)
@click.option(
    "--no-rank",
    is_flag=True,
    help="Do not place issues on the board one by one; order it after with `rerank --apply`.",
)
@click.option("--details", is_flag=True, help="Also list each issue that changes.")
@click.option("--restart", is_flag=True, help="Forget what an interrupted run of this JQL did.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=STATE_DIR,
    show_default=True,
    help="Where an --apply run keeps its progress.",
)
def backfill_command(
    jql: str,
    apply: bool,
    limit: int | None,
    no_comments: bool,
    no_rank: bool,
    details: bool,
    restart: bool,
    state_dir: str,
) -> None:
    """Triage issues that already exist, as the webhook triages new ones.

    A dry run by default: prints a table of what would change, per impact level, and changes
    nothing. With --apply the changes are made and each issue placed in its band on the board.
    Rate limits are waited out. An --apply run that stops (Ctrl-C, Jira failing) keeps its
    progress: the same command again continues where it stopped. Exit 1 when the run stopped
    early or an issue failed.
    """
    settings = settings_from_env()
    config = config_of(settings)
    jira = _connector(settings, config)
    progress = Progress.for_jql(state_dir, jql=jql, jira_url=settings.jira_url)
    if restart:
        progress.clear()
    backfill = Backfill(
        jira,
        JiraAdmin(jira),
        config,
        apply=apply,
        comments=not no_comments,
        rank=not no_rank,
        progress=progress,
    )
    if apply and not no_rank:  # issues that enter a band wait for the worker's placement run
        backfill.placements = PlacementQueue(
            make_huey(settings),
            delay=settings.placement_delay_seconds,
            lease=settings.lease_seconds,
        )
    with ExitStack() as stack:
        bars: list[Any] = []  # the bar, once the issues are listed and counted

        def listed(count: int) -> None:
            bar = click.progressbar(
                length=count,
                label="Triaging",
                file=sys.stderr,
                show_pos=True,
                hidden=not sys.stderr.isatty(),  # a bar is for people, not for logs and pipes
            )
            bars.append(stack.enter_context(bar))

        def step(result: IssueResult) -> None:
            bars[0].update(1)

        backfill.on_wait = lambda line: echo(line, err=True)  # progress while Jira is away
        report = backfill.run(jql, limit=limit, on_listed=listed, on_result=step)
    _print_report(report, config, details=details)
    if not apply and progress.done():
        echo(f"(An interrupted --apply run of this JQL left progress in {progress.path}.)")
    if apply and report.left + report.count(FAILED):
        echo(f"Progress is kept in {progress.path}: run the same command to continue.")
    if report.stopped:  # the last line: what stopped it, and what to do
        fail(f"Stopped: {report.stopped}")
    if report.count(FAILED):
        fail(
            f"{plural(report.count(FAILED), 'issue')} failed (Jira's reasons above); run the "
            "same command again to retry them"
        )


def _print_report(report: Report, config: ImpactConfig, *, details: bool) -> None:
    earlier = (
        f"; {report.done_before} done by an earlier run, skipped" if report.done_before else ""
    )
    if report.stopped and not report.listed:
        return  # stopped before Jira listed anything: there is nothing to count
    echo(f"{report.jql}: {plural(report.listed, 'issue')}{earlier}")
    if details:
        for result in report.results:
            if result.status == CHANGED and result.plan is not None:
                echo(f"  {result.plan.summary()}")
    echo(format_table(summarise(report.results, config), applied=report.applied))
    for status, what in (
        (SKIPPED, "not in a configured project, skipped"),
        (GONE, "deleted or moved since listed, skipped"),
        (FAILED, "failed"),
    ):
        picked = [r for r in report.results if r.status == status]
        if picked:
            echo(f"{plural(len(picked), 'issue')} {what}: {', '.join(r.key for r in picked[:20])}")
        if status == FAILED:
            for result in picked:
                echo(f"  {result.key}: {result.error}", err=True)
    notes = sorted({note for r in report.results if r.plan for note in r.plan.notes})
    for note in notes:
        echo(f"note: {note}")
    changed = report.count(CHANGED)
    if report.left:
        echo(f"{plural(report.left, 'issue')} left for another run.")
    if not report.applied:
        then = " Run again with --apply to carry it out." if changed else ""
        echo(f"Dry run: nothing was changed; {plural(changed, 'issue')} would change.{then}")
    else:
        echo(f"Applied: {plural(changed, 'issue')} changed.")


# ---------------------------------------------------------------------------------------------
# webhook register / list


@click.group("webhook")
def webhook_group() -> None:
    """The Jira admin webhook that sends issue events to this service (needs Administer Jira)."""


@webhook_group.command("register")
@click.option(
    "--url",
    required=True,
    help="This service's public address of the receiver, ending in /webhooks/jira.",
)
@click.option("--jql", help="Which issues' events to send (default: the configured projects).")
@click.option(
    "--name", default=DEFAULT_WEBHOOK_NAME, show_default=True, help="Its name in Jira's list."
)
def webhook_register(url: str, jql: str | None, name: str) -> None:
    """Create the admin webhook that sends issue events here.

    Issue created and updated events of the configured projects (or --jql), signed with
    JIRA_WEBHOOK_SECRET (or, with only JIRA_WEBHOOK_TOKEN set, the token added to the URL),
    through the site's webhook API (Data Center 10 and later have their own). The webhook is
    then read back: Jira must show the JQL filter it was sent. Exit 1 when a webhook to that URL
    exists already or Jira refuses; exit 3 when it was registered but its filter cannot be
    confirmed (the step to do by hand is printed).
    """
    problem = url_problem(url)
    if problem:
        raise click.BadParameter(problem, param_hint="--url")
    settings = settings_from_env()
    config = config_of(settings)
    if jql is None:
        if not config.projects:
            raise click.UsageError(f"{config.source} configures no project: give --jql")
        jql = projects_jql([p.key for p in config.projects])
    secret = settings.webhook_secret
    admin = JiraAdmin(_connector(settings, config))
    try:
        url = with_url_variables(delivery_url(url, settings), admin.webhook_api())
        same = [h for h in admin.webhooks() if same_target(h.url, url)]
        if same:
            fail(
                f"a webhook to {redact_url(same[0].url)} is registered already: "
                f"{_describe(same[0])}; delete it in Jira first to register it again"
            )
        registered = admin.register_webhook(name=name, url=url, jql=jql, secret=secret)
    except JiraError as exc:
        fail(f"Jira refused: {exc}")
    if not secret and not settings.webhook_token:
        echo("warning: registered unsigned (neither JIRA_WEBHOOK_SECRET nor a token set)")
    shown = registered.read or registered.made
    echo(f"Registered {_describe(shown)}")
    echo(f"  events: {', '.join(shown.events) or '-'}")
    echo(f"  JQL: {shown.jql or '(every issue)'}")
    problem = filter_problem(registered, jql)
    if problem is not None:
        echo(f"By hand: {name!r} {problem}: {by_hand(name, url, jql)}.", err=True)
        sys.exit(UNCONFIRMED)
    echo("  (read back from Jira: it holds that filter)")


@webhook_group.command("list")
def webhook_list() -> None:
    """List Jira's admin webhooks, marking those that send here.

    Marked (*) are those whose URL ends in /webhooks/jira. Exit 1 when Jira refuses.
    """
    settings = settings_from_env()
    config = config_of(settings)
    admin = JiraAdmin(_connector(settings, config))
    try:
        hooks = admin.webhooks()
    except JiraError as exc:
        fail(f"Jira refused: {exc}")
    if not hooks:
        echo("No admin webhooks. Create one with: jira-impact webhook register --url …")
        return
    for hook in hooks:
        mark = "*" if is_receiver_url(hook.url) else " "
        echo(f"{mark} {_describe(hook)}")
        echo(f"    events: {', '.join(hook.events) or '-'}")
        echo(f"    JQL: {hook.jql or '(every issue)'}")
    echo("* sends to a jira-customer-impact receiver (/webhooks/jira)")


def _describe(hook: AdminWebhook) -> str:
    signed = {True: "signed", False: "not signed", None: "signing not shown"}[hook.signed]
    state = "enabled" if hook.enabled else "DISABLED"
    return f"{hook.name!r} -> {redact_url(hook.url)} ({signed}, {state})"
