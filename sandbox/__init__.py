"""A stateful fake Jira (Cloud or Data Center flavour) for end-to-end tests and the demo.

Run it with ``python -m sandbox``; in tests use ``sandbox.app.start_in_thread`` or
``make_server``/``create_app`` with a ``sandbox.seed.SandboxState``. Nothing is imported here
eagerly, so ``sandbox.jql`` and ``sandbox.lexorank`` load without Flask.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SandboxState", "create_app", "make_server", "start_in_thread"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "make_server", "start_in_thread"):
        from sandbox import app

        return getattr(app, name)
    if name == "SandboxState":
        from sandbox.seed import SandboxState

        return SandboxState
    raise AttributeError(name)
