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
from service.logs import Redactor, secret_values
from webhooks import pages
from webhooks.admin.auth import CSRF_FIELD, Admin, TokenAuth, safe_next
from webhooks.health import monitoring_allowed
from webhooks.pages import Door, let_in, page_jira
from webhooks.priorities import exports
from webhooks.priorities.chart import (
    COLOURS,
    NAMES,
    OPEN_NAMES,
    counts_chart,
    share_chart,
    week_label,
)

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


def _message(
    status: int, title: str, message: str, *, details: str | None = None
) -> tuple[str, int]:
    return _page("message.html", status, title=title, message=message, details=details)


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


def _last_good() -> dict[Hashable, tuple[datetime, Any]]:
    """What each key read last time it was read well, and when (wall clock, UTC): shown, with
    its age, while Jira fails. One per process, as the cache; bounded by the config's boards."""
    kept: dict[Hashable, tuple[datetime, Any]] = current_app.extensions.setdefault(
        "impact.priorities.last_good", {}
    )
    return kept


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
                _last_good()[key] = (datetime.now(UTC), value)
            found[key] = value
    return found


def _board_reader(board_id: int) -> Callable[[Any], Any]:
    return lambda jira: read_board_priorities(board_id, pages.config(), jira)


def _weeks_reader(board_id: int, now: datetime) -> Callable[[Any], Any]:
    return lambda jira: read_resolved(board_id, pages.config(), jira, now=now)


def _failed(exc: JiraError, what: str) -> None:
    """Jira's failure in the log, whole (the log redacts credentials)."""
    log.warning("priorities: %s could not be read: %s", what, exc)


def _details(exc: JiraError) -> str | None:
    """What Jira did, for holders of ``METRICS_TOKEN`` (``X-Metrics-Token``, or as the bearer
    where the pages are open to all); None for everyone else. Credentials in it (the service
    account's secrets and e-mail, Basic and Bearer values) are redacted."""
    settings = pages.settings()
    token = settings.metrics_token
    given = request.headers.get("X-Metrics-Token", "")
    if not token or not (
        secrets.compare_digest(given.encode(), token.encode()) or monitoring_allowed()
    ):
        return None
    redactor = Redactor((*secret_values(settings), settings.jira_email or ""))
    return redactor.redact(str(exc))


def _stale_note(exc: JiraError, as_of: datetime, now: datetime) -> dict[str, Any]:
    """The plain sentence shown above last good data: what happened, and how old the data is."""
    when = as_of.astimezone(UTC)
    sentence = (
        f"{exc.plain()}; this is from {when:%H:%M} UTC ({age_text(when, now)} ago). "
        "It will be brought up to date as soon as Jira answers."
    )
    note: dict[str, Any] = {"message": sentence, "as_of": when.isoformat()}
    details = _details(exc)
    if details is not None:
        note["details"] = details
    return note


def _kept(wanted: Mapping[Hashable, Any]) -> tuple[dict[Hashable, Any], datetime] | None:
    """The last good value of every key wanted, and the oldest of their times; None when one
    was never read well in this process."""
    last_good = _last_good()
    if not all(key in last_good for key in wanted):
        return None
    return (
        {key: last_good[key][1] for key in wanted},
        min(last_good[key][0] for key in wanted),
    )


def _unavailable(exc: JiraError, kind: str, what: str) -> ResponseReturnValue:
    """502 with a plain sentence (never Jira's own words nor its address; those are in the log
    and, redacted, for holders of the metrics token)."""
    said = f"{exc.plain()}, so {what} could not be shown. Try again in a minute."
    details = _details(exc)
    if kind == "json":
        body: dict[str, Any] = {"error": "jira_unavailable", "message": said}
        if details is not None:
            body["details"] = details
        return jsonify(body), 502
    if kind == "csv":
        extra = f"\n{details}" if details is not None else ""
        return Response(said + extra + "\n", 502, mimetype="text/plain")
    return _message(502, "Jira did not answer", said, details=details)


# --------------------------------------------------------------------------------------------
# Pages


@bp.get("")
def index() -> ResponseReturnValue:
    """The configured projects and boards, from the config: each board's counts as Jira last
    gave them, and while Jira fails, what was read before (with its age) or a dash."""
    config = pages.config()
    boards = [p.board for p in config.projects if p.board is not None]
    wanted = {("board", b): _board_reader(b) for b in dict.fromkeys(boards)}
    stale = None
    try:
        found = _read(wanted)
    except JiraError as exc:
        _failed(exc, "the boards")
        last_good = _last_good()
        found = {key: last_good[key][1] for key in wanted if key in last_good}
        times = [last_good[key][0] for key in wanted if key in last_good]
        now = datetime.now(UTC)
        if times:
            stale = _stale_note(exc, min(times), now)
        else:
            stale = {"message": f"{exc.plain()}; the boards' counts will show once it does."}
            details = _details(exc)
            if details is not None:
                stale["details"] = details
    rows = [
        (project, found.get(("board", project.board)) if project.board is not None else None)
        for project in config.projects
    ]
    levels = [level.name for level in config.levels] + [MISSING_BAND]
    return _page(
        "index.html",
        title="Priorities",
        rows=rows,
        levels=levels,
        stale=stale,
        board_url=lambda board_id: exports.board_url(pages.settings().jira_url, board_id),
    )


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
    stale = None
    try:
        found = _read(wanted)
    except JiraError as exc:
        _failed(exc, f"board {board_id}")
        kept = _kept(wanted) if kind != "csv" else None  # a script's CSV is never stale
        if kept is None:
            return _unavailable(exc, kind, f"board {board_id}")
        found, as_of = kept
        stale = _stale_note(exc, as_of, now)
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
        body = exports.board_json(priorities, resolved, now=now, jira_url=jira_url)
        if stale is not None:
            body["stale"] = stale
        return jsonify(body)
    return _page(
        "board.html",
        title=f"Priorities of {priorities.title}",
        board_id=board_id,
        stale=stale,
        board_url=exports.board_url(jira_url, board_id),
        project=project.project,
        board=priorities,
        resolved=resolved,
        columns=COLUMNS,
        names=NAMES,
        open_names=OPEN_NAMES,
        colours=COLOURS,
        counts_svg=counts_chart(resolved.weeks, nonce=g.nonce),
        share_svg=share_chart(resolved.weeks, nonce=g.nonce),
        week_label=week_label,
        age=lambda created: age_text(created, now),
        issue_url=lambda key: exports.issue_url(jira_url, key),
    )
