"""The 12 weeks on the board's page: what a fresh install shows, and issues done without a
resolution date (a workflow that sets none)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import FakeJira
from tests.test_priorities import VIEWER_TOKEN, bearer, build, in_this_week
from tests.test_priorities import jira as seeded_jira  # noqa: F401  (the fixture)


@pytest.fixture
def pages(store_settings, impact_config, dlog, huey, jira):
    settings = replace(store_settings, viewer_token=VIEWER_TOKEN, admin_token="admin-token-1234")
    return build(settings, impact_config, dlog, huey, jira).test_client()


@pytest.fixture
def jira(seeded_jira: FakeJira) -> FakeJira:  # noqa: F811
    return seeded_jira


def _stamp(days_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _done(key: str, label: str, reached_done: str | None) -> dict:
    return {
        "key": key,
        "fields": {
            "project": {"key": "SHOP"},
            "labels": [label],
            "status": {"name": "Done", "statusCategory": {"key": "done", "name": "Done"}},
            "resolution": None,
            "resolutiondate": None,
            "statuscategorychangedate": reached_done,
            "updated": _stamp(in_this_week(0.5)),
        },
    }


def test_a_fresh_install_says_what_will_fill_the_weeks(pages, jira):
    jira.issues = {}
    page = pages.get("/priorities/1", headers=bearer(VIEWER_TOKEN)).get_data(as_text=True)
    assert "Nothing to chart yet" in page
    assert "Each week fills in as the team resolves triaged issues" in page
    assert "<svg" not in page and "Week of" not in page  # no chart of zeros, no rows of zeros


def test_done_without_a_resolution_counts_on_the_day_it_reached_done(pages, jira):
    jira.issues = {
        "SHOP-80": _done("SHOP-80", "customer-impact-blocking", _stamp(in_this_week(0.5))),
        "SHOP-81": _done("SHOP-81", "internal-preference", None),
    }
    data = pages.get("/priorities/1.json", headers=bearer(VIEWER_TOKEN)).get_json()
    this_week = data["weeks"][-1]
    assert (this_week["external"], this_week["internal-preference"]) == (1, 0)
    assert data["weeks_undated"] == 1
    page = pages.get("/priorities/1", headers=bearer(VIEWER_TOKEN)).get_data(as_text=True)
    assert "An issue done without a resolution counts on the day it reached done." in page
    assert "1 done issue with neither date\n  is left out." in page
