"""The priorities pages' data, pure: judged issues into columns with their counts and shares,
resolved issues into weeks by class. Plain data in, plain data out."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from impact.decide import decide
from impact.model import Issue, Person
from pipeline.judge import Judged
from pipeline.priorities import (
    Resolved,
    Week,
    age_text,
    group_board,
    parse_time,
    resolved_column,
    resolved_from_json,
    week_starts,
    weeks_of,
)
from pipeline.priorities_reads import TimedCache, resolved_jql

BLOCKS = "Blocks paying customers"
DEGRADES = "Degrades paying customers' experience"
INDIRECT = "Indirect: feeds customer-facing work"
NONE = "None: internal preference"
NOW = datetime(2025, 3, 20, 15, 0, tzinfo=UTC)  # a Thursday


@pytest.fixture
def shop(impact_config):
    return impact_config.for_project("SHOP")


def judged(shop, key, impact=None, *, labels=(), created=None, summary="", **fields):
    issue = Issue(
        key=key,
        project="SHOP",
        summary=summary or f"issue {key}",
        labels=tuple(labels),
        impact_values=(impact,) if impact else (),
        reporter=Person(account_id="1", display_name="Ana Sousa"),
        **fields,
    )
    return Judged(issue, decide(issue, shop), extra={"created": created})


def test_a_board_splits_into_two_columns_and_the_issues_that_need_an_impact(shop):
    board = [  # board order, deliberately not by impact
        judged(shop, "SHOP-1", NONE),
        judged(shop, "SHOP-2", INDIRECT),
        judged(shop, "SHOP-3"),
        judged(shop, "SHOP-4", BLOCKS),
        judged(shop, "SHOP-5", INDIRECT),
        judged(shop, "SHOP-6", DEGRADES),
        judged(shop, "SHOP-7", NONE),
    ]
    grouped = group_board(1, board, shop)
    keys = {name: [row.key for row in rows] for name, rows in grouped.columns}
    # highest level first; the board's order within a level (SHOP-2 before SHOP-5)
    assert keys == {
        "external": ["SHOP-4", "SHOP-6", "SHOP-2", "SHOP-5"],
        "internal-preference": ["SHOP-1", "SHOP-7"],
        "missing": ["SHOP-3"],
    }
    assert [(c.name, c.count, round(c.share, 3)) for c in grouped.classes] == [
        ("external", 4, 0.571),
        ("internal-preference", 2, 0.286),
        ("missing", 1, 0.143),
    ]
    assert [(c.name, c.count) for c in grouped.levels] == [
        ("blocking", 1),
        ("degraded", 1),
        ("indirect", 2),
        ("none", 2),
        ("missing", 1),
    ]
    assert [row.key for row in grouped.rows()] == [f"SHOP-{n}" for n in range(1, 8)]
    assert grouped.total == 7


def test_the_level_is_the_one_triage_gives_now_not_the_labels(shop):
    # labelled an internal preference, but a person set the field to blocking since; and an
    # outage a rule recognises, with no label yet
    stale = judged(shop, "SHOP-1", BLOCKS, labels=["internal-preference"])
    ruled = judged(shop, "SHOP-2", summary="Outage: customers cannot pay")
    grouped = group_board(1, [stale, ruled], shop)
    rows = grouped.column("external")
    assert [(r.key, r.level) for r in rows] == [("SHOP-1", "blocking"), ("SHOP-2", "blocking")]
    assert rows[0].why == "set by a person in the field"
    assert rows[1].why == "inferred by rule 'outage reported'"
    assert grouped.column("internal-preference") == ()


def test_a_row_carries_what_a_colleague_reads(shop):
    created = "2025-03-01T09:30:00.000+0000"
    row = group_board(1, [judged(shop, "SHOP-9", NONE, created=created)], shop).rows()[0]
    assert (row.key, row.level, row.column, row.reporter) == (
        "SHOP-9",
        "none",
        "internal-preference",
        "Ana Sousa",
    )
    assert row.created == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    assert age_text(row.created, NOW) == "2 w"


def test_an_empty_board_counts_zero_everywhere(shop):
    grouped = group_board(1, [], shop)
    assert [(c.count, c.share) for c in grouped.classes] == [(0, 0.0)] * 3
    assert grouped.total == 0


@pytest.mark.parametrize(
    ("ago", "said"),
    [
        (timedelta(minutes=5), "5 min"),
        (timedelta(hours=3), "3 h"),
        (timedelta(hours=47), "47 h"),
        (timedelta(days=3), "3 d"),
        (timedelta(days=13), "13 d"),
        (timedelta(days=15), "2 w"),
        (timedelta(days=400), "57 w"),
        (timedelta(hours=-2), "0 min"),  # a clock a little ahead of ours
    ],
)
def test_ages_read_as_people_say_them(ago, said):
    assert age_text(NOW - ago, NOW) == said
    assert age_text(None, NOW) == "–"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T09:30:00.000+0000", datetime(2025, 3, 1, 9, 30, tzinfo=UTC)),
        ("2025-03-01T10:30:00.000+0100", datetime(2025, 3, 1, 9, 30, tzinfo=UTC)),
        ("2025-03-01T09:30:00", datetime(2025, 3, 1, 9, 30, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
    ],
)
def test_jira_times_are_read_with_their_offset(text, expected):
    assert parse_time(text) == expected


# ---- resolved issues by week


def test_the_twelve_weeks_start_on_mondays_and_end_with_this_one():
    starts = week_starts(NOW)
    assert len(starts) == 12
    assert starts[-1] == date(2025, 3, 17)
    assert starts[0] == date(2024, 12, 30)
    assert all(day.weekday() == 0 for day in starts)


@pytest.mark.parametrize(
    ("labels", "column"),
    [
        (["customer-impact-degraded", "customer-impact-inferred"], "external"),
        (["internal-preference"], "internal-preference"),
        (["needs-customer-impact"], "missing"),
        (["internal-preference", "customer-impact-blocking"], "external"),  # the highest wins
        (["checkout"], None),  # never triaged: not counted
    ],
)
def test_a_resolved_issue_counts_in_the_class_its_labels_say(shop, labels, column):
    assert resolved_column(labels, shop) == column


def test_resolved_issues_count_per_week_and_class(shop):
    def at(day, hour=12):
        return datetime(2025, 3, day, hour, tzinfo=UTC)

    resolved = [
        Resolved("SHOP-1", at(17, 0), "external"),  # this week's Monday, at midnight
        Resolved("SHOP-2", at(20, 14), "external"),  # today, before now
        Resolved("SHOP-3", at(18), "internal-preference"),
        Resolved("SHOP-4", at(16, 23), "missing"),  # last week's Sunday
        Resolved("SHOP-5", at(10), "external"),
        Resolved("SHOP-6", datetime(2024, 12, 29, 23, tzinfo=UTC), "external"),  # too old
        Resolved("SHOP-7", at(20, 16), "external"),  # after now: a clock ahead
    ]
    weeks = weeks_of(resolved, NOW)
    assert weeks[-1] == Week(date(2025, 3, 17), external=2, internal=1, missing=0)
    assert weeks[-2] == Week(date(2025, 3, 10), external=1, missing=1)
    assert sum(week.total for week in weeks) == 5
    assert weeks[-1].external_share == pytest.approx(2 / 3)
    assert weeks[-2].external_share == 0.5
    assert weeks[0].external_share is None  # nothing resolved: no share, not 0 %


def test_search_results_become_resolved_issues(shop):
    raw = [
        {"key": "SHOP-1", "fields": {"labels": ["internal-preference"],
                                     "resolutiondate": "2025-03-18T10:00:00.000+0000"}},
        {"key": "SHOP-2", "fields": {"labels": ["checkout"],
                                     "resolutiondate": "2025-03-18T10:00:00.000+0000"}},
        {"key": "SHOP-3", "fields": {"labels": ["needs-customer-impact"], "resolutiondate": None}},
        {"key": "SHOP-4", "fields": None},
    ]  # fmt: skip
    assert resolved_from_json(raw, shop) == (
        Resolved("SHOP-1", datetime(2025, 3, 18, 10, tzinfo=UTC), "internal-preference"),
    )


def test_the_search_asks_for_the_projects_labelled_issues_from_a_day_before_the_weeks(shop):
    assert resolved_jql(shop, date(2024, 12, 30)) == (
        'project = "SHOP" AND labels in ("customer-impact-blocking", "customer-impact-degraded", '
        '"customer-impact-indirect", "internal-preference", "needs-customer-impact") AND '
        '(resolutiondate >= "2024-12-29" OR (resolution is EMPTY AND statusCategory = Done AND '
        'updated >= "2024-12-29")) ORDER BY key ASC'
    )


# ---- the cache


def test_the_cache_keeps_values_a_while_and_a_bounded_number_of_them():
    clock = [0.0]
    cache = TimedCache(60, max_entries=2, clock=lambda: clock[0])
    cache.put("a", 1)
    cache.put("b", 2)
    clock[0] = 59.9
    assert (cache.get("a"), cache.get("b")) == (1, 2)
    cache.put("c", 3)  # the oldest goes
    assert (cache.get("a"), cache.get("c"), len(cache)) == (None, 3, 2)
    clock[0] = 120.0
    assert cache.get("c") is None
    off = TimedCache(0)
    off.put("a", 1)
    assert off.get("a") is None
