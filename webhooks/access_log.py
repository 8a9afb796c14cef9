"""gunicorn's own lines as redacted JSON, like the app's (``service.logs``): ``GunicornLogger``
is the ``logger_class`` in gunicorn.conf.py.

Its access line gives the path without the query string, where a webhook token may ride, and for
a webhook the delivery's identifier, status and issue (what the receiver left in the WSGI environ
under ``ACCESS_FIELDS``), so one line says what became of each delivery.
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn import glogging

from service.logs import Redactor, equip

ACCESS_FIELDS = "jira_impact.delivery"  # the receiver's fields for the access line


class GunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's error and access lines as redacted JSON lines."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        redactor = Redactor.from_env(os.environ)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                equip(handler, redactor)

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        status = str(getattr(resp, "status", "") or "").split(" ", 1)[0]
        ms = request_time.total_seconds() * 1000
        delivery = environ.get(ACCESS_FIELDS) or {}
        self.access_log.info(
            "%s %s %s %.0f ms%s",
            req.method,
            req.path,
            status,
            ms,
            f" {delivery['delivery_status']}" if delivery else "",
            extra={
                "method": req.method,
                "path": req.path,  # never the query string
                "status": int(status) if status.isdigit() else status,
                "duration_ms": round(ms, 1),
                **{k: v for k, v in delivery.items() if v is not None},
            },
        )
