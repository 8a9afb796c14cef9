"""Which OAuth scope each of the product's Jira calls needs, and how to find the ones a scoped
credential lacks without changing anything.

A scoped API token or an OAuth client holds only the scopes it was given, and the gateway refuses
a call outside them with 401 "Unauthorized; scope does not match", without naming the scope: the
product must know what each of its calls needs. ``CALLS`` is that table, from Atlassian's OpenAPI
specs (the operation's ``OAuth2`` security; ``tests/test_scopes.py`` holds it to them), each call
with the features that make it: ``triage`` (the worker's triage of each issue), ``ranking``
(boards and their rank), ``setup`` (``jira-impact setup``). ``PROBES`` are calls that change
nothing (reads, or writes Jira must refuse for want of the thing they name) whose 401 says a
scope is missing, and only that: any other answer (200, 400, 403, 404) says the scope is held.

The admin webhook API (``/rest/webhooks/1.0/webhook``) has no scope: it is not offered through the
gateway at all. Registering or reading the admin webhook needs a Jira administrator's classic
(unscoped) API token on the site's URL, or the admin's hands (Settings > System > WebHooks).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

TRIAGE, RANKING, SETUP = "triage", "ranking", "setup"
FEATURES = (TRIAGE, RANKING, SETUP)


@dataclass(frozen=True)
class ScopedCall:
    """One of the product's calls: its method and path (``{name}`` for a part that varies;
    ``/rest/api/2`` stands for 3 too), the scopes it needs, and the features that make it."""

    method: str
    path: str
    scopes: tuple[str, ...]
    features: tuple[str, ...]

    def matches(self, method: str, path: str) -> bool:
        return method.upper() == self.method and _pattern(self.path).fullmatch(path) is not None


_T, _R, _S = (TRIAGE,), (RANKING,), (SETUP,)
_WORK_R, _WORK_W, _USER = ("read:jira-work",), ("write:jira-work",), ("read:jira-user",)
_CONF, _PROJ = ("manage:jira-configuration",), ("manage:jira-project",)
_BOARD = ("read:board-scope:jira-software", "read:project:jira")
_BOARD_ISSUES = ("read:board-scope:jira-software", "read:issue-details:jira")
_BOARD_ADMIN = ("read:board-scope.admin:jira-software", "read:project:jira")
_RANK = ("write:issue:jira-software",)
_A, _G = "/rest/api/2", "/rest/agile/1.0"

CALLS: tuple[ScopedCall, ...] = (
    ScopedCall("GET", f"{_A}/serverInfo", (), (TRIAGE, RANKING, SETUP)),
    ScopedCall("GET", f"{_A}/myself", _USER, (TRIAGE, SETUP)),
    ScopedCall("GET", f"{_A}/user", _USER, _T),
    ScopedCall("GET", f"{_A}/user/groups", _USER, _T),
    ScopedCall("GET", f"{_A}/field", _WORK_R, (TRIAGE, RANKING, SETUP)),
    ScopedCall("GET", f"{_A}/priority", _WORK_R, _T),
    ScopedCall("GET", f"{_A}/mypermissions", _WORK_R, (TRIAGE, SETUP)),
    ScopedCall("GET", f"{_A}/issue/{{key}}", _WORK_R, _T),
    ScopedCall("PUT", f"{_A}/issue/{{key}}", _WORK_W, _T),
    ScopedCall("GET", f"{_A}/issue/{{key}}/editmeta", _WORK_R, _T),
    ScopedCall("GET", f"{_A}/issue/{{key}}/comment", _WORK_R, _T),
    ScopedCall("POST", f"{_A}/issue/{{key}}/comment", _WORK_W, _T),
    ScopedCall("GET", f"{_A}/search/jql", _WORK_R, (TRIAGE, RANKING)),
    ScopedCall("POST", f"{_A}/search/jql", _WORK_R, (TRIAGE, RANKING)),
    ScopedCall("GET", f"{_A}/search", _WORK_R, (TRIAGE, RANKING)),
    ScopedCall("GET", f"{_A}/project/{{key}}", _WORK_R, _S),
    ScopedCall("GET", f"{_A}/filter/{{id}}", _WORK_R, (RANKING, SETUP)),
    ScopedCall("GET", f"{_A}/issue/createmeta/{{key}}/issuetypes", _WORK_R, _S),
    ScopedCall("GET", f"{_A}/issue/createmeta/{{key}}/issuetypes/{{id}}", _WORK_R, _S),
    ScopedCall("POST", f"{_A}/field", _CONF, _S),
    ScopedCall("GET", f"{_A}/field/{{id}}/context", _CONF, _S),
    ScopedCall("POST", f"{_A}/field/{{id}}/context", _CONF, _S),
    ScopedCall("GET", f"{_A}/field/{{id}}/context/projectmapping", _CONF, _S),
    ScopedCall("PUT", f"{_A}/field/{{id}}/context/{{id}}/project", _CONF, _S),
    ScopedCall("GET", f"{_A}/field/{{id}}/context/{{id}}/option", _CONF, _S),
    ScopedCall("POST", f"{_A}/field/{{id}}/context/{{id}}/option", _CONF, _S),
    ScopedCall("GET", f"{_A}/issuetypescreenscheme/project", _CONF, _S),
    ScopedCall("GET", f"{_A}/issuetypescreenscheme/mapping", _CONF, _S),
    ScopedCall("GET", f"{_A}/screenscheme", _PROJ, _S),
    ScopedCall("GET", f"{_A}/screens", _PROJ, _S),
    ScopedCall("GET", f"{_A}/screens/{{id}}/tabs", _PROJ, _S),
    ScopedCall("GET", f"{_A}/screens/{{id}}/tabs/{{id}}/fields", _PROJ, _S),
    ScopedCall("POST", f"{_A}/screens/{{id}}/tabs/{{id}}/fields", _PROJ, _S),
    ScopedCall("GET", f"{_G}/board", _BOARD, (RANKING, SETUP)),
    ScopedCall("GET", f"{_G}/board/{{id}}", _BOARD_ISSUES, (RANKING, SETUP)),
    ScopedCall("GET", f"{_G}/board/{{id}}/configuration", _BOARD_ADMIN, (RANKING, SETUP)),
    ScopedCall("GET", f"{_G}/board/{{id}}/issue", _BOARD_ISSUES, _R),
    ScopedCall("PUT", f"{_G}/issue/rank", _RANK, _R),
)


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{\w+\})", template.replace("/rest/api/2/", "/rest/api/<v>/"))
    body = "".join(
        "[^/]+" if p.startswith("{") else re.escape(p).replace("<v>", "[23]") for p in parts
    )
    return re.compile(body)


def scopes_for(method: str, path: str) -> tuple[str, ...] | None:
    """The scopes a call needs; None when the product makes no such call (the admin
    webhook's, say: no scope reaches it)."""
    for call in CALLS:
        if call.matches(method, path):
            return call.scopes
    return None


def needed(feature: str) -> tuple[str, ...]:
    """Every scope ``feature`` needs, in the order of ``CALLS``."""
    found = [s for call in CALLS if feature in call.features for s in call.scopes]
    return tuple(dict.fromkeys(found))


def every_scope() -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for call in CALLS for s in call.scopes))


@dataclass(frozen=True)
class Probe:
    """A call that changes nothing and whose only 401 is for want of ``scopes``: a read, or a
    write Jira must refuse for what it names (an issue numbered 0, an empty rank)."""

    method: str
    path: str
    scopes: tuple[str, ...]
    body: Mapping[str, object] | None = field(default=None, compare=False, hash=False)


NO_ISSUE = "IMPACTSCOPE-0"  # an issue key no Jira has: issue numbers start at 1
NO_NUMBER = "0"  # a board, field context or filter no Jira has

PROBES: tuple[Probe, ...] = (
    Probe("GET", f"{_A}/myself", _USER),
    Probe("GET", f"{_A}/priority", _WORK_R),
    Probe("PUT", f"{_A}/issue/{NO_ISSUE}", _WORK_W, body={"fields": {}}),
    Probe("GET", f"{_A}/issuetypescreenscheme/mapping", _CONF),
    Probe("GET", f"{_A}/screens", _PROJ),
    Probe("GET", f"{_G}/board", _BOARD),
    Probe("GET", f"{_G}/board/{NO_NUMBER}/configuration", _BOARD_ADMIN),
    Probe("GET", f"{_G}/board/{NO_NUMBER}/issue", _BOARD_ISSUES),
    Probe("PUT", f"{_G}/issue/rank", _RANK, body={"issues": []}),
)


def missing_by_feature(answered: Mapping[Probe, bool]) -> dict[str, tuple[str, ...]]:
    """For each feature, the scopes it needs that the probes show missing. ``answered``: each
    probe sent, and whether Jira answered it otherwise than 401. A scope of a probe answered is
    held; the others of a refused probe are missing (where a refused probe needs several and
    none is known held, at least one of them is)."""
    held = {s for probe, ok in answered.items() if ok for s in probe.scopes}
    lacking = [s for probe, ok in answered.items() if not ok for s in probe.scopes if s not in held]
    found: dict[str, tuple[str, ...]] = {}
    for feature in FEATURES:
        wanted = set(needed(feature))
        found[feature] = tuple(dict.fromkeys(s for s in lacking if s in wanted))
    return found
