"""Everything the commands print goes through ``echo``: Jira's data (summaries, Jira's own error
messages, delivery identifiers) may hold terminal control sequences, and printed raw they could
recolour the terminal, move the cursor or rewrite a line already shown. Each control character
is shown as an escape instead (``\\x1b``); newlines and tabs are kept."""

from __future__ import annotations

import re

import click

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides that make
# text read in another order than it is stored.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control character shown as its escape."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def echo(message: object = "", *, err: bool = False) -> None:
    click.echo(printable(str(message)), err=err)
