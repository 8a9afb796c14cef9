"""Jira's fixed metadata in the sandbox: system fields, priorities, issue types, statuses,
permissions; and what the seeds give the impact field (custom fields live in the state)."""

from __future__ import annotations

from typing import Any

IMPACT_FIELD = "customfield_10042"
IMPACT_NAME = "External customer impact"
IMPACT_OPTIONS = (
    ("10100", "Blocks paying customers"),
    ("10101", "Degrades paying customers' experience"),
    ("10102", "Indirect: feeds customer-facing work"),
    ("10103", "None: internal preference"),
)
RANK_FIELD = "customfield_10019"
RANK_FIELD_NUMBER = 10019
RANK_TYPE = "com.pyxis.greenhopper.jira:gh-lexo-rank"
CUSTOM = "com.atlassian.jira.plugin.system.customfieldtypes:"
SELECT_TYPE = CUSTOM + "select"
# The custom field types the sandbox creates: type -> (its searcher, its schema).
FIELD_TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    SELECT_TYPE: (CUSTOM + "multiselectsearcher", {"type": "option"}),
    CUSTOM + "radiobuttons": (CUSTOM + "multiselectsearcher", {"type": "option"}),
    CUSTOM + "multiselect": (CUSTOM + "multiselectsearcher", {"type": "array", "items": "option"}),
    CUSTOM + "textfield": (CUSTOM + "textsearcher", {"type": "string"}),
}
OPTION_TYPES = frozenset({SELECT_TYPE, CUSTOM + "radiobuttons"})  # one option per issue
WITH_OPTIONS = OPTION_TYPES | {CUSTOM + "multiselect"}

PRIORITIES = (  # id, name, colour
    ("1", "Highest", "#d04437"),
    ("2", "High", "#f15C75"),
    ("3", "Medium", "#f79232"),
    ("4", "Low", "#707070"),
    ("5", "Lowest", "#999999"),
)
DEFAULT_PRIORITY = "3"

ISSUE_TYPES = (  # id, name, description
    ("10001", "Story", "Functionality or a feature expressed as a user goal."),
    ("10002", "Task", "A small, distinct piece of work."),
    ("10004", "Bug", "A problem or error."),
)

# id, name, category (id, key, colour, name)
STATUSES = (
    ("10000", "To Do", (2, "new", "blue-gray", "To Do")),
    ("3", "In Progress", (4, "indeterminate", "yellow", "In Progress")),
    ("10001", "Done", (3, "done", "green", "Done")),
)

# key -> (id, name, type)
PERMISSIONS = {
    "ADMINISTER": ("0", "Administer Jira", "GLOBAL"),
    "BROWSE_PROJECTS": ("10", "Browse Projects", "PROJECT"),
    "CREATE_ISSUES": ("11", "Create Issues", "PROJECT"),
    "EDIT_ISSUES": ("12", "Edit Issues", "PROJECT"),
    "ADD_COMMENTS": ("15", "Add Comments", "PROJECT"),
    "SCHEDULE_ISSUES": ("28", "Schedule Issues", "PROJECT"),
}
PERSON_PERMISSIONS = frozenset(PERMISSIONS) - {"ADMINISTER"}

# System fields a person may set on the create and edit screens, and the operations each allows
# (a custom field allows "set"). The seeds put all of them on every screen.
SCREEN_OPERATIONS = {
    "summary": ("set",),
    "description": ("set",),
    "labels": ("add", "set", "remove"),
    "components": ("add", "set", "remove"),
    "priority": ("set",),
    "issuelinks": ("add",),
}
LINK_TYPES = (  # id, name, inward, outward
    ("10000", "Blocks", "is blocked by", "blocks"),
    ("10003", "Relates", "relates to", "relates to"),
)


def _system(
    field_id: str, name: str, schema: dict[str, Any], *, clauses: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "id": field_id,
        "key": field_id,
        "name": name,
        "custom": False,
        "orderable": field_id not in {"created", "updated", "status", "issuekey", "creator"},
        "navigable": True,
        "searchable": True,
        "clauseNames": list(clauses or (field_id,)),
        "schema": {"system": field_id, **schema},
    }


def custom_field_json(number: int, name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A custom field as ``GET /field`` lists it."""
    field_id = f"customfield_{number}"
    return {
        "id": field_id,
        "key": field_id,
        "name": name,
        "custom": True,
        "orderable": True,
        "navigable": True,
        "searchable": True,
        "clauseNames": [f"cf[{number}]", name],
        "schema": {"customId": number, **schema},
    }


FIELDS: tuple[dict[str, Any], ...] = (
    _system("issuekey", "Key", {"type": "string"}, clauses=("id", "issue", "issuekey", "key")),
    _system("summary", "Summary", {"type": "string"}),
    _system("description", "Description", {"type": "string"}),
    _system("issuetype", "Issue Type", {"type": "issuetype"}, clauses=("issuetype", "type")),
    _system("project", "Project", {"type": "project"}),
    _system("labels", "Labels", {"type": "array", "items": "string"}),
    _system(
        "components", "Components", {"type": "array", "items": "component"}, clauses=("component",)
    ),
    _system("priority", "Priority", {"type": "priority"}),
    _system("status", "Status", {"type": "status"}),
    _system("reporter", "Reporter", {"type": "user"}),
    _system("creator", "Creator", {"type": "user"}),
    _system("assignee", "Assignee", {"type": "user"}),
    _system("created", "Created", {"type": "datetime"}, clauses=("created", "createdDate")),
    _system("updated", "Updated", {"type": "datetime"}, clauses=("updated", "updatedDate")),
    _system("issuelinks", "Linked Issues", {"type": "array", "items": "issuelinks"}),
    custom_field_json(10019, "Rank", {"type": "any", "custom": RANK_TYPE}),
)


def jql_field_names() -> dict[str, str]:
    """The fixed custom fields' JQL names (display name, ``cf[N]``) -> field id; ``sandbox.jql``
    knows the system fields itself, the state adds the custom fields made since."""
    names: dict[str, str] = {}
    for field in FIELDS:
        if field["custom"]:
            for name in (field["name"], *field["clauseNames"]):
                names[name] = field["id"]
    return names
