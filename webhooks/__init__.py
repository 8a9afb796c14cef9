"""The Flask app: ``create_app()`` is the factory gunicorn runs (see the Procfile)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from impact.config import load_config
from service.logs import configure_logging
from service.settings import Settings
from webhooks.admin import bp as admin_bp
from webhooks.errors import register_error_handlers
from webhooks.health import bp as health_bp
from webhooks.metrics import bp as metrics_bp
from webhooks.priorities import bp as priorities_bp
from webhooks.receiver import Receiver
from webhooks.receiver import bp as receiver_bp

log = logging.getLogger(__name__)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. Settings come from the environment and the admins' file, both checked here,
    so a bad setting stops the process before it serves anything.

    ``test_config`` may give ``SETTINGS`` (a ``Settings``), ``IMPACT`` (an ``ImpactConfig``),
    ``JIRA`` (a ``connector.protocol.Jira``) and ``DISPATCHER`` objects, plus Flask config keys.
    Without a ``DISPATCHER``, a given ``JIRA`` means triage inline (tests); none means the queue.
    """
    overrides = dict(test_config or {})
    settings: Settings = overrides.pop("SETTINGS", None) or Settings.from_env(os.environ)
    if test_config is None:  # gunicorn's workers; tests keep pytest's own log capture
        configure_logging(settings)
    config = overrides.pop("IMPACT", None) or load_config(settings.impact_config)
    jira = overrides.pop("JIRA", None)
    dispatcher = overrides.pop("DISPATCHER", None)

    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes, **overrides)
    if settings.trusted_proxies:
        # The client's address and scheme as the last TRUSTED_PROXIES proxies saw them; without
        # the setting, X-Forwarded-For is any client's to write, and is not read.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    if dispatcher is None and jira is not None:
        # Tests of the web layer: triage at once, in the request, against the given Jira.
        from pipeline.dispatch import InlineDispatcher

        dispatcher = InlineDispatcher(jira=jira, config=config)
    elif dispatcher is None:
        # Production: record and enqueue; the worker (`jira-impact worker`) talks to Jira.
        from pipeline.queue import QueueDispatcher

        dispatcher = QueueDispatcher.from_settings(settings)
        _check_log(dispatcher.log.engine)

    app.extensions["impact.settings"] = settings
    app.extensions["impact.config"] = config
    app.extensions["impact.receiver"] = Receiver(
        settings=settings, config=config, dispatcher=dispatcher
    )
    app.register_blueprint(receiver_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(metrics_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(priorities_bp)
    register_error_handlers(app)
    if not settings.metrics_token:
        log.warning(
            "METRICS_TOKEN is not set: /metrics is open to whoever reaches this port, and "
            "/readyz shows no details (see the README's Health and metrics)"
        )
    log.info(
        "jira-customer-impact ready: Jira %s, %d project(s) from %s",
        settings.jira_url,
        len(config.projects),
        config.source,
    )
    return app


def _check_log(engine: Any) -> None:
    """Refuse to start on a delivery log whose schema is behind (``SchemaError``, naming the
    command to run); start, with a warning, on one that does not answer: the web process takes
    deliveries into the queue's store alone, and the worker logs them once the database is back."""
    from sqlalchemy.exc import SQLAlchemyError

    from pipeline.delivery_log import check_schema
    from service.errors import short_error

    try:
        check_schema(engine)
    except SQLAlchemyError as exc:
        log.warning(
            "the delivery log at %s does not answer (%s); taking deliveries anyway",
            engine.url.render_as_string(hide_password=True),
            short_error(exc),
        )
    finally:
        engine.dispose()  # no connection is carried into a forked process
