"""``Finding``: one thing ``check`` (and ``setup``) looked at, and what it found."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    ok: bool
    subject: str  # what was checked: "field", "project SHOP", "board 12", "webhook"
    message: str
    fix: str | None = None  # how to put it right (failed findings)

    def __str__(self) -> str:
        line = f"{'ok  ' if self.ok else 'FAIL'}  {self.subject}: {self.message}"
        return one_line(line + (f" — fix: {self.fix}" if self.fix and not self.ok else ""))


_LINE_BREAKS = re.compile("[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` on one line: a line break in what Jira sent (a display name, a message) is shown
    as its escape, so it cannot forge a line of the report."""
    return _LINE_BREAKS.sub(lambda m: repr(m.group())[1:-1], text)
