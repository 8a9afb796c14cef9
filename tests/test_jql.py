from datetime import UTC, datetime

import pytest

from sandbox.jql import JqlError, SortKey, parse

FIELDS = {"External customer impact": "customfield_10042", "Rank": "customfield_10019"}

TODO = {"key": "new", "name": "To Do", "id": 2}
DOING = {"key": "indeterminate", "name": "In Progress", "id": 4}
DONE = {"key": "done", "name": "Done", "id": 3}


def issue(
    key,
    *,
    labels=(),
    category=TODO,
    status=None,
    kind="Task",
    resolution=None,
    impact=None,
    rank=None,
    created=None,
    summary="",
    description=None,
):
    fields = {
        "project": {
            "key": key.split("-")[0],
            "id": "100" + str(len(key.split("-")[0])),
            "name": key.split("-")[0].title() + " project",
        },
        "labels": list(labels),
        "status": {"name": status or category["name"], "statusCategory": category},
        "issuetype": {"name": kind, "id": "1" if kind == "Bug" else "3"},
        "resolution": {"name": resolution} if resolution else None,
        "customfield_10042": {"value": impact, "id": "2" + str(len(impact))} if impact else None,
        "customfield_10019": rank,
        "summary": summary,
        "description": description,
    }
    if created:
        fields["created"] = created
    return {"key": key, "id": "1" + key.split("-")[1], "fields": fields}


ISSUES = [
    issue(
        "SHOP-1",
        labels=["needs-customer-impact"],
        kind="Bug",
        impact=None,
        rank="0|i00002:",
        summary="Checkout fails for customers",
        created="2024-03-01T10:00:00.000+0000",
    ),
    issue(
        "SHOP-2",
        labels=["customer-impact-blocking", "rank-pinned"],
        category=DOING,
        status="In Review",
        impact="Blocks paying customers",
        rank="0|i00001:",
        created="2024-03-02T10:00:00.000+0000",
    ),
    issue(
        "SHOP-10",
        category=DONE,
        status="Closed",
        resolution="Fixed",
        impact="None",
        rank="0|i00003:",
        created="2024-02-01T10:00:00.000+0000",
    ),
    issue(
        "OPS-3",
        labels=["Internal-Preference"],
        impact="None",
        rank="0|hzzzzz:",
        description={
            "type": "doc",
            "content": [
                {
                    "type": "paragraph",
                    "content": [{"type": "text", "text": "Black medium-point pens"}],
                }
            ],
        },
    ),
]


def matching(jql):
    query = parse(jql, fields=FIELDS)
    return [item["key"] for item in ISSUES if query.matches(item)]


@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        ("", ["SHOP-1", "SHOP-2", "SHOP-10", "OPS-3"]),
        ("project = SHOP", ["SHOP-1", "SHOP-2", "SHOP-10"]),
        ("project = shop", ["SHOP-1", "SHOP-2", "SHOP-10"]),
        ('project = "Ops project"', ["OPS-3"]),
        ("project in (OPS, NOPE)", ["OPS-3"]),
        ("project != SHOP", ["OPS-3"]),
        ("project not in (SHOP)", ["OPS-3"]),
        ("key = SHOP-10", ["SHOP-10"]),
        ("issuekey in (SHOP-1, ops-3)", ["SHOP-1", "OPS-3"]),
        ("labels = needs-customer-impact", ["SHOP-1"]),
        ("labels = internal-preference", ["OPS-3"]),  # JQL compares labels in any case
        ("labels in (rank-pinned, needs-customer-impact)", ["SHOP-1", "SHOP-2"]),
        # != and NOT IN leave out issues with no labels at all, as Jira does
        ("labels != rank-pinned", ["SHOP-1", "OPS-3"]),
        ("labels not in (rank-pinned, needs-customer-impact)", ["OPS-3"]),
        ("labels not in (rank-pinned) OR labels is EMPTY", ["SHOP-1", "SHOP-10", "OPS-3"]),
        ("labels is EMPTY", ["SHOP-10"]),
        ("labels = EMPTY", ["SHOP-10"]),
        ("labels in (rank-pinned, EMPTY)", ["SHOP-2", "SHOP-10"]),
        ("labels is not EMPTY", ["SHOP-1", "SHOP-2", "OPS-3"]),
        ("labels IS NOT null", ["SHOP-1", "SHOP-2", "OPS-3"]),
        ("statusCategory = Done", ["SHOP-10"]),
        ("statusCategory != Done", ["SHOP-1", "SHOP-2", "OPS-3"]),
        ('statusCategory in ("To Do", "In Progress")', ["SHOP-1", "SHOP-2", "OPS-3"]),
        ("statuscategory = indeterminate", ["SHOP-2"]),
        ('status = "In Review"', ["SHOP-2"]),
        ("status in ('closed', 'To Do')", ["SHOP-1", "SHOP-10", "OPS-3"]),
        ("resolution = Unresolved", ["SHOP-1", "SHOP-2", "OPS-3"]),
        ("resolution is EMPTY", ["SHOP-1", "SHOP-2", "OPS-3"]),
        ("resolution != Unresolved", ["SHOP-10"]),
        ("resolution = Fixed", ["SHOP-10"]),
        ("issuetype = Bug", ["SHOP-1"]),
        ("type != bug", ["SHOP-2", "SHOP-10", "OPS-3"]),
        ('"External customer impact" is EMPTY', ["SHOP-1"]),
        ('"external CUSTOMER impact" is not EMPTY', ["SHOP-2", "SHOP-10", "OPS-3"]),
        ('"External customer impact" = "Blocks paying customers"', ["SHOP-2"]),
        (
            "'External customer impact' in (None, 'blocks paying customers')",
            ["SHOP-2", "SHOP-10", "OPS-3"],
        ),
        ('"External customer impact" != None', ["SHOP-2"]),
        ("cf[10042] is EMPTY", ["SHOP-1"]),
        ("CF[10042] = None", ["SHOP-10", "OPS-3"]),
        ("cf[10042] not in (None)", ["SHOP-2"]),
        ('text ~ "customers"', ["SHOP-1"]),
        ('text ~ "medium pens"', ["OPS-3"]),  # every word, in any order; ADF descriptions too
        ('summary ~ "check*"', ["SHOP-1"]),
        ('text !~ "customers" AND project = SHOP', ["SHOP-2", "SHOP-10"]),
        ("project = SHOP AND labels is EMPTY", ["SHOP-10"]),
        ("project = OPS OR labels = rank-pinned", ["SHOP-2", "OPS-3"]),
        # AND binds tighter than OR
        ("project = OPS OR project = SHOP AND issuetype = Bug", ["SHOP-1", "OPS-3"]),
        ("(project = OPS OR project = SHOP) AND issuetype = Task", ["SHOP-2", "SHOP-10", "OPS-3"]),
        ("NOT project = SHOP", ["OPS-3"]),
        ("NOT labels = rank-pinned", ["SHOP-1", "SHOP-10", "OPS-3"]),  # NOT is the complement
        ("project = SHOP AND NOT (labels = rank-pinned OR statusCategory = Done)", ["SHOP-1"]),
        ("project = SHOP && issuetype = Bug || key = OPS-3", ["SHOP-1", "OPS-3"]),
        ("project = SHOP ORDER BY Rank ASC", ["SHOP-1", "SHOP-2", "SHOP-10"]),
        ('labels = "needs-customer-impact\\u0020"', []),
        ("summary ~ 'it\\'s'", []),
    ],
)
def test_matches(jql, expected):
    assert matching(jql) == expected


@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        ("project = SHOP ORDER BY Rank ASC", ["SHOP-2", "SHOP-1", "SHOP-10"]),
        ("project = SHOP ORDER BY rank", ["SHOP-2", "SHOP-1", "SHOP-10"]),
        ("project = SHOP ORDER BY Rank DESC", ["SHOP-10", "SHOP-1", "SHOP-2"]),
        ("ORDER BY key ASC", ["OPS-3", "SHOP-1", "SHOP-2", "SHOP-10"]),  # numbers as numbers
        ("ORDER BY issuekey DESC", ["SHOP-10", "SHOP-2", "SHOP-1", "OPS-3"]),
        ("ORDER BY created", ["SHOP-10", "SHOP-1", "SHOP-2", "OPS-3"]),  # no date: last
        ("ORDER BY created DESC", ["SHOP-2", "SHOP-1", "SHOP-10", "OPS-3"]),
        ("ORDER BY statusCategory", None),  # unsupported sort: see the error table
        ("", ["SHOP-1", "SHOP-2", "SHOP-10", "OPS-3"]),  # no ORDER BY keeps the given order
    ],
)
def test_sort(jql, expected):
    if expected is None:
        with pytest.raises(JqlError):
            parse(jql, fields=FIELDS)
        return
    query = parse(jql, fields=FIELDS)
    found = [item for item in ISSUES if query.matches(item)]
    assert [item["key"] for item in query.sort(found)] == expected


def test_sort_breaks_ties_with_the_next_key():
    twins = [issue("SHOP-7", rank="0|i00000:"), issue("SHOP-5", rank="0|i00000:"), issue("SHOP-6")]
    query = parse("project = SHOP ORDER BY Rank ASC, key ASC", fields=FIELDS)
    assert [item["key"] for item in query.sort(twins)] == ["SHOP-5", "SHOP-7", "SHOP-6"]


def test_sort_uses_the_rank_field_given():
    board = [issue("SHOP-1"), issue("SHOP-2")]
    board[0]["fields"]["customfield_10500"] = "0|i00009:"
    board[1]["fields"]["customfield_10500"] = "0|i00001:"
    query = parse("project = SHOP ORDER BY Rank", fields=FIELDS, rank_field="customfield_10500")
    assert query.rank_field_id == "customfield_10500"
    assert [item["key"] for item in query.sort(board)] == ["SHOP-2", "SHOP-1"]


@pytest.mark.parametrize(
    ("jql", "bounded", "by_rank", "order_by"),
    [
        ("", False, False, ()),
        ("   ", False, False, ()),
        ("order by key", False, False, (SortKey("key"),)),
        ("ORDER BY Rank DESC", False, True, (SortKey("rank", descending=True),)),
        ("project = SHOP", True, False, ()),
        (
            "labels is EMPTY ORDER BY Rank ASC, key ASC",
            True,
            True,
            (SortKey("rank"), SortKey("key")),
        ),
        ("project = SHOP ORDER BY key, Rank", True, False, (SortKey("key"), SortKey("rank"))),
    ],
)
def test_query_properties(jql, bounded, by_rank, order_by):
    query = parse(jql, fields=FIELDS)
    assert (query.is_bounded, query.orders_by_rank, query.order_by) == (bounded, by_rank, order_by)
    assert query.rank_field_id == "customfield_10019"


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        (
            "assignee = jsmith",
            "Error in the JQL Query: The field 'assignee' is not supported by the sandbox's JQL "
            "subset. (line 1, character 1)",
        ),
        ("colour = red", "Field 'colour' does not exist or you do not have permission to view it."),
        (
            '"Customer impact" is EMPTY',
            "Field 'Customer impact' does not exist or you do not have permission to view it.",
        ),
        (
            "cf[99999] is EMPTY",
            "Field 'cf[99999]' does not exist or you do not have permission to view it.",
        ),
        (
            "project = SHOP AND",
            "Error in the JQL Query: Expecting a field name but got the end of the query. "
            "(line 1, character 19)",
        ),
        (
            "project SHOP",
            "Error in the JQL Query: Expecting operator but got 'SHOP'. The valid operators are "
            "'=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'. "
            "(line 1, character 9)",
        ),
        (
            "project = SHOP labels = x",
            "Error in the JQL Query: Expecting either 'OR' or 'AND' but got 'labels'. "
            "(line 1, character 16)",
        ),
        (
            'labels = "open',
            "Error in the JQL Query: The quoted string 'open' has not been completed. "
            "(line 1, character 10)",
        ),
        (
            "labels = 'a\\qb'",
            "Error in the JQL Query: The escape sequence '\\q' in the quoted string is illegal. "
            "(line 1, character 12)",
        ),
        (
            "(project = SHOP",
            "Error in the JQL Query: Expecting ')' but got the end of the query. "
            "(line 1, character 16)",
        ),
        (
            "project in SHOP",
            "Error in the JQL Query: Expecting '(' but got 'SHOP'. (line 1, character 12)",
        ),
        (
            "project in (SHOP OPS)",
            "Error in the JQL Query: Expecting ')' or ',' but got 'OPS'. (line 1, character 18)",
        ),
        (
            "project = (SHOP, OPS)",
            "Error in the JQL Query: The operator '=' does not support list values. "
            "(line 1, character 11)",
        ),
        (
            "labels = AND",
            "Error in the JQL Query: Expecting either a value, list or function but got 'AND'. "
            "(line 1, character 10)",
        ),
        (
            "labels in membersOf(x)",
            "Error in the JQL Query: Expecting '(' but got 'membersOf'. (line 1, character 11)",
        ),
        (
            "labels = now()",
            "Error in the JQL Query: The function 'now' is not supported by the sandbox's JQL "
            "subset. (line 1, character 10)",
        ),
        ("labels ~ x", "The operator '~' is not supported by the 'labels' field."),
        ("project > SHOP", "The operator '>' is not supported by the 'project' field."),
        ("project is EMPTY", "The operator 'IS' is not supported by the 'project' field."),
        ("project = EMPTY", "The field 'project' does not support searching for EMPTY values."),
        (
            "labels is x",
            "Error in the JQL Query: The operator 'IS' only takes EMPTY or NULL. "
            "(line 1, character 11)",
        ),
        (
            "statusCategory = Finished",
            "The value 'Finished' does not exist for the field 'statusCategory'.",
        ),
        ("text = customers", "The operator '=' is not supported by the 'text' field."),
        ('text ~ "!!"', "The field 'text' needs a word to search for."),
        (
            "project = SHOP ORDER key",
            "Error in the JQL Query: Expecting 'by' but got 'key'. (line 1, character 22)",
        ),
        (
            "project = SHOP ORDER BY Rank ASC key",
            "Error in the JQL Query: Expecting a comma but got 'key'. (line 1, character 34)",
        ),
        (
            "ORDER BY nonsense",
            "Field 'nonsense' does not exist or you do not have permission to view it.",
        ),
        (
            "ORDER BY priority DESC",
            "Error in the JQL Query: Sorting by 'priority' is not supported by the sandbox's JQL "
            "subset. (line 1, character 10)",
        ),
        (
            "labels ! x",
            "Error in the JQL Query: The character '!' is a reserved JQL character. "
            "(line 1, character 8)",
        ),
    ],
)
def test_rejects_what_it_cannot_answer(jql, message):
    with pytest.raises(JqlError) as caught:
        parse(jql, fields=FIELDS)
    assert caught.value.message == message
    assert str(caught.value) == message


def test_custom_field_by_cf_key_in_the_mapping():
    query = parse("cf[10042] is EMPTY", fields={"cf[10042]": "customfield_10042"})
    assert [item["key"] for item in ISSUES if query.matches(item)] == ["SHOP-1"]


def test_a_field_that_holds_a_list_of_options():
    multi = issue("SHOP-4")
    multi["fields"]["customfield_10042"] = [{"value": "Degrades"}, {"value": "Blocks"}]
    assert parse("cf[10042] = blocks", fields=FIELDS).matches(multi)
    assert not parse("cf[10042] not in (Blocks)", fields=FIELDS).matches(multi)


# ---- dates: resolved issues by week (the priorities chart asks for these)

NOW = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)


def resolved(key, when):
    done = issue(key, category=DONE, resolution="Done")
    if when is not None:
        done["fields"]["resolutiondate"] = when
    return done


DATED = [
    resolved("SHOP-11", "2025-03-19T09:00:00.000+0000"),  # yesterday
    resolved("SHOP-12", "2025-03-01T00:00:00.000+0000"),  # 19.5 days ago
    resolved("SHOP-13", "2024-12-01T08:30:00.000+0100"),  # months ago
    resolved("SHOP-14", None),  # not resolved
]


@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        ("resolutiondate >= -1w", ["SHOP-11"]),
        ("resolved >= -3w", ["SHOP-11", "SHOP-12"]),
        ('resolutiondate >= "-2w 6d"', ["SHOP-11", "SHOP-12"]),
        ('resolutiondate >= "-2w -5d"', ["SHOP-11"]),
        ('resolutiondate >= "2025-03-01"', ["SHOP-11", "SHOP-12"]),
        ('resolutiondate > "2025/03/01"', ["SHOP-11"]),
        ('resolutiondate < "2025-03-01 00:01"', ["SHOP-12", "SHOP-13"]),
        ('resolutiondate <= "2024-12-01 07:30"', ["SHOP-13"]),
        ('resolutiondate = "2025-03-01"', ["SHOP-12"]),
        ('resolutiondate != "2025-03-01"', ["SHOP-11", "SHOP-13"]),
        ("resolutiondate is EMPTY", ["SHOP-14"]),
        ("resolved is not EMPTY AND resolutiondate >= -100w", ["SHOP-11", "SHOP-12", "SHOP-13"]),
        ("created >= -1w", []),
    ],
)
def test_dates_compare_absolute_and_relative_to_now(jql, expected):
    query = parse(jql, fields=FIELDS, now=NOW)
    assert [i["key"] for i in DATED if query.matches(i)] == expected


def test_sorts_by_resolution_date():
    query = parse("resolved is not EMPTY ORDER BY resolutiondate DESC", fields=FIELDS)
    assert [i["key"] for i in query.sort(DATED[::-1]) if query.matches(i)] == [
        "SHOP-11",
        "SHOP-12",
        "SHOP-13",
    ]


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("resolutiondate ~ x", "The operator '~' is not supported by the 'resolutiondate' field."),
        ("resolved in (-1w)", "The operator 'IN' is not supported by the 'resolved' field."),
        ("resolved = EMPTY", "The field 'resolved' does not support searching for EMPTY values."),
        (
            "resolved is -1w",
            "Error in the JQL Query: The operator 'IS' only takes EMPTY or NULL. "
            "(line 1, character 13)",
        ),
        (
            'resolved >= "last week"',
            "Date value 'last week' for field is invalid. Valid formats include: "
            "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
            "format e.g. '-5d', '4w 2d'.",
        ),
    ],
)
def test_dates_refuse_what_jira_refuses(jql, message):
    with pytest.raises(JqlError) as caught:
        parse(jql, fields=FIELDS, now=NOW)
    assert caught.value.message == message
