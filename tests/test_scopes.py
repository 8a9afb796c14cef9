"""The scope each Jira call needs (``connector.scopes``, and the sandbox's own table in
``sandbox.gateway``), held to Atlassian's OpenAPI specs; and what ``check`` concludes from the
probes' answers."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from connector.scopes import (
    CALLS,
    PROBES,
    RANKING,
    SETUP,
    TRIAGE,
    every_scope,
    missing_by_feature,
    needed,
    scopes_for,
)
from sandbox.gateway import SCOPES, scopes_needed
from sandbox.seed import SERVICE_SCOPES
from tests.conftest import ROOT

SPECS = Path(os.environ.get("JIRA_SPECS_DIR", "/nonexistent"))
FILES = ("jira-platform-swagger-v3.v3.json", "jira-software-swagger.v3.json")


@pytest.fixture(scope="module")
def spec_scopes() -> dict[tuple[str, str], tuple[str, ...]]:
    """(method, path with /rest/api/3) -> the OAuth2 scopes of the operation, from the specs."""
    if not SPECS.is_dir():
        pytest.skip("JIRA_SPECS_DIR names no folder of specs")
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    for name in FILES:
        paths: dict[str, Any] = json.loads((SPECS / name).read_text())["paths"]
        for path, operations in paths.items():
            for method, operation in operations.items():
                if not isinstance(operation, dict):
                    continue
                for security in operation.get("security", []):
                    if "OAuth2" in security:
                        found[(method.upper(), path)] = tuple(security["OAuth2"])
    return found


def spec_path(template: str) -> re.Pattern[str]:
    """A spec path matching our template: any ``{name}`` for any ``{…}``, api/3 for api/2."""
    body = re.escape(template.replace("/rest/api/2/", "/rest/api/3/"))
    return re.compile(re.sub(r"\\\{\w+\\\}", r"\\{\\w+\\}", body))


def test_each_call_of_the_product_needs_the_scopes_the_spec_gives_it(spec_scopes):
    for call in CALLS:
        pattern = spec_path(call.path)
        matches = {
            scopes
            for (m, p), scopes in spec_scopes.items()
            if m == call.method and pattern.fullmatch(p)
        }
        assert matches, f"{call.method} {call.path} is not in the specs"
        assert matches == {call.scopes}, f"{call.method} {call.path}: {matches} in the spec"


def test_the_sandboxs_table_agrees_with_the_spec(spec_scopes):
    for method, path, scopes in SCOPES:
        pattern = re.compile(path.replace("[23]", "3"))
        matches = {s for (m, p), s in spec_scopes.items() if m == method and pattern.fullmatch(p)}
        # the spec's path parameters are {names}: try the sandbox's pattern against them
        for (m, p), s in spec_scopes.items():
            concrete = re.sub(r"\{\w+\}", "X1", p)
            if m == method and pattern.fullmatch(concrete):
                matches.add(s)
        assert matches == {scopes}, f"{method} {path}: {matches} in the spec"


def test_every_call_the_product_makes_is_offered_by_the_sandbox_with_the_same_scopes():
    for call in CALLS:
        concrete = re.sub(r"\{\w+\}", "X1", call.path)
        assert scopes_needed(call.method, concrete) == call.scopes, call
        assert scopes_for(call.method, concrete.replace("/api/2/", "/api/3/")) == call.scopes


def test_the_admin_webhook_has_no_scope():
    assert scopes_for("GET", "/rest/webhooks/1.0/webhook") is None
    assert scopes_needed("POST", "/rest/webhooks/1.0/webhook") is None


def test_the_features_need_what_the_readme_lists():
    assert set(needed(TRIAGE)) == {"read:jira-work", "write:jira-work", "read:jira-user"}
    assert "write:issue:jira-software" in needed(RANKING)
    assert {"manage:jira-configuration", "manage:jira-project"} <= set(needed(SETUP))
    assert set(every_scope()) == set(SERVICE_SCOPES)  # the sandbox's service account has all
    readme = (ROOT / "README.md").read_text()
    for scope in every_scope():
        assert f"`{scope}`" in readme


def test_missing_scopes_are_named_per_feature_and_a_scope_seen_held_is_not():
    lacking = {"write:issue:jira-software", "read:board-scope.admin:jira-software"}
    answered = {probe: not set(probe.scopes) & lacking for probe in PROBES}
    missing = missing_by_feature(answered)
    assert missing[TRIAGE] == ()
    # read:project:jira is held (the board list answered): only the missing ones are named
    assert set(missing[RANKING]) == lacking
    assert missing[SETUP] == ("read:board-scope.admin:jira-software",)


def test_every_probe_changes_nothing():
    for probe in PROBES:
        if probe.method == "GET":
            continue
        # a write Jira must refuse: to an issue numbered 0, or a rank of no issue
        assert probe.path.endswith("-0") or probe.body == {"issues": []}, probe
