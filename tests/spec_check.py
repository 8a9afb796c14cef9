"""Check request and response bodies against the shapes cut from Atlassian's specs.

The schemas live in ``tests/spec_shapes/<operationId>.json`` (see its README); the specs
themselves are not needed. A mismatch raises ``AssertionError`` naming the JSON path, e.g.
``rankIssues request: $: Additional properties are not allowed ('rank' was unexpected)``.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

SHAPES = Path(__file__).resolve().parent / "spec_shapes"
MAX_REPORTED = 10


def operation_ids() -> list[str]:
    return sorted(path.stem for path in SHAPES.glob("*.json"))


@cache
def _document(operation_id: str) -> dict[str, Any]:
    path = SHAPES / f"{operation_id}.json"
    if not path.is_file():
        raise KeyError(f"no spec shape for {operation_id!r}; known: {', '.join(operation_ids())}")
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


@cache
def _validator(operation_id: str, part: str, status: str | None = None) -> Draft7Validator | None:
    document = _document(operation_id)
    schema = document["request"] if part == "request" else document["responses"].get(status)
    if schema is None:
        return None
    # Wrapped so that "#/definitions/…" resolves inside this document.
    root = {
        "$schema": document["$schema"],
        "definitions": document["definitions"],
        "allOf": [schema],
    }
    return Draft7Validator(root)


def _check(validator: Draft7Validator, body: Any, what: str) -> None:
    errors = sorted(validator.iter_errors(body), key=lambda error: list(error.absolute_path))
    if not errors:
        return
    lines = [f"{what}: {_describe(error)}" for error in errors[:MAX_REPORTED]]
    if len(errors) > MAX_REPORTED:
        lines.append(f"… and {len(errors) - MAX_REPORTED} more")
    raise AssertionError("\n".join(lines))


def _describe(error: ValidationError) -> str:
    # An anyOf/allOf failure says little by itself; name the deepest reason under it.
    deepest = error
    while deepest.context:
        deepest = max(deepest.context, key=lambda sub: len(sub.absolute_path))
    return f"{deepest.json_path}: {deepest.message}"


def validate_request(operation_id: str, body: Any) -> None:
    """Raise AssertionError when ``body`` is not a request body the operation documents."""
    validator = _validator(operation_id, "request")
    if validator is None:
        if body is not None:
            raise AssertionError(f"{operation_id} request: $: the operation takes no body")
        return
    _check(validator, body, f"{operation_id} request")


def validate_response(operation_id: str, status: int, body: Any) -> None:
    """Raise AssertionError when ``body`` is not what the operation documents for ``status``.

    ``body`` is the parsed JSON, or None for an empty body. A status the spec does not list for
    the operation is a mismatch too.
    """
    documented = _document(operation_id)["responses"]
    if str(status) not in documented:
        raise AssertionError(
            f"{operation_id} {status} response: $: status {status} is not documented"
            f" (documented: {', '.join(documented)})"
        )
    validator = _validator(operation_id, "response", str(status))
    assert validator is not None
    _check(validator, body, f"{operation_id} {status} response")


@cache
def _routes() -> list[tuple[str, re.Pattern[str], str]]:
    routes = []
    for operation_id in operation_ids():
        document = _document(operation_id)
        for template in document["paths"]:
            pattern = re.escape(template)
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
            routes.append((document["method"], re.compile(pattern), operation_id))
    return routes


def find_operation(method: str, path: str) -> str | None:
    """The operationId serving ``method path`` (v2 or v3, any context path), if it has a shape."""
    path = path.split("?", 1)[0]
    start = path.find("/rest/")
    if start < 0:
        return None
    path = path[start:].rstrip("/") or path[start:]
    for route_method, pattern, operation_id in _routes():
        if route_method == method.upper() and pattern.fullmatch(path):
            return operation_id
    return None
