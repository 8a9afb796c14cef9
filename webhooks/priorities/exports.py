"""The priorities of a board as JSON and CSV: plain functions of what the page shows.

A CSV opens in a spreadsheet, which runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as
a formula; a summary from Jira could be written to do that, so such a cell (and one starting
with a tab or a carriage return) is given a leading apostrophe, which shows it as text.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pipeline.priorities import COLUMNS, BoardPriorities, Row, Week, age_text
from pipeline.priorities_reads import ResolvedWeeks

CSV_HEADER = ("key", "summary", "level", "class", "why", "status", "assignee")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def board_csv(board: BoardPriorities) -> str:
    """One row per open issue, in board order: key, summary, level, class, why, status,
    assignee."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in board.rows():
        cells = (
            row.key,
            row.summary,
            row.level,
            row.column,
            row.why,
            row.status or "",
            row.assignee or "",
        )
        writer.writerow([neutralised(cell) for cell in cells])
    return out.getvalue()


def row_json(row: Row, *, now: datetime, jira_url: str) -> dict[str, Any]:
    return {
        "key": row.key,
        "url": issue_url(jira_url, row.key),
        "summary": row.summary,
        "level": row.level,
        "class": row.column,
        "why": row.why,
        "reporter": row.reporter,
        "status": row.status,
        "assignee": row.assignee,
        "created": row.created.isoformat() if row.created else None,
        "age": age_text(row.created, now),
        "position": row.position,
    }


def week_json(week: Week) -> dict[str, Any]:
    share = week.external_share
    return {
        "week": week.start.isoformat(),
        **{column: week.count(column) for column in COLUMNS},
        "total": week.total,
        "external_share": None if share is None else round(share, 4),
    }


def board_json(
    board: BoardPriorities, resolved: ResolvedWeeks, *, now: datetime, jira_url: str
) -> dict[str, Any]:
    return {
        "board": board.board_id,
        "name": board.name,
        "board_url": board_url(jira_url, board.board_id),
        "project": board.project,
        "total": board.total,
        "classes": {c.name: {"count": c.count, "share": round(c.share, 4)} for c in board.classes},
        "columns": {
            name: [row_json(row, now=now, jira_url=jira_url) for row in rows]
            for name, rows in board.columns
        },
        "weeks": [week_json(week) for week in resolved.weeks],
        "weeks_complete": resolved.complete,
        "weeks_undated": resolved.undated,
        "generated_at": now.isoformat(),
    }


def issue_url(jira_url: str, key: str) -> str:
    return f"{jira_url}/browse/{quote(key, safe='')}"


def board_url(jira_url: str, board_id: int) -> str:
    """The board in Jira (the address both Cloud and Data Center answer, redirecting Cloud to
    its project's board page)."""
    return f"{jira_url}/secure/RapidBoard.jspa?rapidView={int(board_id)}"
