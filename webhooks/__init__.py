"""The Flask app: ``create_app()`` is the factory gunicorn runs (see the Procfile)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from impact.config import load_config
from webhooks.errors import register_error_handlers
from webhooks.receiver import Receiver
from webhooks.receiver import bp as receiver_bp
from webhooks.settings import Settings


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. Settings come from the environment and the admins' file, both checked here,
    so a bad setting stops the process before it serves anything.

    ``test_config`` may give ``SETTINGS`` (a ``Settings``), ``IMPACT`` (an ``ImpactConfig``),
    ``JIRA`` (a ``connector.protocol.Jira``) and ``DISPATCHER`` objects, plus Flask config keys.
    """
    overrides = dict(test_config or {})
    settings: Settings = overrides.pop("SETTINGS", None) or Settings.from_env(os.environ)
    config = overrides.pop("IMPACT", None) or load_config(settings.impact_config)
    jira = overrides.pop("JIRA", None)
    dispatcher = overrides.pop("DISPATCHER", None)

    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes, **overrides)
    if dispatcher is None:
        from webhooks.dispatch import InlineDispatcher

        if jira is None:
            from connector.client import JiraConnector

            jira = JiraConnector.from_settings(settings, field=config.field)
        dispatcher = InlineDispatcher(jira=jira, config=config)

    app.extensions["impact.settings"] = settings
    app.extensions["impact.config"] = config
    app.extensions["impact.receiver"] = Receiver(
        settings=settings, config=config, dispatcher=dispatcher
    )
    app.register_blueprint(receiver_bp)
    register_error_handlers(app)
    logging.getLogger(__name__).info(
        "jira-customer-impact ready: Jira %s, %d project(s) from %s",
        settings.jira_url,
        len(config.projects),
        config.source,
    )
    return app
