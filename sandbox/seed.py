"""Starting data: ``empty`` (accounts, projects, boards, screens) and ``demo`` (the same plus
issues), each with the impact field set up or, for ``jira-impact setup`` to do it, without.

Accounts: the service account ``impact-bot`` (e-mail impact-bot@example.com, API token
``sandbox-token``, PAT ``sandbox-pat``, every permission) and the people ana (support), ben and
carla (token ``<name>-token``, PAT ``<name>-pat``, every permission but Administer).

Screens, as a classic project gets them: SHOP's issue types use its default screen for creating
and editing, but a Bug is created on a screen of its own; SUP has one screen for everything. With
the field, the impact field (customfield_10042: a global context, one option per default level)
is on all of them; without it, Jira has no such field.
"""

from __future__ import annotations

from typing import Any

from sandbox import catalog, fieldconfig, issues, lexorank, shapes
from sandbox.state import (
    Account,
    Board,
    Filter,
    IssueTypeScreenScheme,
    JiraState,
    Project,
    Screen,
    ScreenScheme,
    ScreenTab,
)

SEEDS = ("empty", "demo")
SERVICE_ACCOUNT = "impact-bot"

_PEOPLE = (  # name, display name, extra group
    ("ana", "Ana Sousa", "support"),
    ("ben", "Ben Carter", "logistics"),
    ("carla", "Carla Mendes", "consulting"),
)

# summary, type, reporter, impact option (or None), components, labels, link to, description
_Row = tuple[str, str, str, str | None, list[str], list[str], str | None, str]
_SUP_ISSUES: tuple[_Row, ...] = (
    ("Customers cannot find any product with search", "Task", "ana", None, ["Tickets"], [], None,
     "Three customers called: search shows no results at all since this morning."),
    ("Mobile product pages are slow (ticket #4411)", "Task", "ana", None, ["Tickets"], [], None,
     "A customer reports product pages take 8 seconds to load on their phone."),
)  # fmt: skip
_SHOP_ISSUES: tuple[_Row, ...] = (
    ("Checkout fails with a 500 error for saved cards", "Bug", "ana", None, ["Checkout"], [],
     None, "Customers paying with a saved card get an error page. Several reports this morning."),
    ("Order black medium-point pens for the logistics team", "Task", "ben",
     "None: internal preference", [], [], None,
     "The logistics team prefers black medium-point pens to the blue ones we stock."),
    ("Outage: product search returns no results", "Bug", "ana", "Blocks paying customers",
     ["Search"], [], "SUP-1", "Since 09:00 every search returns nothing; customers cannot shop."),
    ("Invoice PDF shows the wrong VAT rate", "Bug", "carla",
     "Degrades paying customers' experience", ["Billing"], [], None,
     "Invoices for Portuguese addresses show 21% instead of 23%."),
    ("Flip-chart markers for the consultants' client workshop", "Task", "carla",
     "Indirect: feeds customer-facing work", [], [], None,
     "The consultants run a paid workshop at a client site on Friday and need markers."),
    ("Rename the internal deploys chat channel", "Task", "ben", None, [], [], None,
     "#deploys-new should become #deploys now that the old one is archived."),
    ("Product pages load slowly on mobile", "Bug", "ana", None, ["Catalog"], [], "SUP-2",
     "Support forwarded a ticket: pages take about 8 s on mobile networks."),
    ("Upgrade the CI runners to the new base image", "Task", "carla", None, [], [], None,
     "The old image loses security updates next quarter."),
    ("Coupon field rejects valid codes", "Bug", "ana", None, ["Checkout"], ["checkout"], None,
     "Codes with lower-case letters are refused."),
    ("New plants for the office kitchen", "Task", "ben", "None: internal preference", [], [],
     None, "The kitchen plants did not survive the summer."),
    ("Price list export for the sales team's proposals", "Story", "carla", None, [], ["sales"],
     None, "Sales want a CSV of current prices to prepare customer proposals."),
    ("Dark colour scheme for the internal admin dashboard", "Story", "ben", None, [], [], None,
     "Several of us would like a dark theme."),
)  # fmt: skip
# The SHOP board's starting order, by issue number: deliberately not by impact.
_SHOP_ORDER = (6, 2, 1, 8, 10, 4, 12, 3, 5, 9, 7, 11)
_SHOP_STATUS = {8: "3", 10: "10001"}  # In Progress, Done
BUG = "10004"


def stated_impacts() -> list[tuple[str, str, str]]:
    """(issue key, reporter, option value) of the demo's SHOP issues whose reporter stated the
    impact: a seed without the field holds these back, for people to state once it exists."""
    return [
        (f"SHOP-{n}", row[2], row[3]) for n, row in enumerate(_SHOP_ISSUES, 1) if row[3] is not None
    ]


class SandboxState(JiraState):
    """The sandbox's Jira, started from one of ``SEEDS`` (and from it again on a reset)."""

    def populate(self, seed: str) -> None:
        apply(self, seed)


# What the issue's admin gives the service account's scoped token and OAuth client.
SERVICE_SCOPES = (
    "read:jira-work",
    "write:jira-work",
    "read:jira-user",
    "manage:jira-configuration",
    "manage:jira-project",
    "read:board-scope:jira-software",
    "read:board-scope.admin:jira-software",
    "write:issue:jira-software",
    "read:project:jira",
    "read:issue-details:jira",
)


def apply(state: JiraState, name: str) -> None:
    """Fill an empty state with the named seed."""
    if name not in SEEDS:
        raise ValueError(f"unknown seed {name!r}; choose from {', '.join(SEEDS)}")
    _base(state)
    if name == "demo":
        _demo(state)


def _base(state: JiraState) -> None:
    state.add_account(
        Account(
            name=SERVICE_ACCOUNT,
            display_name="Impact Bot",
            email="impact-bot@example.com",
            api_token="sandbox-token",
            pat="sandbox-pat",
            groups=["jira-software-users", "jira-administrators"],
            permissions=set(catalog.PERMISSIONS),
            scoped_token="sandbox-scoped-token",
            client_id="sandbox-client-id",
            client_secret="sandbox-client-secret",
            scopes=set(SERVICE_SCOPES),
        )
    )
    for name, display, group in _PEOPLE:
        state.add_account(
            Account(
                name=name,
                display_name=display,
                email=f"{name}@example.com",
                api_token=f"{name}-token",
                pat=f"{name}-pat",
                groups=["jira-software-users", group],
                permissions=set(catalog.PERSON_PERMISSIONS),
            )
        )
    shop_components = ["Checkout", "Billing", "Search", "Catalog", "Warehouse"]
    state.projects["SHOP"] = Project(
        "10000", "SHOP", "Shop", [(str(10010 + n), c) for n, c in enumerate(shop_components)]
    )
    state.projects["SUP"] = Project("10001", "SUP", "Support", [("10020", "Tickets")])
    for board_id, key in ((1, "SHOP"), (2, "SUP")):
        filter_id = 10000 + board_id - 1
        state.filters[filter_id] = Filter(
            filter_id,
            f"Filter for {key} board",
            f"project = {key} ORDER BY Rank ASC",
            SERVICE_ACCOUNT,
        )
        state.boards[board_id] = Board(board_id, f"{key} board", "kanban", key, filter_id)
    _screens(state)
    if state.with_field:
        impact = fieldconfig.create_field(
            state, name=catalog.IMPACT_NAME, type_key=catalog.SELECT_TYPE
        )
        fieldconfig.add_options(state, impact.contexts[0], [v for _, v in catalog.IMPACT_OPTIONS])
        for screen in state.screens.values():
            screen.tabs[0].fields.append(impact.id)


def _screens(state: JiraState) -> None:
    def screen(screen_id: int, name: str) -> int:
        tab = ScreenTab(screen_id, "Field Tab", list(catalog.SCREEN_OPERATIONS))
        state.screens[screen_id] = Screen(screen_id, name, [tab])
        return screen_id

    def scheme(scheme_id: int, name: str, default: int, create: int | None = None) -> int:
        state.screen_schemes[scheme_id] = ScreenScheme(scheme_id, name, default, create=create)
        return scheme_id

    shop_default = screen(10000, "SHOP: Scrum Default Issue Screen")
    shop_bug = screen(10001, "SHOP: Scrum Bug Create Screen")
    shop_items = {
        "default": scheme(10000, "SHOP: Scrum Default Screen Scheme", shop_default),
        BUG: scheme(10001, "SHOP: Scrum Bug Screen Scheme", shop_default, create=shop_bug),
    }
    sup_items = {
        "default": scheme(
            10002,
            "SUP: Kanban Default Screen Scheme",
            screen(10002, "SUP: Kanban Default Issue Screen"),
        )
    }
    for scheme_id, key, items in ((10000, "SHOP", shop_items), (10001, "SUP", sup_items)):
        state.type_screen_schemes[scheme_id] = IssueTypeScreenScheme(
            scheme_id,
            f"{key}: Issue Type Screen Scheme",
            items,
            [state.projects[key].id],
        )


def _demo(state: JiraState) -> None:
    for project, rows in (("SUP", _SUP_ISSUES), ("SHOP", _SHOP_ISSUES)):
        for row in rows:
            _create(state, project, *row)
    shop = [state.issues[f"SHOP-{n}"] for n in _SHOP_ORDER]
    sup = [i for i in state.issues.values() if i["fields"]["project"]["key"] == "SUP"]
    for issue, rank in zip([*sup, *shop], lexorank.spread(len(sup) + len(shop)), strict=True):
        issue["fields"][catalog.RANK_FIELD] = rank
    for number, status_id in _SHOP_STATUS.items():
        state.issues[f"SHOP-{number}"]["fields"]["status"] = shapes.status_json(
            state.base_url, status_id
        )


def _create(
    state: JiraState,
    project: str,
    summary: str,
    issuetype: str,
    reporter: str,
    impact: str | None,
    components: list[str],
    labels: list[str],
    link: str | None,
    description: str,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "project": {"key": project},
        "issuetype": {"name": issuetype},
        "summary": summary,
        "description": description,
        "labels": labels,
        "components": [{"name": c} for c in components],
    }
    if impact and state.with_field:
        fields[catalog.IMPACT_FIELD] = {"value": impact}
    update = {}
    if link:
        update["issuelinks"] = [
            {"add": {"type": {"name": "Relates"}, "outwardIssue": {"key": link}}}
        ]
    return issues.create_issue(
        state, state.accounts[reporter], {"fields": fields, "update": update}
    )
