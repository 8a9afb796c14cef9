"""A burst of new issues, as a bulk import makes one, against a running ``Stack``: the issues of
a known mix of impacts created at once, then what the product did with them, read from the
sandbox (labels, asks, the board's order, every call it received).

The end-to-end burst test and ``bench/burst.py`` both drive a burst with this.
"""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sandbox.stack import Stack, StackError

# (band, score, label, what makes an issue of that band: a person's field value or a rule)
MIX: tuple[tuple[str, int, str, dict[str, Any]], ...] = (
    ("blocking", 100, "customer-impact-blocking", {"impact": "Blocks paying customers"}),
    ("degraded", 70, "customer-impact-degraded", {"issuetype": "Bug", "components": ["Checkout"]}),
    (
        "indirect",
        40,
        "customer-impact-indirect",
        {"impact": "Indirect: feeds customer-facing work"},
    ),
    ("missing", 20, "needs-customer-impact", {}),
    ("none", 10, "internal-preference", {"impact": "None: internal preference"}),
)
BANDS = {band: (score, label) for band, score, label, _ in MIX}
WRITES = {"PUT", "POST", "DELETE"}
_ID = re.compile(r"/(?:[A-Z][A-Z0-9_]*-\d+|\d+)(?=/|$)")


@dataclass
class Burst:
    bands: dict[str, str]  # issue key -> the band it must end in
    started: float  # epoch seconds, just before the first issue was created
    first_call: int  # the sandbox's call log sequence at the start

    @property
    def asked(self) -> set[str]:
        return {key for key, band in self.bands.items() if band == "missing"}


def create_burst(stack: Stack, count: int) -> Burst:
    """``count`` issues created one right after the other, the mix's bands in turn."""
    first, started = stack.last_call(), time.time()
    bands: dict[str, str] = {}
    for n in range(count):
        band, _score, _label, fields = MIX[n % len(MIX)]
        body = {"summary": f"Imported request {n}", "as": "ana", **fields}
        bands[stack.create_issue(**body)] = band
    return Burst(bands, started, first)


def board_state(stack: Stack, burst: Burst) -> list[str]:
    """What is not right yet (empty when every issue carries its band's label, no other band's,
    and the board is in band order)."""
    problems = []
    rows = stack.board()
    scores = []
    for row in rows:
        band = burst.bands.get(row["key"])
        if band is None:
            continue
        score = BANDS[band][0]
        labelled = {b for b, (_s, other) in BANDS.items() if other in row["labels"]}
        if labelled != {band}:
            problems.append(f"{row['key']} is labelled {sorted(labelled)}, not {band}")
        scores.append((row["key"], score))
    for (above, high), (below, low) in itertools.pairwise(scores):
        if low > high:
            problems.append(f"{below} ({low}) sits below {above} ({high})")
    if len(scores) != len(burst.bands):
        problems.append(f"{len(burst.bands) - len(scores)} issue(s) are not on the board")
    return problems


def wait_done(stack: Stack, burst: Burst, *, timeout: float, quiet_s: float = 4.0) -> float:
    """Wait until the board is right and the product has gone quiet; when the last write of
    the burst was answered (epoch seconds). Raises ``StackError`` with what is not right."""
    deadline = time.monotonic() + timeout
    problems: list[str] = ["not looked yet"]
    while time.monotonic() < deadline:
        problems = board_state(stack, burst)
        if not problems:
            stack.settle(quiet_s=quiet_s, timeout=max(1.0, deadline - time.monotonic()))
            problems = board_state(stack, burst)  # nothing moved it since
            if not problems:
                return last_write(calls_of(stack, burst))
        time.sleep(0.5)
    raise StackError(f"the burst was not done after {timeout:.0f} s: {problems[:5]}")


def calls_of(stack: Stack, burst: Burst) -> list[dict[str, Any]]:
    """The calls the product made since the burst began."""
    return [c for c in stack.calls(burst.first_call) if c["user"] == "impact-bot"]


def last_write(calls: list[dict[str, Any]]) -> float:
    return max((c["at"] for c in calls if c["method"] in WRITES), default=0.0)


def kind(call: dict[str, Any]) -> str:
    """``PUT /rest/api/2/issue/{id}``: a call's method and endpoint, keys and ids folded (the
    API's own ``/rest/api/2`` or ``/rest/agile/1.0`` kept)."""
    parts = call["path"].split("/")
    head, tail = "/".join(parts[:4]), "/".join(["", *parts[4:]])
    return f"{call['method']} {head}{_ID.sub('/{id}', tail).rstrip('/')}"


@dataclass
class Figures:
    issues: int
    calls: int
    by_kind: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    unavoidable: int = 0  # an edit per issue, an ask per issue without impact, a rank per 50
    asks: Counter[str] = field(default_factory=Counter)  # issue key -> asks posted


def figures(calls: list[dict[str, Any]], burst: Burst) -> Figures:
    issues = len(burst.bands)
    asks = Counter(
        c["path"].split("/")[-2]
        for c in calls
        if c["method"] == "POST" and c["path"].endswith("/comment") and c["status"] == 201
    )
    return Figures(
        issues=issues,
        calls=len(calls),
        by_kind=Counter(kind(c) for c in calls),
        rate_limited=sum(1 for c in calls if c["status"] == 429),
        unavoidable=issues + len(burst.asked) + -(-issues // 50),
        asks=asks,
    )
