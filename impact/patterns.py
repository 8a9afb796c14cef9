"""The admins' ``text`` patterns: compiled with the ``regex`` engine, searched with a time limit,
and looked over for the shapes that make a backtracking engine slow.

A pattern such as ``\\bdown\\b.*\\bcustomers\\b`` backtracks over the rest of the text from every
place ``down`` occurs: quadratic in the text, seconds of worker time on a 32 KB description.
``regex`` takes a ``timeout`` and stops the search itself, in its C engine, once that much time
has gone by; ``search`` then says so (``None``) and ``decide`` counts the pattern as not
matching, with a note. The time limit is the library's own: nothing here reads a clock. It is the
one way the same issue could be decided differently, and only for a pattern that ran out of time.

``risks`` is a static look at a pattern's source, for ``jira-impact config check``: it names the
two shapes behind most slow patterns, without claiming to find every slow one.
"""

from __future__ import annotations

import regex

# Longest one pattern may search one issue's text: far above what a sane pattern takes on
# Jira's largest description (32,767 characters; well under a millisecond), far below a stall.
TIMEOUT_SECONDS = 0.1
_UNBOUNDED = ("*", "+")  # and {n,}
_WIDE = (".", "\\S", "\\W", "\\D", "[^")  # items that run on across words and lines


class PatternError(ValueError):
    """The pattern does not compile; the message is the engine's reason."""


def compile_pattern(source: str) -> regex.Pattern[str]:
    """``source`` compiled with ``regex`` (its version 0 syntax: that of Python's ``re``)."""
    try:
        return regex.compile(source, regex.VERSION0)
    except regex.error as exc:
        raise PatternError(str(exc)) from exc


def search(pattern: regex.Pattern[str], text: str) -> bool | None:
    """Whether ``pattern`` occurs in ``text``; None when the search ran out of time."""
    try:
        return pattern.search(text, timeout=TIMEOUT_SECONDS) is not None
    except TimeoutError:
        return None


def risks(source: str) -> tuple[str, ...]:
    """Why ``source`` may be slow on a long text; () when no known risky shape is seen.

    - a repeated group that itself holds a repeat (``(\\w+\\s?)+``): exponential;
    - a search not anchored at the start (``\\A``) with a wide repeat (``.*``, ``\\S+``) that
      is followed by more pattern: quadratic, as each start backtracks over the rest of the text.
    """
    found: list[str] = []
    items = _items(source)
    for n, (item, depth_inside, repeated) in enumerate(items):
        if repeated and item.startswith("(") and depth_inside:
            found.append(
                f"the repeated group {_clip(item)} holds a repeat itself: the engine may try "
                "exponentially many ways to split a long text between them"
            )
        elif (
            repeated
            and item.startswith(_WIDE)
            and not _anchored(items)
            and any(not _is_end(later) for later, _d, _r in items[n + 1 :])
        ):
            found.append(
                f"{_clip(item)} repeated, then more pattern, in a search not anchored at the "
                "start: the time grows with the square of the text. Anchor it at \\A, e.g. "
                "(?s)\\A(?=.*?\\bone\\b)(?=.*?\\btwo\\b) for two words in either order"
            )
    return tuple(dict.fromkeys(found))


def _items(source: str) -> list[tuple[str, bool, bool]]:
    """The top-level items of ``source``: (text, holds an unbounded repeat, is itself repeated
    without bound). A group is one item, its inside looked at whole; flags like ``(?is)`` count
    as an item that matches nothing."""
    items: list[tuple[str, bool, bool]] = []
    i = 0
    while i < len(source):
        start, inside = i, False
        if source[i] == "\\":
            i += 2
        elif source[i] == "[":
            i = _class_end(source, i)
        elif source[i] == "(":
            depth = 0
            while i < len(source):
                if source[i] == "\\":
                    i += 2
                    continue
                if source[i] == "[":
                    i = _class_end(source, i)
                    continue
                depth += {"(": 1, ")": -1}.get(source[i], 0)
                inside = inside or (depth > 0 and _unbounded_at(source, i))
                i += 1
                if depth == 0:
                    break
        else:
            i += 1
        item = source[start:i]
        repeated = _unbounded_at(source, i)
        while i < len(source) and source[i] in "*+?{":  # the quantifier belongs to the item
            i = source.index("}", i) + 1 if source[i] == "{" and "}" in source[i:] else i + 1
        if item == "|":
            items.append((item, False, False))
        elif item:
            items.append((item, inside, repeated))
    return items


def _unbounded_at(source: str, i: int) -> bool:
    """Whether a quantifier without an upper bound (``*``, ``+``, ``{n,}``) starts at ``i``."""
    return source[i : i + 1] in _UNBOUNDED or regex.match(r"\{\d*,\}", source[i:]) is not None


def _class_end(source: str, i: int) -> int:
    """The index just past the character class that starts at ``source[i] == "["``."""
    i += 1
    if i < len(source) and source[i] == "^":
        i += 1
    if i < len(source) and source[i] == "]":
        i += 1
    while i < len(source) and source[i] != "]":
        i += 2 if source[i] == "\\" else 1
    return i + 1


def _anchored(items: list[tuple[str, bool, bool]]) -> bool:
    """Whether the pattern can only match at the start of the text (no top-level ``|``)."""
    if any(item == "|" for item, _d, _r in items):
        return False
    flags = ""
    for item, _d, _r in items:
        if item.startswith("(?") and item[2:3].isalpha() and item.endswith(")"):
            flags += item  # inline flags: with m, ^ is the start of any line
            continue
        return item == "\\A" or (item == "^" and "m" not in flags)
    return False


def _is_end(item: str) -> bool:
    return item in ("$", "\\Z", "\\b", "\\B")


def _clip(text: str, limit: int = 30) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
