"""The priorities pages: read-only, server-rendered, no JavaScript.

- ``/priorities``: the configured projects and their boards, each board's open issues counted
  per level.
- ``/priorities/<board>``: the board's open issues in two columns (serves paying customers,
  internal preferences) and those that need an impact, with the 12 weeks' chart; ``.json`` and
  ``.csv`` give the same.

Who gets in (``webhooks.pages``): anyone with ``PUBLIC_PRIORITIES=1``; else the holders of
``VIEWER_TOKEN`` or ``ADMIN_TOKEN`` (only ``ADMIN_TOKEN`` when there is no viewer token), by
bearer header or the login form. A viewer's session is signed for these pages alone, so it
opens no admin page.

What they read (``pipeline.priorities_reads``) is kept ``PRIORITIES_CACHE_SECONDS`` per web
process, and read with the admin pages' connector, one page at a time per process, within
``PRIORITIES_READ_SECONDS`` in all; Jira failing or slow makes a 502 that says so.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Hashable, Mapping
from datetime import UTC, datetime
from time import monotonic
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from connector.errors import JiraError
from impact.decide import MISSING_BAND
from pipeline.priorities import COLUMNS, age_text
from pipeline.priorities_reads import (
    TimedCache,
    read_board_priorities,
    read_resolved,
)
from pipeline.ranking import RankRefusedError, project_for_board
from webhooks import pages
from webhooks.admin.auth import CSRF_FIELD, Admin, TokenAuth, safe_next
from webhooks.pages import Door, let_in, page_jira
from webhooks.priorities import exports
from webhooks.priorities.chart import COLOURS, NAMES, counts_chart, share_chart, week_label

log = logging.getLogger(__name__)

bp = Blueprint(
    "priorities",
    __name__,
    url_prefix="/priorities",
    template_folder="templates",
    static_folder="static",
)

COOKIE = "jira_impact_viewer"
PATH = "/priorities"
REALM = "jira-customer-impact priorities"
_PURPOSE = b"jira-customer-impact viewer session v1"
_OPEN_ENDPOINTS = {"priorities.login", "priorities.static"}
_NOTICES = {"logged-out": "You are logged out."}


# --------------------------------------------------------------------------------------------
# Access


def _door() -> Door | None:
    """The way in; None when the pages are open to all (``PUBLIC_PRIORITIES=1``)."""
    settings = pages.settings()
    if settings.public_priorities:
        return None
    auth: TokenAuth | None = current_app.extensions.get("impact.priorities.auth")
    if auth is None:
        auth = TokenAuth((settings.viewer_token, settings.admin_token), purpose=_PURPOSE)
        current_app.extensions["impact.priorities.auth"] = auth
    named = "a viewer token or the admin token" if settings.viewer_token else "the admin token"
    return Door("priorities", auth, COOKIE, PATH, named)


@bp.before_request
def guard() -> ResponseReturnValue | None:
    g.nonce = secrets.token_urlsafe(16)
    door = _door()
    if door is None or request.endpoint in _OPEN_ENDPOINTS:
        g.viewer = None
        return None
    viewer, refused = let_in(door, login_page=_login_page, message_page=_message)
    g.viewer = viewer
    return refused


@bp.after_request
def harden(response: Response) -> Response:
    csp = pages.content_policy(style_nonce=g.get("nonce"))
    return pages.harden(response, csp=csp, realm=REALM)


@bp.context_processor
def page_context() -> dict[str, Any]:
    viewer: Admin | None = g.get("viewer")
    return {
        "viewer": viewer,
        "csrf_field": CSRF_FIELD,
        "csrf_token": viewer.csrf if viewer else None,
    }


def _page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(f"priorities/{template}", **context), status


def _message(status: int, title: str, message: str) -> tuple[str, int]:
    return _page("message.html", status, title=title, message=message)


def _login_page(status: int, problem: str | None = None) -> ResponseReturnValue:
    door = _door()
    return _page(
        "login.html",
        status,
        title="Log in",
        enabled=door is not None and door.auth.enabled,
        tokens_named=door.tokens_named if door else "",
        problem=problem,
        next=safe_next(pages.login_target(), "", PATH),
        notice=_NOTICES.get(request.args.get("notice", "")),
    )


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    door = _door()
    if door is None:  # open to all: nothing to log in to
        return redirect(url_for(".index"), 303)
    if request.method == "GET":
        if door.auth.session_id(request.cookies.get(COOKIE)):
            return redirect(url_for(".index"), 303)
        return _login_page(401)
    return pages.log_in(door, home=url_for(".index"), login_page=_login_page, message_page=_message)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    door = _door()
    if door is None:
        return redirect(url_for(".index"), 303)
    return pages.log_out(door, then=url_for(".login", notice="logged-out"))


# --------------------------------------------------------------------------------------------
# Reading, kept a while


def _cache() -> TimedCache:
    cache: TimedCache | None = current_app.extensions.get("impact.priorities.cache")
    if cache is None:
        cache = TimedCache(pages.settings().priorities_cache_seconds)
        current_app.extensions["impact.priorities.cache"] = cache
    return cache


def _failures() -> dict[Hashable, tuple[float, JiraError]]:
    """The last failed read of each key, with when it failed (one per key read: the boards of
    the config, each for its issues and its weeks)."""
    failures: dict[Hashable, tuple[float, JiraError]] = current_app.extensions.setdefault(
        "impact.priorities.failures", {}
    )
    return failures


def _read(wanted: Mapping[Hashable, Callable[[Any], Any]]) -> dict[Hashable, Any]:
    """Each key's value, from the cache or read (``reader(jira)``) within the page's time limit:
    one process reads one page at a time (``page_jira``), so a page asked for by many at once
    is read once, and the others find it in the cache. A view that waited while that read
    failed fails with it at once, rather than wait out the limit again; a view asked for after
    the failure reads again. Raises ``JiraError``."""
    clock: Callable[[], float] = current_app.extensions.get("impact.priorities.clock", monotonic)
    asked_at = clock()
    cache, failures = _cache(), _failures()
    found = {key: cache.get(key) for key in wanted}
    if all(value is not None for value in found.values()):
        return found
    with page_jira() as jira, jira.time_limit(pages.settings().priorities_read_seconds):
        for key, reader in wanted.items():
            value = found[key] if found[key] is not None else cache.get(key)
            if value is None:
                failed_at, failure = failures.get(key, (float("-inf"), None))
                if failure is not None and failed_at >= asked_at:
                    raise failure
                try:
                    value = reader(jira)
                except JiraError as exc:
                    failures[key] = (clock(), exc)
                    raise
                cache.put(key, value)
            found[key] = value
    return found


def _board_reader(board_id: int) -> Callable[[Any], Any]:
    return lambda jira: read_board_priorities(board_id, pages.config(), jira)


def _weeks_reader(board_id: int, now: datetime) -> Callable[[Any], Any]:
    return lambda jira: read_resolved(board_id, pages.config(), jira, now=now)


def _unavailable(exc: JiraError, kind: str, what: str) -> ResponseReturnValue:
    log.warning("priorities: %s could not be read: %s", what, exc)
    said = f"Jira did not give {what}: {exc}"
    if kind == "json":
        return jsonify(error="jira_unavailable", message=said), 502
    if kind == "csv":
        return Response(said + "\n", 502, mimetype="text/plain")
    return _message(502, "Jira did not answer", said + ". Try again in a minute.")


# --------------------------------------------------------------------------------------------
# Pages


@bp.get("")
def index() -> ResponseReturnValue:
    config = pages.config()
    boards = [p.board for p in config.projects if p.board is not None]
    try:
        found = _read({("board", b): _board_reader(b) for b in dict.fromkeys(boards)})
    except JiraError as exc:
        return _unavailable(exc, "html", "the boards")
    rows = [
        (project, found.get(("board", project.board)) if project.board is not None else None)
        for project in config.projects
    ]
    levels = [level.name for level in config.levels] + [MISSING_BAND]
    return _page("index.html", title="Priorities", rows=rows, levels=levels)


@bp.get("/<int:board_id>")
def board(board_id: int) -> ResponseReturnValue:
    return _board(board_id, "html")


@bp.get("/<int:board_id>.json")
def board_json(board_id: int) -> ResponseReturnValue:
    return _board(board_id, "json")


@bp.get("/<int:board_id>.csv")
def board_csv(board_id: int) -> ResponseReturnValue:
    return _board(board_id, "csv")


def _board(board_id: int, kind: str) -> ResponseReturnValue:
    try:
        project = project_for_board(pages.config(), board_id)
    except RankRefusedError:
        message = f"Board {board_id} is not one of the configured boards."
        if kind == "json":
            return jsonify(error="unknown_board", message=message), 404
        return _message(404, f"Board {board_id}", message)
    now = datetime.now(UTC)
    wanted: dict[Hashable, Callable[[Any], Any]] = {("board", board_id): _board_reader(board_id)}
    if kind != "csv":  # the CSV has the issues only
        wanted[("resolved", board_id)] = _weeks_reader(board_id, now)
    try:
        found = _read(wanted)
    except JiraError as exc:
        return _unavailable(exc, kind, f"board {board_id}")
    priorities = found[("board", board_id)]
    jira_url = pages.settings().jira_url
    if kind == "csv":
        response = Response(exports.board_csv(priorities), mimetype="text/csv")
        response.headers["Content-Disposition"] = (
            f'attachment; filename="priorities-board-{board_id}.csv"'
        )
        return response
    resolved = found[("resolved", board_id)]
    if kind == "json":
        return jsonify(exports.board_json(priorities, resolved, now=now, jira_url=jira_url))
    return _page(
        "board.html",
        title=f"Priorities of board {board_id}",
        board_id=board_id,
        project=project.project,
        board=priorities,
        resolved=resolved,
        columns=COLUMNS,
        names=NAMES,
        colours=COLOURS,
        counts_svg=counts_chart(resolved.weeks, nonce=g.nonce),
        share_svg=share_chart(resolved.weeks, nonce=g.nonce),
        week_label=week_label,
        age=lambda created: age_text(created, now),
        issue_url=lambda key: exports.issue_url(jira_url, key),
    )
