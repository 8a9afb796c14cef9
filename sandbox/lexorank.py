"""Rank strings shaped like Jira's LexoRank ("0|hzzzzz:", "0|i0000f:i"), simplified.

A rank is ``<bucket>|<six base-36 digits>:<more base-36 digits>``. Read the digits after the bar
as one base-36 fraction: the six before the colon are fixed width and the tail never ends in
"0", so every value has exactly one spelling and plain string comparison gives the numeric
order. There is always room: when two ranks are adjacent at one length, the answer is one digit
longer. Jira rebalances to keep strings short; this sandbox does not need to.
"""

from __future__ import annotations

import re

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"  # ASCII order is value order
BASE = len(DIGITS)
WIDTH = 6  # digits before the colon
# Largest step taken towards an open end, at WIDTH digits: appending to the end of a board many
# times then walks forward in small steps instead of halving the remaining room each time.
OPEN_END_STEP = BASE**3
# Smallest gap spread() leaves between neighbours, at the length it picks.
SPREAD_MIN_GAP = BASE**2

_RANK = re.compile(r"([0-2])\|([0-9a-z]{6}):([0-9a-z]*)")


def between(before: str | None, after: str | None) -> str:
    """A rank strictly between ``before`` and ``after``; ``None`` is the open start or end."""
    bucket, low = _parse(before) if before is not None else (None, None)
    after_bucket, high = _parse(after) if after is not None else (None, None)
    if bucket is not None and after_bucket is not None and bucket != after_bucket:
        raise ValueError(f"ranks {before!r} and {after!r} are in different buckets")
    bucket = bucket or after_bucket or "0"
    if low is not None and high is not None and not _less(low, high):
        raise ValueError(f"rank {before!r} is not before {after!r}")
    length = WIDTH
    while True:
        # Exclusive integer bounds at this many digits; 0 itself is never handed out, so
        # there is always room at the start too.
        lo = _scaled(low, length, round_up=False) if low is not None else 0
        hi = _scaled(high, length, round_up=True) if high is not None else BASE**length
        if hi - lo >= 2:
            value = (lo + hi) // 2
            step = OPEN_END_STEP * BASE ** (length - WIDTH)
            if high is None and low is not None:
                value = min(value, lo + step)
            elif low is None and high is not None:
                value = max(value, hi - step)
            return _format(bucket, value, length)
        length += 1


def spread(n: int) -> list[str]:
    """``n`` increasing ranks, evenly spaced, with room before, between and after them."""
    if n < 0:
        raise ValueError("n must not be negative")
    length = WIDTH
    while BASE**length // (n + 1) < SPREAD_MIN_GAP:
        length += 1
    step = BASE**length // (n + 1)
    return [_format("0", step * i, length) for i in range(1, n + 1)]


def is_rank(text: str) -> bool:
    """Whether ``text`` is a rank in the one spelling this module hands out."""
    try:
        _parse(text)
    except ValueError:
        return False
    return True


def _parse(text: str) -> tuple[str, str]:
    match = _RANK.fullmatch(text)
    # A tail ending in "0" would be a second spelling; zero itself has nothing below it.
    if match is None or match.group(3).endswith("0") or not match.group(2).strip("0"):
        raise ValueError(f"not a rank: {text!r}")
    return match.group(1), match.group(2) + match.group(3)


def _less(a: str, b: str) -> bool:
    # Canonical digit strings: comparing them as strings compares the fractions.
    return a < b


def _scaled(digits: str, length: int, *, round_up: bool) -> int:
    """The fraction ``0.digits`` times BASE**length, rounded down or up to an integer."""
    head, tail = digits[:length], digits[length:]
    value = int(head.ljust(length, "0"), BASE) if head else 0
    if round_up and tail.strip("0"):
        value += 1
    return value


def _format(bucket: str, value: int, length: int) -> str:
    digits = []
    for _ in range(length):
        value, digit = divmod(value, BASE)
        digits.append(DIGITS[digit])
    text = "".join(reversed(digits))
    return f"{bucket}|{text[:WIDTH]}:{text[WIDTH:].rstrip('0')}"
