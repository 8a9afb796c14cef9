"""The admin pages: server-rendered, no JavaScript, behind ``ADMIN_TOKEN`` (see ``auth``).

What they read, all from ``current_app.extensions``: ``impact.settings`` and ``impact.config``;
the delivery log, the queue and its inbox (``webhooks.health``); a Jira client from
``impact.admin.jira`` (a callable; by default a ``JiraConnector`` built from the settings, per
request); the checks from ``impact.admin.checks`` (a callable ``(settings, config, jira) ->
findings``; by default ``jira_setup.check.run_checks``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from connector.errors import JiraError
from impact.decide import MISSING_BAND
from impact.model import ProjectConfig
from impact.ranking import PINNED_LABEL, Move, RerankPlan
from pipeline.delivery_log import DEAD, DONE, FAILED, IGNORED, STATUSES, Entry
from pipeline.judge import Judged
from service.errors import short_error
from webhooks import pages
from webhooks.admin.auth import COOKIE, COOKIE_PATH, CSRF_FIELD, Admin, AdminAuth, safe_next
from webhooks.health import CREDENTIAL_ADVICE, delivery_stores, jira_site
from webhooks.pages import Door, let_in, page_jira

log = logging.getLogger(__name__)

bp = Blueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
)

LIST_LIMIT = 200
REPLAYABLE = (DONE, IGNORED, FAILED, DEAD)
GIVEN_UP = (DEAD, FAILED)
IN_PROGRESS = ("queued", "running")
_OPEN_ENDPOINTS = {"admin.login", "admin.static"}
REALM = "jira-customer-impact admin"
_NOTICES = {
    "replayed": "Queued again, with a fresh count of attempts.",
    "not-replayed": "Not replayed: it is unknown, or still queued or running.",
    "replay-unqueued": "Recorded as queued, but the queue did not take it: the worker's "
    "recovery sweep will pick it up.",
    "logged-out": "You are logged out.",
}


# --------------------------------------------------------------------------------------------
# Access


def _auth() -> AdminAuth:
    auth: AdminAuth | None = current_app.extensions.get("impact.admin.auth")
    if auth is None:
        auth = current_app.extensions["impact.admin.auth"] = AdminAuth(pages.settings().admin_token)
    return auth


def _door() -> Door:
    return Door("admin", _auth(), COOKIE, COOKIE_PATH, "the admin token")


@bp.before_request
def guard() -> ResponseReturnValue | None:
    if request.endpoint in _OPEN_ENDPOINTS:
        return None
    admin, refused = let_in(_door(), login_page=_login_page, message_page=_message)
    g.admin = admin
    return refused


@bp.after_request
def harden(response: Response) -> Response:
    return pages.harden(response, csp=pages.content_policy(), realm=REALM)


@bp.context_processor
def page_context() -> dict[str, Any]:
    admin: Admin | None = g.get("admin")
    return {
        "admin": admin,
        "csrf_field": CSRF_FIELD,
        "csrf_token": admin.csrf if admin else None,
        "when": when,
        "first_line": first_line,
        "call_count": call_count,
    }


def when(epoch: float | None) -> str:
    if epoch is None:
        return "–"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def first_line(text: str | None, limit: int = 160) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def call_count(calls: str | None) -> int:
    """Jira calls in the log's text: every attempt's indented lines (see ``attempt_log``)."""
    return sum(1 for line in (calls or "").splitlines() if line.startswith("  "))


def _page(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    if template != "login.html":
        context.setdefault("banners", _banners())
    return render_template(f"admin/{template}", **context), status


def _banners() -> list[str]:
    """What every admin page says first: Jira refusing the credential, and what to do; the
    credential's expiry from 14 days before (``JIRA_TOKEN_EXPIRES``)."""
    from connector.breaker import CREDENTIAL

    found = []
    site = jira_site(current_app)
    if site is not None:
        try:
            hold = site().hold
        except Exception:  # the queue's store: the overview says so
            hold = None
        if hold is not None and hold.cause == CREDENTIAL:
            found.append(f"{CREDENTIAL_ADVICE}.")
    settings = current_app.extensions.get("impact.settings")
    warning = settings.expiry_warning() if settings is not None else None
    if warning:
        found.append(warning[0].upper() + warning[1:] + ".")
    return found


def _message(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("admin/message.html", title=title, message=message), status


def _login_page(status: int, problem: str | None = None) -> ResponseReturnValue:
    return _page(
        "login.html",
        status,
        title="Log in",
        enabled=_auth().enabled,
        problem=problem,
        next=safe_next(pages.login_target(), ""),
        notice=_NOTICES.get(request.args.get("notice", "")),
    )


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if request.method == "GET":
        if _auth().session_id(request.cookies.get(COOKIE)):
            return redirect(url_for(".overview"), 303)
        return _login_page(401)
    return pages.log_in(
        _door(), home=url_for(".overview"), login_page=_login_page, message_page=_message
    )


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    return pages.log_out(_door(), then=url_for(".login", notice="logged-out"))


# --------------------------------------------------------------------------------------------
# Deliveries


def _issue_filter(raw: str | None) -> str | None:
    text = (raw or "").strip().upper()
    return text[:100] or None


@bp.get("/")
def overview() -> ResponseReturnValue:
    delivery_log, queue = delivery_stores(current_app)
    counts: dict[str, int] | None = None
    pending: int | None = None
    waiting: int | None = None
    problem = None
    try:  # the inbox first: it still answers when the log is down, when it matters most
        waiting = queue.inbox.size() if queue is not None else None
        pending = queue.pending() if queue is not None else None
        counts = delivery_log.counts() if delivery_log is not None else None
    except Exception as exc:
        problem = f"The delivery log or the queue did not answer: {short_error(exc)}"
    site = jira_site(current_app)
    jira = None
    if site is not None:
        try:
            jira = site()
        except Exception as exc:
            problem = problem or f"The queue did not answer: {short_error(exc)}"
    return _page(
        "overview.html",
        jira=jira,
        title="Overview",
        active="overview",
        counts=counts,
        statuses=STATUSES,
        pending=pending,
        waiting=waiting,
        problem=problem,
        boards=_boards(),
        inline=delivery_log is None,
    )


@bp.get("/deliveries")
def deliveries() -> ResponseReturnValue:
    status = request.args.get("status") or None
    issue = _issue_filter(request.args.get("issue"))
    problem = None
    if status is not None and status not in STATUSES:
        problem, status = f"There is no status {status!r}; showing every status.", None
    return _delivery_list(
        "deliveries.html",
        title="Deliveries",
        active="deliveries",
        statuses=(status,) if status else (),
        issue=issue,
        chosen_status=status,
        problem=problem,
    )


@bp.get("/dead")
def dead() -> ResponseReturnValue:
    return _delivery_list(
        "dead.html", title="Dead and failed deliveries", active="dead", statuses=GIVEN_UP
    )


def _delivery_list(
    template: str,
    *,
    statuses: Sequence[str],
    issue: str | None = None,
    problem: str | None = None,
    **context: Any,
) -> ResponseReturnValue:
    delivery_log, _queue = delivery_stores(current_app)
    rows: list[Entry] = []
    status = 200
    if delivery_log is not None:
        try:
            rows = delivery_log.entries(status=statuses, issue_key=issue, limit=LIST_LIMIT)
        except Exception as exc:
            problem, status = f"The delivery log did not answer: {short_error(exc)}", 503
    return _page(
        template,
        status,
        rows=rows,
        issue=issue,
        all_statuses=STATUSES,
        problem=problem,
        replayable=REPLAYABLE,
        limit=LIST_LIMIT,
        inline=delivery_log is None,
        **context,
    )


# A delivery's identifier is Jira's header or the sender's: it may hold "/", "..", "?" or "#".
# So it travels in the query string (GET) or the form (POST), which url_for and the browser
# encode whole, never as a path segment a browser would resolve.


@bp.get("/delivery")
def delivery() -> ResponseReturnValue:
    identifier = request.args.get("id", "")
    delivery_log, _queue = delivery_stores(current_app)
    entry = delivery_log.get(identifier) if delivery_log is not None else None
    if entry is None:
        return _page(
            "message.html",
            404,
            title="No such delivery",
            message=f"There is no delivery {identifier!r} in the log.",
        )
    return _page(
        "delivery.html",
        title=f"Delivery {entry.identifier}",
        active="deliveries",
        entry=entry,
        replayable=entry.status in REPLAYABLE,
        refresh=entry.status in IN_PROGRESS,
        notice=_NOTICES.get(request.args.get("notice", "")),
    )


@bp.post("/replay")
def replay() -> ResponseReturnValue:
    identifier = request.form.get("id", "")
    delivery_log, queue = delivery_stores(current_app)
    if delivery_log is None or queue is None:
        return _page(
            "message.html",
            409,
            title="No queue",
            message="This process triages inline: there is no queue to replay into.",
        )
    replayed = delivery_log.replay([identifier], now=time.time())
    notice = "replayed" if replayed else "not-replayed"
    for again in replayed:
        try:
            queue.enqueue(again)
        except Exception as exc:
            log.error("admin: replay of %s not queued: %s", again.id, short_error(exc))
            notice = "replay-unqueued"
        else:
            log.info("admin: replayed delivery %s for %s", again.id, again.issue_key)
    return redirect(url_for(".delivery", id=identifier, notice=notice), 303)


# --------------------------------------------------------------------------------------------
# Boards


@dataclass(frozen=True)
class BoardRow:
    position: int  # 1-based, as people count a board
    key: str
    band: str
    reason: str
    pinned: bool
    move: Move | None  # where the pending rerank would move it


@dataclass(frozen=True)
class Band:
    name: str
    score: int
    rows: tuple[BoardRow, ...]


def _boards() -> list[tuple[int, str, str]]:
    """(board id, project key, rank mode) of every board in the config."""
    return [(p.board, p.key, p.rank.value) for p in pages.config().projects if p.board is not None]


def reason_for(judged: Judged) -> str:
    """Why an issue is in its band: triage's reason (``impact.decide.explain``), and what its
    labels say when they disagree (the band follows the level, the labels follow triage)."""
    reason = judged.why
    if not judged.labels_agree:
        if judged.plan.add_labels:
            reason += f"; labels not written yet ({', '.join(judged.plan.add_labels)})"
        else:
            reason += f"; stale labels ({', '.join(judged.plan.remove_labels)})"
    if judged.pinned:
        reason += f"; pinned (label {PINNED_LABEL}): never moved"
    return reason


def board_bands(
    issues: Sequence[Judged], project: ProjectConfig, plan: RerankPlan
) -> tuple[Band, ...]:
    """The board's issues grouped by band (highest score first), each in board order."""
    moves = {move.key: move for move in plan.moves}
    bands = [(level.name, level.score) for level in project.levels]
    bands.append((MISSING_BAND, project.missing.score))
    rows: dict[str, list[BoardRow]] = {name: [] for name, _ in bands}
    for position, judged in enumerate(issues, 1):
        key = judged.issue.key
        rows[judged.band].append(
            BoardRow(position, key, judged.band, reason_for(judged), judged.pinned, moves.get(key))
        )
    ordered = sorted(bands, key=lambda band: -band[1])
    return tuple(Band(name, score, tuple(rows[name])) for name, score in ordered)


@bp.get("/boards")
def boards() -> ResponseReturnValue:
    return _page("boards.html", title="Boards", active="boards", boards=_boards())


@bp.get("/boards/<int:board_id>")
def board(board_id: int) -> ResponseReturnValue:
    from pipeline.ranking import RankRefusedError, project_for_board, read_board

    try:
        project = project_for_board(pages.config(), board_id)
    except RankRefusedError as exc:
        return _page("message.html", 404, title=f"Board {board_id}", message=exc.problems[0])
    with page_jira() as jira:
        try:
            setup = jira.board_setup(board_id)
            review = read_board(board_id, pages.config(), jira)
            can_rank = jira.can_schedule(project.project.key)
        except JiraError as exc:
            return _page(
                "message.html",
                502,
                title=f"Board {board_id}",
                message=f"Jira did not give the board: {exc}",
            )
    plan = review.plan
    problems = []
    if not setup.ordered_by_rank:
        problems.append(
            f"Its filter {setup.filter_id} is not ordered by Rank ({setup.filter_jql!r}): end "
            "the filter's query with ORDER BY Rank ASC, or no issue can be ranked."
        )
    if not can_rank:
        problems.append(
            "The service account lacks the Schedule issues permission in project "
            f"{project.project.key}: no issue can be ranked until it has it."
        )
    return _page(
        "board.html",
        title=f"Board {board_id}",
        active="boards",
        board_id=board_id,
        project=project.project,
        bands=board_bands(review.issues, project, plan),
        total=len(review.issues),
        plan=plan,
        problems=problems,
    )


# --------------------------------------------------------------------------------------------
# Check


@bp.get("/check")
def check() -> ResponseReturnValue:
    run: Callable[..., Sequence[Any]] | None = current_app.extensions.get("impact.admin.checks")
    if run is None:
        from jira_setup.check import run_checks

        run = run_checks
    with page_jira() as jira:
        try:
            findings = list(run(pages.settings(), pages.config(), jira))
        except Exception as exc:
            log.exception("admin: the check could not run")
            return _page(
                "message.html",
                502,
                title="Check",
                message=f"The check could not run: {short_error(exc)}",
            )
    problems = sum(1 for finding in findings if not finding.ok)
    return _page("check.html", title="Check", active="check", findings=findings, problems=problems)
