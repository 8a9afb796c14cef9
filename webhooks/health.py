"""``GET /healthz`` (the process answers) and ``GET /readyz`` (it can take deliveries: the config
is loaded and the queue's store answers; 503 naming what fails). The delivery log's database is
shown too, but does not make it 503: the web process accepts into the queue's store alone, and the
worker logs what waits there once the database is back. So is Jira: held (``pipeline.holds``)
since when and why, and the deliveries waiting for it; taking deliveries does not need it, so
an outage leaves it ready. A refused credential makes it 503 (``failing: ["jira"]``), with the
reason: nothing is lost, but nothing will be done until someone puts a working credential in
place. ``JIRA_TOKEN_EXPIRES`` within 14 days adds a warning to the details.

Neither needs a token: they say nothing but ok or the name of the failing part. What fails, the
error's type and first line (secrets redacted, but hosts and ports shown), is added only for a
request carrying ``METRICS_TOKEN`` as a bearer token (``/metrics`` asks for the same token when
it is set); the log has it in any case.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from service.errors import short_error
from service.logs import Redactor
from webhooks.signature import bearer_ok

if TYPE_CHECKING:
    from pipeline.delivery_log import DeliveryLog
    from pipeline.holds import SiteState
    from pipeline.queue import DeliveryQueue

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

GATES = ("config", "queue")  # what accepting a delivery needs; the other parts are only shown
CREDENTIAL_ADVICE = (
    "Jira refuses the service account's credential (expired, revoked, or lacking a scope): "
    "deliveries wait, none is lost; put a working credential in place (its setting or its "
    "_FILE) and they run in order"
)


def delivery_stores(app: Flask) -> tuple[DeliveryLog | None, DeliveryQueue | None]:
    """The delivery log and the queue this app hands deliveries to: ``impact.deliveries`` and
    ``impact.queue`` in ``app.extensions`` when set, else the receiver's ``QueueDispatcher``'s.
    (None, None) when deliveries are triaged inline (the tests of the web layer)."""
    found_log = app.extensions.get("impact.deliveries")
    found_queue = app.extensions.get("impact.queue")
    receiver = app.extensions.get("impact.receiver")
    dispatcher = getattr(receiver, "dispatcher", None)
    return (
        found_log if found_log is not None else getattr(dispatcher, "log", None),
        found_queue if found_queue is not None else getattr(dispatcher, "queue", None),
    )


def jira_site(app: Flask) -> Callable[[], SiteState] | None:
    """What the queue's store says of the Jira site (``pipeline.holds.site_state``): its hold and
    the deliveries waiting for it; None without a queue (deliveries triaged inline)."""
    _log, queue = delivery_stores(app)
    settings = app.extensions.get("impact.settings")
    storage = getattr(getattr(queue, "inbox", None), "storage", None)
    if storage is None or settings is None:
        return None
    from pipeline.holds import site_state

    site = settings.jira_url
    return lambda: site_state(storage, site)


def jira_summary(state: SiteState, *, details: bool) -> dict[str, Any]:
    """``/readyz``'s ``jira``: usable or held, since when, for what cause, the deliveries waiting
    and the next probe; what the site last said only with ``details`` (it names hosts)."""
    from connector.breaker import CREDENTIAL, stamp

    hold = state.hold
    if hold is None:
        return {"state": "usable", "held_deliveries": state.held}
    summary: dict[str, Any] = {
        "state": "held",
        "cause": hold.cause,
        **({"advice": CREDENTIAL_ADVICE} if hold.cause == CREDENTIAL else {}),
        "since": stamp(hold.since),
        "next_probe": stamp(hold.probe_at),
        "probes_failed": hold.probes,
        "held_deliveries": state.held,
    }
    if details:
        summary["reason"] = hold.reason
    return summary


def credential_summary(settings: Any) -> dict[str, Any]:
    """``/readyz``'s ``credential`` (with details): its kind, the date it expires when
    ``JIRA_TOKEN_EXPIRES`` says, and the warning due from 14 days before."""
    summary: dict[str, Any] = {"kind": settings.jira_auth}
    if settings.jira_token_expires is not None:
        summary["expires"] = settings.jira_token_expires.isoformat()
    warning = settings.expiry_warning()
    if warning:
        summary["warning"] = warning
    return summary


def monitoring_allowed() -> bool:
    """Whether this request carries ``METRICS_TOKEN`` as a bearer token (never, without one)."""
    settings = current_app.extensions.get("impact.settings")
    token = settings.metrics_token if settings is not None else None
    return bearer_ok(request.headers.get("Authorization"), token=token)


def readiness(app: Flask) -> dict[str, str]:
    """Each part's state: ``ok``, ``not used`` or ``failing: <error>``."""
    settings = app.extensions.get("impact.settings")
    redactor = Redactor.from_settings(settings)
    parts: dict[str, str] = {}
    config = app.extensions.get("impact.config")
    parts["config"] = "ok" if config is not None else "failing: no impact config loaded"
    delivery_log, queue = delivery_stores(app)
    parts["database"] = _probe(_database_probe(delivery_log), redactor)
    parts["queue"] = _probe(None if queue is None else queue.pending, redactor)
    return parts


def _database_probe(delivery_log: DeliveryLog | None) -> Callable[[], Any] | None:
    if delivery_log is None:
        return None
    from pipeline.delivery_log import DeliveryRow

    def probe() -> Any:
        with delivery_log.engine.connect() as conn:  # the table itself, not just a connection
            return conn.execute(select(DeliveryRow.seq).limit(1)).all()

    return probe


def _probe(check: Callable[[], Any] | None, redactor: Redactor) -> str:
    if check is None:
        return "not used"
    try:
        check()
    except Exception as exc:
        return "failing: " + redactor.redact(short_error(exc))
    return "ok"


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    parts = readiness(current_app)
    failing = sorted(name for name in GATES if parts[name].startswith("failing"))
    if failing:
        log.warning("not ready: %s", "; ".join(f"{n} {parts[n]}" for n in failing))
    details = monitoring_allowed()
    if not details:  # the errors name hosts and ports: not for the public
        parts = {name: state.partition(":")[0] for name, state in parts.items()}
    answer: dict[str, Any] = {"parts": parts}
    site = jira_site(current_app)
    if site is not None:
        try:
            answer["jira"] = jira_summary(site(), details=details)
        except Exception as exc:  # the queue's store: its part says so already
            log.warning("readyz: Jira's hold not read: %s", short_error(exc))
            answer["jira"] = {"state": "unknown"}
        if answer["jira"].get("cause") == "credential":
            failing.append("jira")
            log.warning("not ready: %s", CREDENTIAL_ADVICE)
    settings = current_app.extensions.get("impact.settings")
    if details and settings is not None:
        answer["credential"] = credential_summary(settings)
    if failing:
        return jsonify({"status": "unavailable", "failing": failing, **answer}), 503
    return jsonify({"status": "ready", **answer})
