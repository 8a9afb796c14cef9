"""The plan of ``jira-impact setup`` from plain data: what Jira answered and the config in, the
items (ok, a change, a step by hand, a note) out. No Jira, no mocks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connector.admin import AdminWebhook, Registered, WebhookApi
from connector.field_admin import FieldContext, FieldOption, Screen, ScreenTab, ScreenUse
from impact.model import FieldRef
from jira_setup.check import Finding
from jira_setup.setup_plan import (
    AddOptions,
    AddToScreen,
    AssignProjects,
    CreateContext,
    CreateField,
    FoundField,
    Item,
    ProjectFacts,
    RegisterWebhook,
    SiteFacts,
    Status,
    plan_setup,
    ready,
)
from jira_setup.webhook import by_hand, filter_problem, with_url_variables

SELECT = "com.atlassian.jira.plugin.system.customfieldtypes:select"
FIELD = FoundField("customfield_10042", "External customer impact", SELECT)
VALUES = (
    "Blocks paying customers",
    "Degrades paying customers' experience",
    "Indirect: feeds customer-facing work",
    "None: internal preference",
)
RECEIVER = "https://impact.example.com/webhooks/jira"
GLOBAL = FieldContext("10142", "Default Configuration Scheme", True)
TYPES = (("10001", "Story"), ("10002", "Task"), ("10004", "Bug"))
SHOP = ProjectFacts(
    "SHOP",
    "10000",
    TYPES,
    scheme="SHOP: Issue Type Screen Scheme",
    screen_uses=(
        ScreenUse("1", "create", ("default",)),
        ScreenUse("1", "edit", ("default", "10004")),
        ScreenUse("2", "create", ("10004",)),
    ),
)
DEFAULT_SCREEN = Screen("1", "SHOP: Default Issue Screen", (ScreenTab("11", "Field Tab", ()),))
BUG_SCREEN = Screen("2", "SHOP: Bug Create Screen", (ScreenTab("21", "Field Tab", ()),))
HOOK = AdminWebhook(
    "jira-customer-impact",
    RECEIVER,
    ("jira:issue_created", "jira:issue_updated"),
    "project in (SHOP)",
    signed=True,
)


def options(*values: str, disabled: tuple[str, ...] = ()) -> tuple[FieldOption, ...]:
    return tuple(FieldOption(str(n), v, v in disabled) for n, v in enumerate(values, 100))


def on(screen: Screen, field_id: str = FIELD.id) -> Screen:
    tab = screen.tabs[0]
    return replace(screen, tabs=(replace(tab, fields=(*tab.fields, field_id)),))


FRESH = SiteFacts(
    cloud=True,
    field=None,
    projects=(SHOP,),
    screens=(DEFAULT_SCREEN, BUG_SCREEN),
    url=RECEIVER,
    jql="project in (SHOP)",
)
SET_UP = replace(
    FRESH,
    field=FIELD,
    contexts=(GLOBAL,),
    options=(("10142", options(*VALUES)),),
    screens=(on(DEFAULT_SCREEN), on(BUG_SCREEN)),
    webhooks=(HOOK,),
)


def changes(facts: SiteFacts, config, settings) -> list[object]:
    return list(plan_setup(facts, config, settings).changes)


def by_status(facts: SiteFacts, config, settings, status: Status) -> list[Item]:
    return list(plan_setup(facts, config, settings).of(status))


# ---- Cloud


def test_a_fresh_site_gets_the_field_its_options_the_screens_and_the_webhook(
    impact_config, settings
):
    plan = plan_setup(FRESH, impact_config, settings)

    assert list(plan.changes) == [
        CreateField("External customer impact"),
        AddOptions(None, None, VALUES),
        AddToScreen(None, "1", "11"),
        AddToScreen(None, "2", "21"),
        RegisterWebhook("jira-customer-impact", RECEIVER, "project in (SHOP)"),
    ]
    assert plan.of(Status.MANUAL) == ()
    assert [ready(c) for c in plan.changes] == [True, False, False, False, True]
    screen_lines = [i.line() for i in plan.items if i.subject.startswith("screen")]
    assert screen_lines == [
        "to do   screen 'SHOP: Default Issue Screen' (1): add the field to its tab 'Field Tab'; "
        "SHOP creates and edits issues with it",
        "to do   screen 'SHOP: Bug Create Screen' (2): add the field to its tab 'Field Tab'; "
        "SHOP creates Bug issues with it",
    ]


def test_a_site_set_up_already_gets_no_change(impact_config, settings):
    plan = plan_setup(SET_UP, impact_config, settings)

    assert plan.changes == ()
    assert {item.status for item in plan.items} == {Status.OK}


def test_only_missing_options_are_added_and_a_persons_options_are_left_as_they_are(
    impact_config, settings
):
    present = options(VALUES[0], "Degraded", VALUES[2], VALUES[3], "Legacy", disabled=("Legacy",))
    facts = replace(SET_UP, options=(("10142", present),))

    plan = plan_setup(facts, impact_config, settings)

    assert list(plan.changes) == [AddOptions(FIELD.id, "10142", (VALUES[1],))]
    (note,) = plan.of(Status.NOTE)
    assert note.message.startswith("'Degraded' in context 10142 maps to no level")
    assert "left as it is" in note.message


def test_an_option_disabled_in_jira_is_not_added_twice_but_left_to_an_admin(
    impact_config, settings
):
    facts = replace(SET_UP, options=(("10142", options(*VALUES, disabled=(VALUES[3],))),))

    plan = plan_setup(facts, impact_config, settings)

    assert plan.changes == ()
    (manual,) = plan.of(Status.MANUAL)
    assert manual.message == (
        "'None: internal preference' is disabled in context 10142, so nobody can pick it"
    )
    assert manual.fix is not None and "Edit options" in manual.fix
    assert manual.who == "a Jira administrator"


def test_without_a_context_for_the_project_one_is_made_and_gets_the_options(
    impact_config, settings
):
    other = FieldContext("10150", "OPS only", False, ("10009",))
    facts = replace(SET_UP, contexts=(other,), options=(("10150", options(*VALUES)),))

    plan = plan_setup(facts, impact_config, settings)

    assert list(plan.changes) == [
        CreateContext(FIELD.id, "External customer impact: SHOP", ("10000",)),
        AddOptions(FIELD.id, None, VALUES),
    ]
    assert not ready(plan.changes[1])


def test_a_project_missing_from_a_context_that_serves_another_configured_one_is_added_to_it(
    impact_config, settings
):
    ops = ProjectFacts("OPS", "10009", TYPES, scheme="OPS scheme")
    shop_only = FieldContext("10150", "SHOP only", False, ("10000",))
    ops_settings = replace(impact_config.projects[0], key="OPS", board=None)
    config = replace(impact_config, projects=(*impact_config.projects, ops_settings))
    facts = replace(
        SET_UP, projects=(SHOP, ops), contexts=(shop_only,), options=(("10150", options(*VALUES)),)
    )

    assert changes(facts, config, settings) == [AssignProjects(FIELD.id, "10150", ("10009",))]


def test_a_field_given_by_id_that_jira_lacks_is_not_created(impact_config, settings):
    config = replace(impact_config, field=FieldRef(id="customfield_99"))

    plan = plan_setup(FRESH, config, settings)

    assert [c for c in plan.changes if not isinstance(c, RegisterWebhook)] == []
    (manual,) = plan.of(Status.MANUAL)
    assert manual.subject == "field"
    assert "customfield_99" in manual.message


def test_a_field_of_another_type_with_the_name_is_left_to_an_admin(impact_config, settings):
    textarea = "com.atlassian.jira.plugin.system.customfieldtypes:textarea"
    text = FoundField(FIELD.id, FIELD.name, textarea)
    facts = replace(SET_UP, field=text)

    plan = plan_setup(facts, impact_config, settings)

    assert plan.changes == ()
    (manual,) = plan.of(Status.MANUAL)
    assert manual.message == (
        f"'External customer impact' is {FIELD.id}, a textarea field, not a select list"
    )


def test_screens_without_a_tab_and_team_managed_projects_are_left_to_people(
    impact_config, settings
):
    bare = replace(BUG_SCREEN, tabs=())
    team = replace(SHOP, scheme=None, screen_uses=())
    facts = replace(SET_UP, screens=(on(DEFAULT_SCREEN), bare))

    manual = by_status(facts, impact_config, settings, Status.MANUAL)
    team_manual = by_status(
        replace(SET_UP, projects=(team,)), impact_config, settings, Status.MANUAL
    )

    assert [(m.subject, m.who) for m in manual] == [
        ("screen 'SHOP: Bug Create Screen' (2)", "a Jira administrator")
    ]
    assert [(m.subject, m.who) for m in team_manual] == [
        ("screens of SHOP", "SHOP's project administrators")
    ]


def test_a_project_jira_does_not_show_is_reported_and_skipped(impact_config, settings):
    facts = replace(FRESH, projects=(ProjectFacts("SHOP", None),))

    plan = plan_setup(facts, impact_config, settings)

    assert plan.of(Status.MANUAL)[0].subject == "project SHOP"
    assert not any(isinstance(c, AddToScreen) for c in plan.changes)


# ---- the webhook


def test_a_webhook_to_the_url_is_kept_and_one_that_misses_a_project_is_left_to_an_admin(
    impact_config, settings
):
    other_jql = replace(HOOK, jql="project = OPS")

    kept = plan_setup(SET_UP, impact_config, settings)
    narrow = plan_setup(replace(SET_UP, webhooks=(other_jql,)), impact_config, settings)

    assert kept.changes == ()
    assert narrow.changes == ()
    (manual,) = narrow.of(Status.MANUAL)
    assert manual.message == (
        "'jira-customer-impact' does not send the issue created and updated events of SHOP"
    )
    assert manual.fix is not None and "JQL filter" in manual.fix
    off = replace(SET_UP, webhooks=(replace(HOOK, enabled=False),))
    disabled = plan_setup(off, impact_config, settings)
    assert disabled.of(Status.MANUAL)[0].message == "'jira-customer-impact' is disabled"


def test_a_url_with_a_token_is_never_shown(impact_config, settings):
    token_url = RECEIVER + "?token=very-secret-token"
    facts = replace(FRESH, url=token_url)

    plan = plan_setup(facts, impact_config, settings)

    (item,) = [i for i in plan.items if i.subject == "webhook"]
    assert item.change == RegisterWebhook("jira-customer-impact", token_url, "project in (SHOP)")
    assert "very-secret-token" not in item.line()


def test_without_a_url_a_missing_webhook_says_to_run_setup_with_one(impact_config, settings):
    facts = replace(SET_UP, url=None, webhooks=())

    assert by_status(facts, impact_config, settings, Status.MANUAL) == []  # not a step by hand
    notes = by_status(facts, impact_config, settings, Status.NOTE)
    (note,) = [n for n in notes if n.subject == "webhook"]
    assert note.fix == (
        "register it: run jira-impact setup --url https://<this service>/webhooks/jira --apply"
    )


# ---- boards and permissions, as check judges them


def test_what_check_finds_wrong_is_left_to_the_people_who_can_fix_it(impact_config, settings):
    board = Finding(False, "board 1", "not ordered by Rank", "end the filter with ORDER BY Rank")
    perms = Finding(False, "project SHOP", "the service account lacks Schedule issues", "grant it")
    facts = replace(SET_UP, checks=(Finding(True, "project SHOP", "fine"), perms, board))

    manual = by_status(facts, impact_config, settings, Status.MANUAL)

    assert [(m.subject, m.who) for m in manual] == [
        ("project SHOP", "a Jira administrator, or the project's administrators"),
        ("board 1", "the board's administrators, or the owner of its filter"),
    ]
    assert manual[1].line() == (
        "by hand board 1: not ordered by Rank — end the filter with ORDER BY Rank "
        "(the board's administrators, or the owner of its filter can)"
    )


# ---- Data Center


DC_FRESH = replace(FRESH, cloud=False, screens=(), projects=(replace(SHOP, screen_uses=()),))


def test_data_center_creates_the_field_and_leaves_options_and_screens_to_an_admin(
    impact_config, settings
):
    plan = plan_setup(DC_FRESH, impact_config, settings)

    assert list(plan.changes) == [
        CreateField("External customer impact"),
        RegisterWebhook("jira-customer-impact", RECEIVER, "project in (SHOP)"),
    ]
    manual = plan.of(Status.MANUAL)
    assert [m.subject for m in manual] == ["screens of SHOP", "field options"]
    assert "Data Center has no REST API" in manual[0].message
    assert all(value in manual[1].message for value in VALUES)
    assert "it may have them" in manual[1].message


@pytest.mark.parametrize(
    ("showing", "offered", "manual"),
    [
        (("10001", "10002", "10004"), VALUES, []),
        (("10001", "10002", "10004"), VALUES[:3], ["field options"]),
        (("10001",), VALUES, ["screens of SHOP"]),
        ((), (), ["screens of SHOP", "field options"]),
    ],
)
def test_data_center_reads_what_the_create_screens_show(
    impact_config, settings, showing, offered, manual
):
    shop = replace(
        SHOP, screen_uses=(), create_screens_showing=showing, create_screen_options=offered
    )
    facts = replace(DC_FRESH, field=FIELD, projects=(shop,), webhooks=(HOOK,))

    plan = plan_setup(facts, impact_config, settings)

    assert plan.changes == ()
    assert [m.subject for m in plan.of(Status.MANUAL)] == manual


def test_data_center_names_the_issue_types_whose_create_screen_lacks_the_field(
    impact_config, settings
):
    shop = replace(SHOP, screen_uses=(), create_screens_showing=("10001",))
    facts = replace(DC_FRESH, field=FIELD, projects=(shop,), webhooks=(HOOK,))

    (screens, _) = by_status(facts, impact_config, settings, Status.MANUAL)

    assert screens.message.startswith("the create screens of Task, Bug do not show the field")


# ---- Data Center 10's webhook API


def webhook(item: Item) -> bool:
    return isinstance(item.change, RegisterWebhook)


def test_on_data_center_10_the_webhook_is_registered_through_its_api_and_read_back(
    impact_config, settings
):
    dc10 = replace(FRESH, cloud=False, webhook_api=WebhookApi.DC10, url=RECEIVER)
    nine = replace(dc10, webhook_api=WebhookApi.LEGACY)

    (item,) = [i for i in plan_setup(dc10, impact_config, settings).items if webhook(i)]
    (before,) = [i for i in plan_setup(nine, impact_config, settings).items if webhook(i)]

    assert (
        item.change
        == before.change
        == RegisterWebhook("jira-customer-impact", RECEIVER, "project in (SHOP)")
    )
    assert "Data Center 10's webhook API" in item.message and "read back" in item.message
    assert "Data Center 10" not in before.message


@pytest.mark.parametrize(
    ("url", "api", "expected"),
    [
        (f"{RECEIVER}?key=${{issue.key}}", WebhookApi.DC10, f"{RECEIVER}?key={{issue.key}}"),
        (f"{RECEIVER}?key={{issue.key}}", WebhookApi.LEGACY, f"{RECEIVER}?key=${{issue.key}}"),
        (
            f"{RECEIVER}?p={{project.id}}&i=${{issue.id}}",
            WebhookApi.DC10,
            f"{RECEIVER}?p={{project.id}}&i={{issue.id}}",
        ),
        (f"{RECEIVER}?token=t", WebhookApi.DC10, f"{RECEIVER}?token=t"),
        (f"{RECEIVER}?k={{not a variable}}", WebhookApi.LEGACY, f"{RECEIVER}?k={{not a variable}}"),
    ],
)
def test_url_variables_are_written_as_the_sites_jira_fills_them_in(url, api, expected):
    assert with_url_variables(url, api) == expected


READ = AdminWebhook(
    "jira-customer-impact",
    RECEIVER,
    ("jira:issue_created", "jira:issue_updated"),
    "project in (SHOP, SUP)",
    id="31",
    api=WebhookApi.DC10,
)


@pytest.mark.parametrize(
    ("registered", "problem"),
    [
        (Registered(READ, READ), None),
        (Registered(READ, replace(READ, jql=" PROJECT in (SHOP,  SUP) ")), None),  # spacing, case
        (
            Registered(READ, replace(READ, jql="")),
            "Jira shows no JQL filter, so it sends every issue",
        ),
        (Registered(READ, replace(READ, jql="project = SHOP")), "Jira shows 'project = SHOP'"),
        (
            Registered(READ, replace(READ, events=("jira:issue_created",))),
            "without jira:issue_updated",
        ),
        (Registered(READ, None, "Jira does not list it"), "could not be confirmed (Jira does not"),
    ],
)
def test_the_filter_holds_only_when_jira_shows_it_when_read_back(registered, problem):
    found = filter_problem(registered, "project in (SHOP, SUP)")
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_the_step_by_hand_names_the_webhook_the_filter_and_hides_a_token():
    step = by_hand("jira-customer-impact", f"{RECEIVER}?token=sekrit", "project in (SHOP, SUP)")
    assert "sekrit" not in step and "token=***" in step
    assert "'jira-customer-impact'" in step and "project in (SHOP, SUP)" in step
    assert "WebHooks" in step and "Issue created and Issue updated" in step
