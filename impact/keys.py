"""Jira's issue and project keys, checked strictly wherever one reaches a URL or a query.

A project key is an upper-case letter followed by upper-case letters, digits or underscores; an
issue key is its project's key, ``-`` and a number (``SHOP-12``); an issue may also be named by
its numeric id. Nothing else passes: no ``.``, ``..``, ``/`` or ``%`` that could bend a path.
"""

from __future__ import annotations

import re

PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]*")
ISSUE_KEY = re.compile(r"(?P<project>[A-Z][A-Z0-9_]*)-[0-9]+")
ISSUE_ID = re.compile(r"[0-9]+")


def is_project_key(text: str) -> bool:
    return PROJECT_KEY.fullmatch(text) is not None


def is_issue_key(text: str) -> bool:
    return ISSUE_KEY.fullmatch(text) is not None


def is_issue_ref(text: str) -> bool:
    """An issue key or an issue's numeric id: what Jira's ``/issue/{issueIdOrKey}`` takes."""
    return is_issue_key(text) or ISSUE_ID.fullmatch(text) is not None


def project_of(issue_key: str) -> str | None:
    """The project key an issue key starts with; None when it is not an issue key."""
    found = ISSUE_KEY.fullmatch(issue_key)
    return found.group("project") if found else None
