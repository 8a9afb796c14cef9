"""The small part of JQL the product sends, evaluated over GET /rest/api/2/issue JSON.

Anything outside the subset raises ``JqlError`` with a message in Jira's own words, so a query
the sandbox cannot answer is never silently treated as "match everything".

Semantics kept from Jira: values are compared case-insensitively; ``!=`` and ``NOT IN`` never
match an issue whose field is empty (write ``… OR x is EMPTY`` for that); ``resolution =
Unresolved`` means no resolution; ``NOT`` binds tighter than ``AND``, ``AND`` tighter than ``OR``.
Simplified: ``NOT clause`` is the plain complement of the clause, ``ORDER BY`` directions default
to ASC, issues with no value for a sort field come last, and ``~`` asks that every word of the
text occurs as a word (a trailing ``*`` matches a prefix).

Dates (``created``, ``updated``, ``resolutiondate`` alias ``resolved``) compare with ``=``,
``!=``, ``<``, ``<=``, ``>``, ``>=`` and ``IS [NOT] EMPTY``, against ``"yyyy-MM-dd"`` or
``"yyyy/MM/dd"`` (optionally `` HH:mm``) or a time relative to now (``-12w``, ``-4w 2d``,
``1h``; units w, d, h, m; a leading sign counts for the parts without their own). Jira reads a
date in the searching user's time zone; the sandbox reads it in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cmp_to_key
from typing import Any

__all__ = ["JqlError", "Query", "SortKey", "parse"]


class JqlError(ValueError):
    """A query outside the supported subset, or not JQL at all; ``message`` is Jira-style."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- tokens ----------------------------------------------------------------------------------

_OPERATOR_CHARS = re.compile(r"!=|!~|<=|>=|=|~|<|>")
_WORD = re.compile(r"""[^\s()=,!~<>"']+""")
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t", "r": "\r", " ": " "}
_RESERVED_VALUES = {"and", "or", "not", "order", "by", "in", "is", "asc", "desc", "&&", "||"}


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "string", "op", "(", ")", ",", "end"
    text: str
    pos: int


def _where(jql: str, pos: int) -> str:
    line = jql.count("\n", 0, pos) + 1
    column = pos - (jql.rfind("\n", 0, pos) + 1) + 1
    return f"(line {line}, character {column})"


def _syntax_error(jql: str, pos: int, problem: str) -> JqlError:
    return JqlError(f"Error in the JQL Query: {problem} {_where(jql, pos)}")


def _tokenize(jql: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(jql):
        char = jql[pos]
        if char.isspace():
            pos += 1
        elif char in "(),":
            tokens.append(_Token(char, char, pos))
            pos += 1
        elif char in "\"'":
            text, end = _read_quoted(jql, pos)
            tokens.append(_Token("string", text, pos))
            pos = end
        elif match := _OPERATOR_CHARS.match(jql, pos):
            tokens.append(_Token("op", match.group(), pos))
            pos = match.end()
        elif match := _WORD.match(jql, pos):
            tokens.append(_Token("word", match.group(), pos))
            pos = match.end()
        else:  # a lone "!"
            raise _syntax_error(jql, pos, f"The character '{char}' is a reserved JQL character.")
    tokens.append(_Token("end", "", len(jql)))
    return tokens


def _read_quoted(jql: str, start: int) -> tuple[str, int]:
    quote = jql[start]
    out: list[str] = []
    pos = start + 1
    while pos < len(jql):
        char = jql[pos]
        if char == quote:
            return "".join(out), pos + 1
        if char == "\\":
            code = jql[pos + 1 : pos + 2]
            if code == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", jql[pos + 2 : pos + 6]):
                out.append(chr(int(jql[pos + 2 : pos + 6], 16)))
                pos += 6
                continue
            if code not in _ESCAPES:
                raise _syntax_error(
                    jql, pos, f"The escape sequence '\\{code}' in the quoted string is illegal."
                )
            out.append(_ESCAPES[code])
            pos += 2
            continue
        out.append(char)
        pos += 1
    raise _syntax_error(
        jql, start, f"The quoted string '{jql[start + 1 :]}' has not been completed."
    )


# --- fields ----------------------------------------------------------------------------------

Issue = Mapping[str, Any]
_Extractor = Callable[[Issue], list[frozenset[str]]]

_EQUALITY = frozenset({"=", "!=", "in", "not in"})
_EMPTINESS = frozenset({"is", "is not"})
_TEXT = frozenset({"~", "!~"})

_CATEGORY_KEYS = {
    "to do": "new",
    "new": "new",
    "2": "new",
    "in progress": "indeterminate",
    "indeterminate": "indeterminate",
    "4": "indeterminate",
    "done": "done",
    "3": "done",
    "no category": "undefined",
    "undefined": "undefined",
    "1": "undefined",
}

# Jira fields a real instance knows but this subset does not evaluate.
_UNSUPPORTED_SYSTEM_FIELDS = {
    "assignee", "reporter", "creator", "priority", "component", "components", "fixversion",
    "affectedversion", "sprint", "epic link", "parent", "due", "duedate", "watcher", "watchers",
    "comment", "environment", "filter", "request", "issue.property", "attachments", "votes",
    "worklogauthor", "worklogdate", "timespent", "originalestimate", "remainingestimate",
    "level", "category", "subtasks", "issuelink", "issuelinktype", "lastviewed", "voter",
}  # fmt: skip

# The date fields: JQL name -> the issue field holding the timestamp.
_DATE_FIELDS = {
    "created": "created",
    "createddate": "created",
    "updated": "updated",
    "updateddate": "updated",
    "resolutiondate": "resolutiondate",
    "resolved": "resolutiondate",
}
_ORDERING = frozenset({"<", "<=", ">", ">="})
_DATE_OPERATORS = frozenset({"=", "!="}) | _ORDERING | _EMPTINESS
_RELATIVE = re.compile(r"[+-]?\d+[wdhm](?:\s+[+-]?\d+[wdhm])*")
_RELATIVE_PART = re.compile(r"([+-]?)(\d+)([wdhm])")
_UNIT = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1),
         "m": timedelta(minutes=1)}  # fmt: skip
_SORTABLE = {
    "rank": "rank",
    "key": "key",
    "issuekey": "key",
    **_DATE_FIELDS,
}


def _fields_of(issue: Issue) -> Mapping[str, Any]:
    fields = issue.get("fields")
    return fields if isinstance(fields, Mapping) else {}


def _aliases(value: Any, *names: str) -> frozenset[str]:
    if isinstance(value, Mapping):
        return frozenset(
            str(value[name]).casefold() for name in names if value.get(name) not in (None, "")
        )
    if value in (None, ""):
        return frozenset()
    return frozenset({str(value).casefold()})


def _named(field: str) -> _Extractor:
    """A single-valued system field shaped ``{"id", "name", …}``."""

    def extract(issue: Issue) -> list[frozenset[str]]:
        value = _fields_of(issue).get(field)
        found = _aliases(value, "name", "id")
        return [found] if found else []

    return extract


def _project(issue: Issue) -> list[frozenset[str]]:
    found = _aliases(_fields_of(issue).get("project"), "key", "id", "name")
    return [found] if found else []


def _key(issue: Issue) -> list[frozenset[str]]:
    found = _aliases(issue, "key", "id")
    return [found] if found else []


def _labels(issue: Issue) -> list[frozenset[str]]:
    labels = _fields_of(issue).get("labels") or []
    return [frozenset({str(label).casefold()}) for label in labels if label]


def _status_category(issue: Issue) -> list[frozenset[str]]:
    status = _fields_of(issue).get("status")
    category = status.get("statusCategory") if isinstance(status, Mapping) else None
    if not isinstance(category, Mapping):
        return []
    found = {
        _CATEGORY_KEYS[alias]
        for alias in _aliases(category, "key", "name", "id")
        if alias in _CATEGORY_KEYS
    }
    return [frozenset(found)] if found else []


def _custom(field_id: str) -> _Extractor:
    def extract(issue: Issue) -> list[frozenset[str]]:
        value = _fields_of(issue).get(field_id)
        values = value if isinstance(value, list) else [value]
        items = [_aliases(item, "value", "name", "id", "key") for item in values]
        return [item for item in items if item]

    return extract


@dataclass(frozen=True)
class _Field:
    name: str  # as written in the query, for messages
    extract: _Extractor
    operators: frozenset[str]
    literal: Callable[[str], str | None] = str.casefold  # None: the literal means EMPTY


def _category_literal(name: str) -> Callable[[str], str | None]:
    def literal(value: str) -> str | None:
        key = _CATEGORY_KEYS.get(value.casefold())
        if key is None:
            raise JqlError(f"The value '{value}' does not exist for the field '{name}'.")
        return key

    return literal


def _resolution_literal(value: str) -> str | None:
    return None if value.casefold() == "unresolved" else value.casefold()


def parse_timestamp(value: Any) -> datetime | None:
    """An issue's timestamp as Jira writes it (``2024-03-01T10:00:00.000+0000``); None if not."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return None


def _date_literal(value: str, now: datetime) -> datetime:
    """A JQL date: absolute (in UTC here) or relative to ``now``."""
    text = value.strip()
    if _RELATIVE.fullmatch(text):
        shift = timedelta()
        parts = _RELATIVE_PART.findall(text)
        first = parts[0][0]  # "-4w 2d" is four weeks and two days ago
        for sign, amount, unit in parts:
            shift += (-1 if (sign or first) == "-" else 1) * int(amount) * _UNIT[unit]
        return now + shift
    for form in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise JqlError(
        f"Date value '{value}' for field is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
        "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
    )


def _resolve_field(jql: str, token: _Token, fields: Mapping[str, str]) -> _Field | tuple[str, str]:
    """A field to compare, or ``("text", name)`` for the fields searched with ``~``."""
    name = token.text
    folded = name.casefold()
    custom = {key.casefold(): value for key, value in fields.items()}
    match folded:
        case "project":
            return _Field(name, _project, _EQUALITY)
        case "key" | "issuekey" | "id" | "issue":
            return _Field(name, _key, _EQUALITY)
        case "labels":
            return _Field(name, _labels, _EQUALITY | _EMPTINESS)
        case "statuscategory":
            return _Field(name, _status_category, _EQUALITY, _category_literal(name))
        case "status":
            return _Field(name, _named("status"), _EQUALITY)
        case "resolution":
            return _Field(name, _named("resolution"), _EQUALITY | _EMPTINESS, _resolution_literal)
        case "issuetype" | "type":
            return _Field(name, _named("issuetype"), _EQUALITY)
        case "text" | "summary" | "description":
            return ("text", folded)
    if folded in _DATE_FIELDS:
        return ("date", _DATE_FIELDS[folded])
    if folded in custom:
        return _Field(name, _custom(custom[folded]), _EQUALITY | _EMPTINESS)
    if match := re.fullmatch(r"cf\[(\d+)\]", folded):
        field_id = f"customfield_{match.group(1)}"
        if field_id in fields.values():
            return _Field(name, _custom(field_id), _EQUALITY | _EMPTINESS)
    if folded in _UNSUPPORTED_SYSTEM_FIELDS:
        raise _syntax_error(
            jql, token.pos, f"The field '{name}' is not supported by the sandbox's JQL subset."
        )
    raise JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")


# --- the tree --------------------------------------------------------------------------------


class _Node:
    def matches(self, issue: Issue) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class _And(_Node):
    parts: tuple[_Node, ...]

    def matches(self, issue: Issue) -> bool:
        return all(part.matches(issue) for part in self.parts)


@dataclass(frozen=True)
class _Or(_Node):
    parts: tuple[_Node, ...]

    def matches(self, issue: Issue) -> bool:
        return any(part.matches(issue) for part in self.parts)


@dataclass(frozen=True)
class _Not(_Node):
    part: _Node

    def matches(self, issue: Issue) -> bool:
        return not self.part.matches(issue)


@dataclass(frozen=True)
class _Compare(_Node):
    field: _Field
    operator: str
    values: tuple[str | None, ...]  # None stands for EMPTY

    def matches(self, issue: Issue) -> bool:
        items = self.field.extract(issue)
        if self.operator == "is":
            return not items
        if self.operator == "is not":
            return bool(items)
        found = any(
            (not items) if value is None else any(value in item for item in items)
            for value in self.values
        )
        if self.operator in ("=", "in"):
            return found
        return bool(items) and not found  # != and NOT IN never match an empty field


@dataclass(frozen=True)
class _DateCompare(_Node):
    field: str  # the issue field holding the timestamp
    operator: str
    value: datetime | None  # None stands for EMPTY

    def matches(self, issue: Issue) -> bool:
        stamp = parse_timestamp(_fields_of(issue).get(self.field))
        if self.operator in _EMPTINESS:
            return (stamp is None) == (self.operator == "is")
        if stamp is None or self.value is None:
            return False
        match self.operator:
            case "=":
                return stamp == self.value
            case "!=":
                return stamp != self.value
            case "<":
                return stamp < self.value
            case "<=":
                return stamp <= self.value
            case ">":
                return stamp > self.value
        return stamp >= self.value


@dataclass(frozen=True)
class _TextSearch(_Node):
    field: str  # "text", "summary" or "description"
    negated: bool
    terms: tuple[str, ...]

    def matches(self, issue: Issue) -> bool:
        words = set(re.findall(r"\w+", _searchable_text(issue, self.field).casefold()))
        found = all(
            any(word.startswith(term[:-1]) for word in words)
            if term.endswith("*")
            else term in words
            for term in self.terms
        )
        return found != self.negated


def _searchable_text(issue: Issue, field: str) -> str:
    fields = _fields_of(issue)
    parts = [fields.get("summary")] if field in ("text", "summary") else []
    if field in ("text", "description"):
        parts.append(fields.get("description"))
    if field == "text":
        parts.append(fields.get("environment"))
        comments = fields.get("comment")
        if isinstance(comments, Mapping):
            parts.extend(comment.get("body") for comment in comments.get("comments") or [])
    return " ".join(_plain(part) for part in parts)


def _plain(value: Any) -> str:
    """Text of a plain string or of an Atlassian Document Format node (REST v3 bodies)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        own = value.get("text")
        own = own if isinstance(own, str) else ""
        return " ".join([own, *(_plain(child) for child in value.get("content") or [])])
    return ""


# --- the query -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SortKey:
    field: str  # "rank", "key", "created" or "updated"
    descending: bool = False


@dataclass(frozen=True)
class Query:
    jql: str
    where: _Node | None
    order_by: tuple[SortKey, ...]
    rank_field_id: str

    @property
    def is_bounded(self) -> bool:
        """Whether anything restricts the result; Cloud's /search/jql refuses unbounded JQL."""
        return self.where is not None

    @property
    def orders_by_rank(self) -> bool:
        """Whether the first ORDER BY key is Rank."""
        return bool(self.order_by) and self.order_by[0].field == "rank"

    def matches(self, issue: Issue) -> bool:
        return self.where is None or self.where.matches(issue)

    def sort(self, issues: Sequence[Issue]) -> list[Issue]:
        """The issues in ORDER BY order (stable; no ORDER BY keeps the given order)."""

        def compare(a: Issue, b: Issue) -> int:
            for key in self.order_by:
                left, right = self._sort_value(a, key.field), self._sort_value(b, key.field)
                if left == right:
                    continue
                if left is None or right is None:
                    return 1 if left is None else -1  # missing values last either way
                result = -1 if left < right else 1
                return -result if key.descending else result
            return 0

        return sorted(issues, key=cmp_to_key(compare))

    def _sort_value(self, issue: Issue, field: str) -> Any:
        fields = _fields_of(issue)
        if field == "rank":
            return fields.get(self.rank_field_id) or None
        if field == "key":
            key = str(issue.get("key") or "")
            project, _, number = key.rpartition("-")
            return (project, int(number)) if number.isdigit() else (key, -1) if key else None
        return parse_timestamp(fields.get(field))


def parse(
    jql: str,
    *,
    fields: Mapping[str, str],
    rank_field: str = "customfield_10019",
    now: datetime | None = None,
) -> Query:
    """Parse ``jql``; ``fields`` maps custom field names (any case) and ``cf[N]`` to field ids;
    ``now`` is what relative dates count from (the clock's time by default)."""
    parser = _Parser(jql, _tokenize(jql), fields, now or datetime.now(UTC))
    where, order_by = parser.query()
    return Query(jql=jql, where=where, order_by=order_by, rank_field_id=rank_field)


class _Parser:
    def __init__(
        self, jql: str, tokens: list[_Token], fields: Mapping[str, str], now: datetime
    ) -> None:
        self.jql = jql
        self.tokens = tokens
        self.fields = fields
        self.now = now
        self.index = 0

    # helpers

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.token
        self.index += 1
        return token

    def at_word(self, *words: str) -> bool:
        return self.token.kind == "word" and self.token.text.casefold() in words

    def error(self, problem: str, token: _Token | None = None) -> JqlError:
        token = token or self.token
        return _syntax_error(self.jql, token.pos, problem)

    def got(self) -> str:
        return "the end of the query" if self.token.kind == "end" else f"'{self.token.text}'"

    # grammar

    def query(self) -> tuple[_Node | None, tuple[SortKey, ...]]:
        where = None
        if self.token.kind != "end" and not self.at_word("order"):
            where = self.or_clause()
        order_by: tuple[SortKey, ...] = ()
        if self.at_word("order"):
            self.advance()
            if not self.at_word("by"):
                raise self.error(f"Expecting 'by' but got {self.got()}.")
            self.advance()
            order_by = self.sort_keys()
        if self.token.kind != "end":
            expected = "a comma" if order_by else "either 'OR' or 'AND'"
            raise self.error(f"Expecting {expected} but got {self.got()}.")
        return where, order_by

    def or_clause(self) -> _Node:
        parts = [self.and_clause()]
        while self.at_word("or", "||"):
            self.advance()
            parts.append(self.and_clause())
        return parts[0] if len(parts) == 1 else _Or(tuple(parts))

    def and_clause(self) -> _Node:
        parts = [self.not_clause()]
        while self.at_word("and", "&&"):
            self.advance()
            parts.append(self.not_clause())
        return parts[0] if len(parts) == 1 else _And(tuple(parts))

    def not_clause(self) -> _Node:
        if self.at_word("not"):
            self.advance()
            return _Not(self.not_clause())
        if self.token.kind == "(":
            self.advance()
            inner = self.or_clause()
            if self.token.kind != ")":
                raise self.error(f"Expecting ')' but got {self.got()}.")
            self.advance()
            return inner
        return self.comparison()

    def comparison(self) -> _Node:
        field_token = self.token
        if field_token.kind not in ("word", "string") or (
            field_token.kind == "word" and field_token.text.casefold() in _RESERVED_VALUES
        ):
            raise self.error(f"Expecting a field name but got {self.got()}.")
        self.advance()
        operator = self.operator()
        value_token = self.token
        values = self.operand(operator)
        field = _resolve_field(self.jql, field_token, self.fields)
        if isinstance(field, tuple) and field[0] == "date":
            return self.date_compare(field_token, field[1], operator, values, value_token)
        if isinstance(field, tuple):
            return self.text_search(field_token, field[1], operator, values)
        if operator not in field.operators:
            raise JqlError(
                f"The operator '{operator.upper()}' is not supported by the '{field.name}' field."
            )
        if operator in _EMPTINESS:
            if values != (None,):
                raise self.error(
                    f"The operator '{operator.upper()}' only takes EMPTY or NULL.", value_token
                )
            return _Compare(field, operator, values)
        checked = tuple(None if value is None else field.literal(value) for value in values)
        if None in checked and not (field.operators & _EMPTINESS):
            raise JqlError(f"The field '{field.name}' does not support searching for EMPTY values.")
        return _Compare(field, operator, checked)

    def date_compare(
        self,
        token: _Token,
        field: str,
        operator: str,
        values: tuple[str | None, ...],
        value_token: _Token,
    ) -> _Node:
        if operator not in _DATE_OPERATORS:
            raise JqlError(
                f"The operator '{operator.upper()}' is not supported by the '{token.text}' field."
            )
        value = values[0]
        if operator in _EMPTINESS:
            if value is not None:
                raise self.error(
                    f"The operator '{operator.upper()}' only takes EMPTY or NULL.", value_token
                )
            return _DateCompare(field, operator, None)
        if value is None:
            raise JqlError(f"The field '{token.text}' does not support searching for EMPTY values.")
        return _DateCompare(field, operator, _date_literal(value, self.now))

    def text_search(
        self, token: _Token, field: str, operator: str, values: tuple[str | None, ...]
    ) -> _Node:
        if operator not in _TEXT:
            raise JqlError(
                f"The operator '{operator.upper()}' is not supported by the '{token.text}' field."
            )
        terms = tuple(re.findall(r"\w+\*?", values[0] or "", flags=re.UNICODE))
        if values[0] is None or not terms:
            raise JqlError(f"The field '{token.text}' needs a word to search for.")
        return _TextSearch(field, operator == "!~", tuple(term.casefold() for term in terms))

    def operator(self) -> str:
        token = self.token
        if token.kind == "op":
            self.advance()
            return token.text
        if self.at_word("in"):
            self.advance()
            return "in"
        if self.at_word("not", "is"):
            first = self.advance().text.casefold()
            if first == "is" and not self.at_word("not"):
                return "is"
            if self.at_word("in" if first == "not" else "not"):
                self.advance()
                return f"{first} {'in' if first == 'not' else 'not'}"
        raise self.error(
            f"Expecting operator but got {self.got()}. The valid operators are '=', '!=', '<',"
            " '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'.",
            token,
        )

    def operand(self, operator: str) -> tuple[str | None, ...]:
        if operator in ("in", "not in"):
            if self.token.kind != "(":
                raise self.error(f"Expecting '(' but got {self.got()}.")
            self.advance()
            values = [self.value()]
            while self.token.kind == ",":
                self.advance()
                values.append(self.value())
            if self.token.kind != ")":
                raise self.error(f"Expecting ')' or ',' but got {self.got()}.")
            self.advance()
            return tuple(values)
        if self.token.kind == "(":
            raise self.error(f"The operator '{operator.upper()}' does not support list values.")
        return (self.value(),)

    def value(self) -> str | None:
        token = self.token
        if token.kind == "string":
            self.advance()
            return token.text
        if token.kind == "word" and token.text.casefold() not in _RESERVED_VALUES:
            self.advance()
            if self.token.kind == "(":
                raise self.error(
                    f"The function '{token.text}' is not supported by the sandbox's JQL subset.",
                    token,
                )
            return None if token.text.casefold() in ("empty", "null") else token.text
        raise self.error(f"Expecting either a value, list or function but got {self.got()}.")

    def sort_keys(self) -> tuple[SortKey, ...]:
        keys = [self.sort_key()]
        while self.token.kind == ",":
            self.advance()
            keys.append(self.sort_key())
        return tuple(keys)

    def sort_key(self) -> SortKey:
        token = self.token
        if token.kind not in ("word", "string"):
            raise self.error(f"Expecting a field name but got {self.got()}.")
        self.advance()
        field = _SORTABLE.get(token.text.casefold())
        if field is None:
            if token.text.casefold() in _UNSUPPORTED_SYSTEM_FIELDS or token.text.casefold() in {
                name.casefold() for name in self.fields
            }:
                raise self.error(
                    f"Sorting by '{token.text}' is not supported by the sandbox's JQL subset.",
                    token,
                )
            raise JqlError(
                f"Field '{token.text}' does not exist or you do not have permission to view it."
            )
        descending = False
        if self.at_word("asc", "desc"):
            descending = self.advance().text.casefold() == "desc"
        return SortKey(field, descending)
