"""Maintainer script: cut the request/response shapes this project uses out of Atlassian's specs.

    python tests/spec_shapes/extract.py [--platform FILE] [--software FILE] [--out DIR]

Reads the Jira Cloud platform and Jira Software OpenAPI 3.0 files (by default from the folder
named by ``JIRA_SPECS_DIR``) and writes one self-contained JSON Schema document per operation
into this folder. Nothing at test time needs the specs themselves.

Each file holds the operation's request body schema (or null) and one schema per documented
status, with every ``$ref`` pointing into the file's own ``definitions``. OpenAPI-only keywords
are translated (``nullable``) or dropped (``readOnly``, ``discriminator``, ``xml``…), and so is
prose (``description``, ``example``): field names and types are what the checks need. Where the
spec says nothing usable, the file says what was put in its place, in ``notes``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPECS = Path(os.environ.get("JIRA_SPECS_DIR", "specs"))
PLATFORM = SPECS / "jira-platform-swagger-v3.v3.json"
SOFTWARE = SPECS / "jira-software-swagger.v3.json"

# (spec, method, path): operations are found by path and method, because operationIds are not
# unique across the two specs (both have a "getIssue").
OPERATIONS = [
    ("platform", "get", "/rest/api/3/serverInfo"),
    ("platform", "get", "/rest/api/3/myself"),
    ("platform", "get", "/rest/api/3/field"),
    ("platform", "get", "/rest/api/3/priority"),
    ("platform", "get", "/rest/api/3/mypermissions"),
    ("platform", "get", "/rest/api/3/issue/{issueIdOrKey}"),
    ("platform", "put", "/rest/api/3/issue/{issueIdOrKey}"),
    ("platform", "get", "/rest/api/3/issue/{issueIdOrKey}/editmeta"),
    ("platform", "post", "/rest/api/3/issue/{issueIdOrKey}/comment"),
    ("platform", "get", "/rest/api/3/issue/{issueIdOrKey}/comment"),
    ("platform", "get", "/rest/api/3/issue/{issueIdOrKey}/properties/{propertyKey}"),
    ("platform", "put", "/rest/api/3/issue/{issueIdOrKey}/properties/{propertyKey}"),
    ("platform", "get", "/rest/api/3/search"),
    ("platform", "post", "/rest/api/3/search"),
    ("platform", "get", "/rest/api/3/search/jql"),
    ("platform", "post", "/rest/api/3/search/jql"),
    ("platform", "get", "/rest/api/3/filter/{id}"),
    ("platform", "post", "/rest/api/3/issue"),
    ("platform", "get", "/rest/api/3/user/groups"),
    ("platform", "get", "/rest/api/3/project/{projectIdOrKey}"),
    ("platform", "get", "/rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes"),
    ("platform", "get", "/rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes/{issueTypeId}"),
    ("platform", "get", "/rest/api/3/field/{fieldId}/context"),
    ("platform", "get", "/rest/api/3/field/{fieldId}/context/{contextId}/option"),
    ("platform", "post", "/rest/api/3/field"),
    ("platform", "post", "/rest/api/3/field/{fieldId}/context"),
    ("platform", "get", "/rest/api/3/field/{fieldId}/context/projectmapping"),
    ("platform", "put", "/rest/api/3/field/{fieldId}/context/{contextId}/project"),
    ("platform", "post", "/rest/api/3/field/{fieldId}/context/{contextId}/option"),
    ("platform", "get", "/rest/api/3/issuetypescreenscheme/project"),
    ("platform", "get", "/rest/api/3/issuetypescreenscheme/mapping"),
    ("platform", "get", "/rest/api/3/screenscheme"),
    ("platform", "get", "/rest/api/3/screens"),
    ("platform", "get", "/rest/api/3/screens/{screenId}/tabs"),
    ("platform", "get", "/rest/api/3/screens/{screenId}/tabs/{tabId}/fields"),
    ("platform", "post", "/rest/api/3/screens/{screenId}/tabs/{tabId}/fields"),
    ("software", "get", "/rest/agile/1.0/board"),
    ("software", "get", "/rest/agile/1.0/board/{boardId}/configuration"),
    ("software", "get", "/rest/agile/1.0/board/{boardId}/issue"),
    ("software", "put", "/rest/agile/1.0/issue/rank"),
]

# Things the specs state in prose or examples only, made checkable. Each is listed in the
# file's "notes".
RANK_LIMIT_NOTE = (
    "request.properties.issues.maxItems=50: from the operation's description, 'At most 50 issues"
    " may be ranked at once.'"
)
PARTIAL_SUCCESS_NOTE = (
    "207: the spec gives an example but no schema; components/schemas/PartialSuccessBean of the"
    " same spec matches that example and is used."
)
ERROR_COLLECTION_NOTE = (
    "{statuses}: the spec names no body; Jira answers errors as ErrorCollection"
    " ({{errorMessages, errors}}), taken from the platform spec's components/schemas."
)
NO_BODY_401_NOTE = "401: the spec names no body, and Jira's 401 bodies vary; any body is accepted."

KEPT = {
    "type", "required", "enum", "format", "pattern", "uniqueItems", "minItems", "maxItems",
    "minLength", "maxLength", "minimum", "maximum", "minProperties", "maxProperties",
}  # fmt: skip
SUBSCHEMA_LISTS = {"allOf", "anyOf", "oneOf"}
DROPPED = {
    "description", "example", "examples", "title", "default", "deprecated", "readOnly",
    "writeOnly", "xml", "discriminator", "externalDocs",
}  # fmt: skip


class Converter:
    """OpenAPI 3.0 schema objects → draft-07 JSON Schema, collecting the components they use."""

    def __init__(self, components: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
        self.components = components
        self.extra = extra or {}  # components borrowed from the other spec
        self.definitions: dict[str, Any] = {}
        self.pending: list[str] = []

    def ref(self, name: str) -> dict[str, Any]:
        if name not in self.definitions and name not in self.pending:
            self.pending.append(name)
        return {"$ref": f"#/definitions/{name}"}

    def convert(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if "$ref" in node:  # OpenAPI 3.0 ignores a $ref's siblings
            return self.ref(node["$ref"].rsplit("/", 1)[-1])
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in KEPT:
                out[key] = value
            elif key == "properties":
                out[key] = {name: self.convert(sub) for name, sub in value.items()}
            elif key in ("items", "additionalProperties", "not"):
                out[key] = self.convert(value)
            elif key in SUBSCHEMA_LISTS:
                out[key] = [self.convert(sub) for sub in value]
            elif key in ("exclusiveMinimum", "exclusiveMaximum"):
                bound = "minimum" if key == "exclusiveMinimum" else "maximum"
                if value is True and bound in node:  # OpenAPI 3.0's boolean form
                    out[key] = node[bound]
            elif key == "nullable" or key in DROPPED or key.startswith("x-"):
                continue
            else:
                raise ValueError(f"unhandled schema keyword {key!r}")
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            if key in out:
                out.pop(bound, None)
        if node.get("nullable") is True:
            return nullable(out)
        return out

    def finish(self) -> dict[str, Any]:
        while self.pending:
            name = self.pending.pop(0)
            source = self.components.get(name, self.extra.get(name))
            if source is None:
                raise KeyError(f"no component schema {name!r}")
            self.definitions[name] = self.convert(source)
        return dict(sorted(self.definitions.items()))


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    simple = isinstance(schema.get("type"), str) and not SUBSCHEMA_LISTS & schema.keys()
    if not simple:
        return {"anyOf": [{"type": "null"}, schema]}
    out = {**schema, "type": [schema["type"], "null"]}
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def json_schema_of(content: dict[str, Any] | None) -> tuple[bool, Any]:
    """(has a body, its OpenAPI schema or None) for a requestBody/response ``content``."""
    if not content:
        return False, None
    media = content.get("application/json") or next(iter(content.values()))
    return True, media.get("schema")


def shape(
    spec_name: str, spec: dict[str, Any], method: str, path: str, platform: dict[str, Any]
) -> dict[str, Any]:
    operation = spec["paths"][path][method]
    converter = Converter(
        spec["components"]["schemas"],
        extra=platform["components"]["schemas"] if spec is not platform else None,
    )
    notes: list[str] = []

    request = None
    if "requestBody" in operation:
        _, schema = json_schema_of(operation["requestBody"].get("content"))
        request = converter.convert(schema if schema is not None else {})
        if operation["operationId"] == "rankIssues":
            request["properties"]["issues"]["maxItems"] = 50
            notes.append(RANK_LIMIT_NOTE)

    responses: dict[str, Any] = {}
    error_collection: list[str] = []
    for status, response in sorted(operation["responses"].items()):
        has_body, schema = json_schema_of(response.get("content"))
        if schema is not None:
            responses[status] = converter.convert(schema)
        elif has_body and operation["operationId"] == "rankIssues" and status == "207":
            responses[status] = converter.ref("PartialSuccessBean")
            notes.append(PARTIAL_SUCCESS_NOTE)
        elif has_body:
            responses[status] = {}
            notes.append(f"{status}: the spec names a body but no schema; any body is accepted.")
        elif status.startswith("2"):
            responses[status] = {"type": "null"}  # no body
        elif status == "401":
            responses[status] = {}
            notes.append(NO_BODY_401_NOTE)
        else:
            responses[status] = converter.ref("ErrorCollection")
            error_collection.append(status)
    if error_collection:
        notes.append(ERROR_COLLECTION_NOTE.format(statuses=", ".join(error_collection)))

    v2_path = path.replace("/rest/api/3/", "/rest/api/2/") if spec_name == "platform" else None
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "spec": {
            "file": spec["_file"],
            "title": spec["info"]["title"],
            "version": spec["info"]["version"],
        },
        "operationId": operation["operationId"],
        "method": method.upper(),
        "paths": [path] + ([v2_path] if v2_path else []),
        "deprecated": bool(operation.get("deprecated")),
        "notes": notes,
        "request": request,
        "responses": responses,
        "definitions": converter.finish(),
    }


# Jira's error answer, ``{"errorMessages": […], "errors": {…}}`` (the platform spec's).
ERROR_COLLECTION: dict[str, Any] = {
    "type": "object",
    "properties": {
        "errorMessages": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
        "status": {"type": "integer"},
    },
    "additionalProperties": False,
}
WEBHOOK_SOURCE = (
    "hand-written from developer.atlassian.com webhooks doc"
    " (https://developer.atlassian.com/cloud/jira/platform/webhooks/);"
    " admin webhooks are in neither spec"
)
_WEBHOOK_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string"},
    "url": {"type": "string"},
    "events": {"type": "array", "items": {"type": "string"}},
    "filters": {
        "type": "object",
        "properties": {"issue-related-events-section": {"type": "string"}},
        "additionalProperties": {"type": "string"},
    },
    "excludeBody": {"type": "boolean"},
    "secret": {"type": "string"},
}


def admin_webhook_shapes() -> Iterator[dict[str, Any]]:
    registered = {
        "type": "object",
        "required": ["name", "url", "self"],
        "properties": {
            **{key: value for key, value in _WEBHOOK_PROPERTIES.items() if key != "secret"},
            "self": {"type": "string"},
            "enabled": {"type": "boolean"},
            "isSigned": {"type": "boolean"},
            "lastUpdated": {"type": "integer"},
            "lastUpdatedUser": {"type": "string"},
            "lastUpdatedDisplayName": {"type": "string"},
        },
    }
    common = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "spec": {"file": None, "title": WEBHOOK_SOURCE, "version": None},
        "paths": ["/rest/webhooks/1.0/webhook"],
        "deprecated": False,
        "notes": [
            "Request: the documented body {name, url, events, filters, excludeBody, secret};"
            " unknown keys are refused so that a typo shows.",
            "Responses: the request's keys plus self, enabled, isSigned and lastUpdated*, as"
            " public clients read them; only name, url and self are required and other keys are"
            " allowed, since the doc shows no response schema.",
        ],
        "definitions": {
            "RegisteredAdminWebhook": registered,
            "ErrorCollection": ERROR_COLLECTION,
        },
    }
    errors = {status: {"$ref": "#/definitions/ErrorCollection"} for status in ("400", "403")}
    yield {
        **common,
        "operationId": "registerAdminWebhook",
        "method": "POST",
        "request": {
            "type": "object",
            "required": ["name", "url", "events"],
            "properties": _WEBHOOK_PROPERTIES,
            "additionalProperties": False,
        },
        "responses": {"201": {"$ref": "#/definitions/RegisteredAdminWebhook"}, "401": {}, **errors},
    }
    yield {
        **common,
        "operationId": "getAdminWebhooks",
        "method": "GET",
        "request": None,
        "responses": {
            "200": {"type": "array", "items": {"$ref": "#/definitions/RegisteredAdminWebhook"}},
            "401": {},
            "403": errors["403"],
        },
    }


DC10_WEBHOOK_SOURCE = (
    "hand-written for Data Center 10's /rest/jira-webhook/1.0/webhooks: the path and body from"
    " JRASERVER-78733 (https://jira.atlassian.com/browse/JRASERVER-78733), the answer's fields from"
    " Atlassian's Jira Data Center 11.3 REST spec as jira.js documents it"
    " (https://mrrefactoring.github.io/jira.js/api/functions/server.getWebhooks.html);"
    " in neither Cloud spec"
)


def dc10_webhook_shapes() -> Iterator[dict[str, Any]]:
    """Data Center 10's admin webhooks: ``configuration`` maps names to strings (``FILTERS``
    the JQL, ``EXCLUDE_BODY``, ``DESCRIPTION``, ``SECRET``)."""
    configuration = {"type": "object", "additionalProperties": {"type": "string"}}
    webhook: dict[str, Any] = {
        "type": "object",
        "required": ["id", "name", "url"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "url": {"type": "string"},
            "active": {"type": ["boolean", "string"]},
            "events": {"type": "array", "items": {"type": "string"}},
            "configuration": configuration,
            "createdDate": {"type": "integer"},
            "updatedDate": {"type": "integer"},
            "scopeType": {"type": "string"},
            "sslVerificationRequired": {"type": "boolean"},
            "statistics": {"type": "object"},
        },
    }
    common = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "spec": {"file": None, "title": DC10_WEBHOOK_SOURCE, "version": None},
        "deprecated": False,
        "notes": [
            "Request: name, url, events, active (a boolean, or its string as Atlassian's example"
            " writes it) and configuration; other keys are refused so that a 9.x body (filters,"
            " excludeBody, secret: its JQL ignored by Jira 10) does not pass as this one.",
            "Responses: the spec's RestWebhook fields; other keys are allowed.",
        ],
        "definitions": {
            "RestWebhook": webhook,
            "ErrorCollection": ERROR_COLLECTION,
        },
    }
    errors = {status: {"$ref": "#/definitions/ErrorCollection"} for status in ("400", "403")}
    yield {
        **common,
        "operationId": "registerDc10Webhook",
        "method": "POST",
        "paths": ["/rest/jira-webhook/1.0/webhooks"],
        "request": {
            "type": "object",
            "required": ["name", "url", "events"],
            "properties": {
                key: webhook["properties"][key]
                for key in ("name", "url", "events", "active", "configuration")
            }
            | {"sslVerificationRequired": {"type": "boolean"}},
            "additionalProperties": False,
        },
        "responses": {"201": {"$ref": "#/definitions/RestWebhook"}, "401": {}, **errors},
    }
    yield {
        **common,
        "operationId": "getDc10Webhooks",
        "method": "GET",
        "paths": ["/rest/jira-webhook/1.0/webhooks"],
        "request": None,
        "responses": {
            "200": {"type": "array", "items": {"$ref": "#/definitions/RestWebhook"}},
            "401": {},
            "403": errors["403"],
        },
    }
    yield {
        **common,
        "operationId": "getDc10Webhook",
        "method": "GET",
        "paths": ["/rest/jira-webhook/1.0/webhooks/{webhookId}"],
        "request": None,
        "responses": {
            "200": {"$ref": "#/definitions/RestWebhook"},
            "401": {},
            "403": errors["403"],
            "404": {"$ref": "#/definitions/ErrorCollection"},
        },
    }


def load(path: Path) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    spec["_file"] = path.name
    return spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", type=Path, default=PLATFORM)
    parser.add_argument("--software", type=Path, default=SOFTWARE)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    specs = {"platform": load(args.platform), "software": load(args.software)}

    documents = [
        shape(name, specs[name], method, path, specs["platform"])
        for name, method, path in OPERATIONS
    ]
    documents.extend(admin_webhook_shapes())
    documents.extend(dc10_webhook_shapes())
    seen: set[str] = set()
    for document in documents:
        operation_id = document["operationId"]
        if operation_id in seen:
            raise SystemExit(f"two operations named {operation_id}")
        seen.add(operation_id)
        target = args.out / f"{operation_id}.json"
        target.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n", "utf-8")
        print(f"{target.name:48} {target.stat().st_size:>8} B", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
