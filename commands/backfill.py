"""``jira-impact backfill``: triage the issues that existed before the webhook did.

The JQL's issue keys are listed first (a snapshot: issues the run relabels may drop out of the
search, and must not shift the pages under it), then read in batches of 50 and each is decided
as the worker decides (``impact.decide``). A dry run only counts what would change. With
``apply`` each plan is carried out through the connector, and an issue that enters a band is
recorded as waiting on its board first, exactly as triage does (``pipeline.placements``): the
worker's placement run for the board puts it there, under the board's lock.

Resuming: an ``apply`` run records each finished issue in a small file under ``var/backfill/``
named after the JQL (and the Jira site); a run with the same JQL skips them, and the file is
removed once a run gets through every issue. Rate limits and Jira's brief failures are waited
out (``Retry-After`` when Jira sends it, else a growing pause) a bounded number of times; after
that the run stops, its progress kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from connector.errors import JiraAuthError, JiraError
from connector.protocol import Jira
from impact.model import ImpactConfig, Plan
from impact.snapshot import SnapshotError, issue_from_json
from pipeline.judge import Groups, fields_to_read, plan_for
from pipeline.placements import LocalPlacements, Placements
from pipeline.triage import carry_out
from pipeline.worker import RetryPolicy, retry_verdict

log = logging.getLogger(__name__)

T = TypeVar("T")
STATE_DIR = "var/backfill"
BATCH = 50
# A command may wait: about 2 minutes in all before it gives up and keeps its progress.
RETRIES = RetryPolicy(attempts=6, base=2.0, cap=60.0)

CHANGED = "changed"  # the plan writes something (or would, in a dry run)
UNCHANGED = "unchanged"  # already triaged as the config says
SKIPPED = "skipped"  # not in a configured project
FAILED = "failed"  # Jira refused this issue; the next run tries it again
GONE = "gone"  # deleted (or moved) since it was listed
FINISHED = frozenset({CHANGED, UNCHANGED, SKIPPED, GONE})


class IssueSearch(Protocol):
    """What the backfill reads from Jira's search (``connector.admin.JiraAdmin``)."""

    def issue_keys(self, jql: str) -> list[str]: ...

    def issues(self, keys: Sequence[str], *, fields: Sequence[str]) -> list[Mapping[str, Any]]: ...


@dataclass(frozen=True)
class IssueResult:
    key: str
    status: str  # CHANGED | UNCHANGED | SKIPPED | FAILED | GONE
    plan: Plan | None = None
    error: str | None = None


@dataclass
class Report:
    jql: str
    applied: bool
    listed: int = 0  # issues the JQL matched
    done_before: int = 0  # finished by an earlier, interrupted run: skipped
    left: int = 0  # still to do after this run (a --limit, or a stop)
    results: list[IssueResult] = field(default_factory=list)
    stopped: str | None = None  # why the run stopped early, if it did

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


class BackfillStoppedError(Exception):
    """Jira kept failing (or refused the credentials): the run stops, its progress kept."""


# ---------------------------------------------------------------------------------------------
# Progress of an --apply run


class Progress:
    """Finished issue keys of a run, one JSON line each after a header naming the JQL; appended
    as issues finish, so an interruption loses at most the issue in hand."""

    def __init__(self, path: Path, *, jql: str, jira_url: str) -> None:
        self.path = path
        self.header = {"jql": jql, "jira": jira_url}

    @classmethod
    def for_jql(cls, directory: str | Path, *, jql: str, jira_url: str) -> Progress:
        digest = hashlib.sha256(f"{jira_url}\n{jql}".encode()).hexdigest()[:16]
        return cls(Path(directory) / f"{digest}.jsonl", jql=jql, jira_url=jira_url)

    def done(self) -> set[str]:
        """The keys finished so far; empty when there is no file (or it is another JQL's)."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return set()
        if not lines or _json_line(lines[0]) != self.header:
            return set()
        found = (_json_line(line) for line in lines[1:])
        return {
            str(entry["done"]) for entry in found if isinstance(entry, dict) and "done" in entry
        }

    def mark(self, key: str) -> None:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.header) + "\n")
        with self.path.open("a") as file:
            file.write(json.dumps({"done": key}) + "\n")

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _json_line(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:  # a line cut short by a crash
        return None


# ---------------------------------------------------------------------------------------------
# The run


@dataclass
class Backfill:
    jira: Jira
    search: IssueSearch
    config: ImpactConfig
    apply: bool = False
    comments: bool = True  # post the missing-impact ask, as the config says
    rank: bool = True  # place each re-classified issue in its band (off: rerank afterwards)
    progress: Progress | None = None  # used with apply only
    sleep: Callable[[float], None] = field(default=lambda seconds: time.sleep(seconds))
    jitter: Callable[[], float] = random.random
    policy: RetryPolicy = RETRIES
    placements: Placements = field(default_factory=LocalPlacements)  # the worker's, to apply
    on_wait: Callable[[str], None] = lambda line: None  # hears each wait for Jira, as it starts

    def __post_init__(self) -> None:
        self._groups = Groups(self.jira, self.config)  # a reporter's groups, read once a run

    def run(
        self,
        jql: str,
        *,
        limit: int | None = None,
        on_listed: Callable[[int], None] = lambda n: None,
        on_result: Callable[[IssueResult], None] = lambda r: None,
    ) -> Report:
        """Triage the issues ``jql`` matches, at most ``limit`` of those not done yet.
        ``on_listed`` hears how many will be looked at, ``on_result`` each issue's outcome."""
        report = Report(jql, applied=self.apply)
        try:
            field_id = self._retried(self.jira.field_id)
            keys = self._retried(lambda: self.search.issue_keys(jql))
        except BackfillStoppedError as exc:
            report.stopped = str(exc)
            return report
        except JiraError as exc:
            report.stopped = _stop_reason(exc)
            return report
        done = self.progress.done() if self.apply and self.progress else set()
        todo = [key for key in keys if key not in done]
        report.listed, report.done_before = len(keys), len(keys) - len(todo)
        chosen = todo if limit is None else todo[:limit]
        report.left = len(todo) - len(chosen)
        on_listed(len(chosen))
        fields = fields_to_read(field_id)
        try:
            for start in range(0, len(chosen), BATCH):
                batch = chosen[start : start + BATCH]
                by_key = self._fetch(batch, fields)
                for key in batch:
                    result = self._one(key, by_key.get(key), field_id)
                    report.results.append(result)
                    if self.apply and self.progress and result.status in FINISHED:
                        self.progress.mark(key)
                    on_result(result)
        except (BackfillStoppedError, JiraError) as exc:
            report.stopped = str(exc)
        except KeyboardInterrupt:  # Ctrl-C: what finished is recorded; say so and stop
            report.stopped = "interrupted"
        report.left += len(chosen) - len(report.results)
        if self.apply and self.progress and not report.left and not report.count(FAILED):
            self.progress.clear()
        return report

    def _fetch(self, keys: Sequence[str], fields: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        found = self._retried(lambda: self.search.issues(keys, fields=fields))
        return {str(raw.get("key")): raw for raw in found}

    def _one(self, key: str, raw: Mapping[str, Any] | None, field_id: str | None) -> IssueResult:
        if raw is None:
            return IssueResult(key, GONE)
        try:
            return self._triage(key, raw, field_id)
        except BackfillStoppedError:
            raise
        except (JiraError, SnapshotError) as exc:
            return IssueResult(key, FAILED, error=str(exc))

    def _triage(self, key: str, raw: Mapping[str, Any], field_id: str | None) -> IssueResult:
        issue = issue_from_json(raw, impact_field_id=field_id)
        project = self.config.for_project(issue.project)
        if project is None:
            return IssueResult(key, SKIPPED, error=f"project {issue.project} is not configured")
        groups = self._groups
        plan = self._retried(lambda: plan_for(issue, project, groups=groups, config=self.config))
        if not self.comments:
            plan = without_ask(plan)
        if not self.rank:
            plan = replace(plan, rank=None)  # the board is ordered afterwards, by a rerank
        if plan.is_empty:
            return IssueResult(key, UNCHANGED, plan)
        if self.apply:
            # safe to repeat: the connector never posts the ask twice, and the issue waits to
            # be placed once whatever the tries
            self._retried(
                lambda: carry_out(plan, project, jira=self.jira, placements=self.placements)
            )
        return IssueResult(key, CHANGED, plan)

    def _retried(self, ask: Callable[[], T]) -> T:
        """``ask()``, waiting out rate limits and brief failures. Raises the ``JiraError`` of a
        request Jira refused as such; ``BackfillStoppedError`` when retrying did not help or the
        credentials were refused."""
        attempt = 1
        while True:
            try:
                return ask()
            except JiraAuthError as exc:
                raise BackfillStoppedError(_stop_reason(exc)) from exc
            except JiraError as exc:
                verdict = retry_verdict(exc, attempt, self.policy, self.jitter())
                if verdict.status == "failed":
                    raise
                if verdict.status == "dead":
                    raise BackfillStoppedError(_stop_reason(exc, attempt)) from exc
                log.info("Jira: %s; trying again in %.1f s", exc, verdict.delay)
                self.on_wait(
                    f"{exc.plain()}; trying again in {verdict.delay:.0f} s "
                    f"(attempt {attempt + 1} of {self.policy.attempts})"
                )
                self.sleep(verdict.delay)
                attempt += 1


def without_ask(plan: Plan) -> Plan:
    """The plan without the comment asking for the impact (``--no-comments``)."""
    return plan if plan.comment is None else replace(plan, comment=None)


def _stop_reason(exc: JiraError, attempts: int | None = None) -> str:
    if isinstance(exc, JiraAuthError):
        return f"Jira refused the credentials: {exc}"
    tries = f" after {attempts} attempts" if attempts else ""
    return f"Jira kept failing{tries}: {exc}; {exc.advice()}"


# ---------------------------------------------------------------------------------------------
# The summary


@dataclass(frozen=True)
class SummaryRow:
    impact: str  # a level name, "missing" or "total"
    issues: int = 0
    changed: int = 0
    inferred: int = 0  # reached by a rule, not the field
    labels: int = 0
    priority: int = 0
    field: int = 0
    comment: int = 0
    rank: int = 0


SUMMARY_COLUMNS = (
    "issues",
    "changed",
    "inferred",
    "labels",
    "priority",
    "field",
    "comment",
    "rank",
)


def summarise(results: Iterable[IssueResult], config: ImpactConfig) -> list[SummaryRow]:
    """One row per level (highest score first), one for issues with no impact, and the total;
    counted over the issues decided (changed or unchanged)."""
    names = [level.name for level in config.levels] + ["missing"]
    counts = {name: dict.fromkeys(SUMMARY_COLUMNS, 0) for name in [*names, "total"]}
    for result in results:
        plan = result.plan
        if plan is None or result.status not in (CHANGED, UNCHANGED):
            continue
        changes = {
            "issues": 1,
            "changed": int(result.status == CHANGED),
            "inferred": int(plan.rule is not None),
            "labels": int(bool(plan.add_labels or plan.remove_labels)),
            "priority": int(plan.priority is not None),
            "field": int(plan.field_value is not None),
            "comment": int(plan.comment is not None),
            "rank": int(plan.rank is not None),
        }
        for row in (plan.level or "missing", "total"):
            for column, n in changes.items():
                counts[row][column] += n
    return [SummaryRow(name, **counts[name]) for name in [*names, "total"]]


def format_table(rows: Sequence[SummaryRow], *, applied: bool) -> str:
    """The summary as aligned text columns."""
    heads = {
        "issues": "issues",
        "changed": "changed" if applied else "to change",
        "inferred": "by rule",
        "labels": "labels",
        "priority": "priority",
        "field": "field",
        "comment": "comment",
        "rank": "rank",
    }
    width = max(len("impact"), *(len(row.impact) for row in rows))
    lines = ["  ".join([f"{'impact':<{width}}", *(heads[c] for c in SUMMARY_COLUMNS)])]
    for row in rows:
        cells = [f"{getattr(row, c):>{len(heads[c])}}" for c in SUMMARY_COLUMNS]
        lines.append("  ".join([f"{row.impact:<{width}}", *cells]))
    return "\n".join(lines)
