"""The judgements of ``jira-impact check``, with plain data: option mapping, permissions, board
filters and whether an admin webhook sends the configured projects' events here."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connector.admin import AdminWebhook
from connector.protocol import BoardSetup
from impact.model import ImpactClass, Level, ProjectSettings, RankMode
from jira_setup.check import (
    Finding,
    board_finding,
    covers,
    delivery_problem,
    option_findings,
    permission_finding,
    projects_in_jql,
    redact_url,
    required_permissions,
    unmapped_options,
    unreached_levels,
    webhook_findings,
)

BLOCKING = Level("blocking", ("Blocks paying customers",), 100, "cib", ImpactClass.EXTERNAL)
DEGRADED = Level("degraded", ("Degrades", "Slower"), 70, "cid", ImpactClass.EXTERNAL)
NONE = Level("none", ("None: internal preference",), 10, "ip", ImpactClass.INTERNAL_PREFERENCE)
LEVELS = (BLOCKING, DEGRADED, NONE)
ALL_OPTIONS = ["Blocks paying customers", "Degrades", "None: internal preference"]
LOWER = "blocks paying customers"
RECEIVER = "https://impact.example.com/webhooks/jira"
HOOK = AdminWebhook(
    name="jira-customer-impact",
    url=RECEIVER,
    events=("jira:issue_created", "jira:issue_updated"),
    jql="project in (SHOP, OPS)",
    signed=True,
)


# ---- the field's options


@pytest.mark.parametrize(
    ("options", "unmapped", "unreached"),
    [
        (ALL_OPTIONS, (), ()),
        (["Slower", *ALL_OPTIONS[:1], ALL_OPTIONS[2]], (), ()),  # one value of a level is enough
        ([*ALL_OPTIONS, "Maybe"], ("Maybe",), ()),
        (["Blocks paying customers", "Maybe"], ("Maybe",), ("degraded", "none")),
        (
            ["blocks paying customers"],
            ("blocks paying customers",),
            ("blocking", "degraded", "none"),
        ),
    ],
)
def test_options_against_levels(options, unmapped, unreached):
    assert unmapped_options(options, LEVELS) == unmapped
    assert tuple(level.name for level in unreached_levels(options, LEVELS)) == unreached


def test_option_findings_list_unmapped_options_and_unreached_levels_with_fixes():
    found = option_findings(
        ["Blocks paying customers", "Maybe", "Perhaps"], LEVELS, field="'Impact'", source="x.toml"
    )

    assert [f.ok for f in found] == [False, False]
    assert "'Maybe', 'Perhaps' map to no level" in found[0].message
    assert "x.toml" in (found[0].fix or "")
    assert "degraded ('Degrades', 'Slower')" in found[1].message
    assert "none ('None: internal preference')" in found[1].message


def test_option_findings_all_mapped_is_one_ok_finding():
    found = option_findings(ALL_OPTIONS, LEVELS, field="'Impact'", source="x.toml")
    assert found == [
        Finding(
            True, "field options", "each of the 3 options maps to a level, and every level has one"
        )
    ]


def test_a_field_without_options_is_a_problem():
    (found,) = option_findings([], LEVELS, field="'Impact'", source="x.toml")
    assert not found.ok
    assert found.fix


# ---- permissions


@pytest.mark.parametrize(
    ("project", "comment", "expected"),
    [
        (ProjectSettings("SHOP"), False, ("BROWSE_PROJECTS", "EDIT_ISSUES")),
        (ProjectSettings("SHOP"), True, ("BROWSE_PROJECTS", "EDIT_ISSUES", "ADD_COMMENTS")),
        (
            ProjectSettings("SHOP", board=1, rank=RankMode.BAND),
            True,
            ("BROWSE_PROJECTS", "EDIT_ISSUES", "ADD_COMMENTS", "SCHEDULE_ISSUES"),
        ),
        (
            ProjectSettings("SHOP", board=1, rank=RankMode.OFF),
            False,
            ("BROWSE_PROJECTS", "EDIT_ISSUES"),
        ),
    ],
)
def test_required_permissions(impact_config, project, comment, expected):
    config = replace(impact_config, missing=replace(impact_config.missing, comment=comment))
    assert required_permissions(project, config) == expected


def test_permission_finding_names_what_is_missing():
    held = {"BROWSE_PROJECTS": True, "EDIT_ISSUES": True, "SCHEDULE_ISSUES": False}
    needed = ("BROWSE_PROJECTS", "EDIT_ISSUES", "ADD_COMMENTS", "SCHEDULE_ISSUES")

    found = permission_finding("SHOP", held, needed)

    assert not found.ok
    assert found.message == "the service account lacks Add comments, Schedule issues"
    assert "SHOP's permission scheme" in (found.fix or "")
    assert permission_finding("SHOP", dict.fromkeys(needed, True), needed).ok


# ---- boards


@pytest.mark.parametrize(
    ("jql", "ordered", "ok"),
    [
        ("project = SHOP ORDER BY Rank ASC", True, True),
        ("project = SHOP ORDER BY created DESC", False, False),
    ],
)
def test_board_finding(jql, ordered, ok):
    found = board_finding("SHOP", BoardSetup(1, 10019, "10000", jql, ordered))
    assert found.ok is ok
    assert found.subject == "board 1"
    assert (found.fix is None) is ok
    if not ok:
        assert "ORDER BY Rank ASC" in (found.fix or "")


# ---- webhooks


@pytest.mark.parametrize(
    ("jql", "projects"),
    [
        ("", None),
        ("issuetype = Bug", None),
        ("project = SHOP", {"SHOP"}),
        ("project=shop", {"SHOP"}),
        ('project in (SHOP, "OPS")', {"SHOP", "OPS"}),
        ("PROJECT IN (SHOP,OPS) AND issuetype = Bug", {"SHOP", "OPS"}),
        ("project = SHOP OR project = 'OPS'", {"SHOP", "OPS"}),
        ("project not in (SHOP)", None),
        ("project != SHOP", None),
    ],
)
def test_projects_in_jql(jql, projects):
    assert projects_in_jql(jql) == (frozenset(projects) if projects is not None else None)


@pytest.mark.parametrize(
    ("changes", "project", "expected"),
    [
        ({}, "SHOP", True),
        ({}, "OPS", True),
        ({}, "SUP", False),
        ({"jql": ""}, "SUP", True),
        ({"enabled": False}, "SHOP", False),
        ({"events": ("jira:issue_created",)}, "SHOP", False),
        ({"url": "https://elsewhere.example.com/hook"}, "SHOP", False),
        ({"url": RECEIVER + "?token=abc"}, "SHOP", True),
    ],
)
def test_covers(changes, project, expected):
    assert covers(replace(HOOK, **changes), project) is expected


@pytest.mark.parametrize(
    ("signed", "url", "secret", "token", "problem"),
    [
        (True, RECEIVER, "s", None, None),
        (None, RECEIVER, "s", None, None),  # Jira does not say: not a finding
        (True, RECEIVER, None, "t", "JIRA_WEBHOOK_SECRET is not set"),
        (False, RECEIVER, "s", None, "not signed"),
        (False, RECEIVER, None, "t", "no ?token="),
        (False, RECEIVER + "?token=t", None, "t", None),
        (False, RECEIVER + "?token=t", "s", None, "JIRA_WEBHOOK_TOKEN is not set"),
    ],
)
def test_delivery_problem(settings, signed, url, secret, token, problem):
    hook = replace(HOOK, signed=signed, url=url)
    found = delivery_problem(hook, replace(settings, webhook_secret=secret, webhook_token=token))
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found[0]


def test_webhook_findings_one_per_project(settings):
    found = webhook_findings([HOOK], ["SHOP", "SUP"], settings)

    assert [(f.ok, f.message.split(":")[0]) for f in found] == [(True, "SHOP"), (False, "SUP")]
    assert "includes SUP" in found[1].message
    assert "jira-impact webhook register" in (found[1].fix or "")


def test_no_webhook_to_the_receiver_is_one_finding(settings):
    other = replace(HOOK, url="https://elsewhere.example.com/hook")
    (found,) = webhook_findings([other], ["SHOP"], settings)
    assert not found.ok
    assert "no admin webhook sends to" in found.message


def test_an_unsigned_webhook_is_flagged_when_the_service_wants_signatures(settings):
    found = webhook_findings([replace(HOOK, signed=False)], ["SHOP"], settings)
    assert [f.ok for f in found] == [True, False]
    assert "refused (401)" in found[1].message


def test_a_disabled_webhook_says_so(settings):
    (found,) = webhook_findings([replace(HOOK, enabled=False)], ["SHOP"], settings)
    assert "disabled" in found.message


def test_tokens_are_hidden_in_urls(settings):
    assert redact_url("https://x.test/webhooks/jira?a=1&token=s3cret") == (
        "https://x.test/webhooks/jira?a=1&token=***"
    )
    hook = replace(HOOK, url=RECEIVER + "?token=s3cret")
    found = webhook_findings([hook, replace(hook, enabled=False)], ["SHOP", "SUP"], settings)
    assert len(found) == 3  # SHOP ok, SUP not covered, the token not set here
    assert all("s3cret" not in str(f) for f in found)


def test_finding_line_shows_the_fix_only_when_failed():
    assert str(Finding(True, "field", "fine", "unused")) == "ok    field: fine"
    assert str(Finding(False, "field", "missing", "create it")) == (
        "FAIL  field: missing — fix: create it"
    )
