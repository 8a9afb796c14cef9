"""The layout holds: no import circle among the project's own modules, and each package imports
only the packages below it (the README's "Layout" says the same, one line per package).

Every import statement counts, those inside functions and under ``TYPE_CHECKING`` included: a
circle that only a late import hides is still a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Each package, and the project packages it may import (besides itself).
ALLOWED: Mapping[str, frozenset[str]] = {
    "impact": frozenset(),
    "connector": frozenset({"impact"}),
    "service": frozenset({"impact", "connector"}),
    "jira_setup": frozenset({"impact", "connector", "service"}),
    "pipeline": frozenset({"impact", "connector", "service"}),
    "webhooks": frozenset({"impact", "connector", "service", "jira_setup", "pipeline"}),
    "commands": frozenset({"impact", "connector", "service", "jira_setup", "pipeline"}),
    "migrations": frozenset({"pipeline"}),
    "sandbox": frozenset({"impact"}),
}
# Libraries a package must not import itself: the web app is Flask only (the queue and the
# command line are the pipeline's and the commands' business); the core does no I/O.
FORBIDDEN: Mapping[str, frozenset[str]] = {
    "impact": frozenset({"flask", "requests", "jira", "huey", "click", "sqlalchemy", "redis"}),
    "service": frozenset({"flask", "huey", "click"}),
    "pipeline": frozenset({"flask", "click"}),
    "webhooks": frozenset({"huey", "click"}),
}


def modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of ``packages`` under ``root``."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(name: str, path: Path, known: Mapping[str, Path]) -> tuple[set[str], set[str]]:
    """(the project's modules ``name`` imports, the other top-level names it imports)."""
    ours: set[str] = set()
    others: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def add(target: str) -> None:
        probe = target
        while probe and probe not in known:
            probe = probe.rpartition(".")[0]
        if probe:
            ours.add(probe)
        elif target.split(".")[0] not in known:
            others.add(target.split(".")[0])

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in known else base)
    ours.discard(name)
    return ours, others


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, tuple[set[str], set[str]]]:
    known = modules(root, packages)
    return {name: imports_of(name, path, known) for name, path in known.items()}


def circles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, tuple[set[str], set[str]]]:
    return import_graph(ROOT, ALLOWED)


def test_no_import_circle_among_the_projects_modules(graph):
    assert circles({name: ours for name, (ours, _) in graph.items()}) == []


def test_each_package_imports_only_the_packages_below_it(graph):
    crossings = sorted(
        f"{name} imports {target}"
        for name, (ours, _) in graph.items()
        for target in ours
        if target.split(".")[0] != name.split(".")[0]
        and target.split(".")[0] not in ALLOWED[name.split(".")[0]]
    )
    assert crossings == []


def test_packages_keep_to_their_libraries(graph):
    misplaced = sorted(
        f"{name} imports {library}"
        for name, (_, others) in graph.items()
        for library in others & FORBIDDEN.get(name.split(".")[0], frozenset())
    )
    assert misplaced == []


def test_every_package_of_the_project_has_its_place_in_the_layout():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages <= set(ALLOWED), "a new package: give it its line in ALLOWED and the README"


def test_the_checks_see_a_circle_and_a_crossing(tmp_path):
    """The checks above would fail on a tree that breaks the rules (so they can fail at all)."""
    for name, text in {
        "impact/__init__.py": "",
        "impact/a.py": "def f():\n    from impact import b\n",
        "impact/b.py": "from . import a\nfrom connector.client import X\nimport flask\n",
        "connector/__init__.py": "",
        "connector/client.py": "X = 1\n",
    }.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    found = import_graph(tmp_path, ["impact", "connector"])
    assert circles({name: ours for name, (ours, _) in found.items()}) == [["impact.a", "impact.b"]]
    assert found["impact.b"] == ({"impact.a", "connector.client"}, {"flask"})


# --------------------------------------------------------------------------------------------
# Dependencies: floors above known vulnerabilities, every version pinned for CI and installs


def test_constraints_pin_every_dependency_above_the_floors_with_known_fixes():
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[canonicalize_name(name)] = Version(version.strip())
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not pinned in constraints.txt (run make constraints)"
        assert requirement.specifier.contains(pinned[name]), f"{name}=={pinned[name]}"
    # the last versions with a known vulnerability a fresh install must never get
    vulnerable = {"gunicorn": "22.0.0", "requests": "2.32.3", "flask": "3.1.0"}
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        if name in vulnerable:
            assert not requirement.specifier.contains(vulnerable[name]), requirement
