"""A starting ``impact.toml`` from a Jira field's options (``jira-impact config init``).

Each option gets a level by a guess the admin is meant to check: words in the option (a cue such
as "block", "slow", "internal" or "none"), else its place in Jira's list (sites tend to list the
most severe first). Every guess is written next to its option, with its reason. Pure: options in,
TOML text out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from impact.model import ImpactClass


@dataclass(frozen=True)
class StarterLevel:
    name: str
    score: int
    label: str
    impact_class: ImpactClass
    priority: str


# The default config's levels, most severe first.
LEVELS = (
    StarterLevel("blocking", 100, "customer-impact-blocking", ImpactClass.EXTERNAL, "Highest"),
    StarterLevel("degraded", 70, "customer-impact-degraded", ImpactClass.EXTERNAL, "High"),
    StarterLevel("indirect", 40, "customer-impact-indirect", ImpactClass.EXTERNAL, "Medium"),
    StarterLevel("none", 10, "internal-preference", ImpactClass.INTERNAL_PREFERENCE, "Low"),
)

# Cues, tried in this order; the first that matches names the level. Negations come first, so
# that "Not blocking" is not read as blocking.
_CUES = (
    ("none", r"\b(none|no|not|n/?a)\b|nice[- ]to[- ]have|preference|cosmetic|trivial"),
    (
        "blocking",
        r"block|outage|\bdown\b|critical|urgent|severe|\bsev(erity)?[ -]?1\b|\bp[ -]?[01]\b"
        r"|highest|cannot|can't|stopped",
    ),
    (
        "degraded",
        r"degrad|slow|worse|partial|major|\bhigh\b|impair|\bsev(erity)?[ -]?2\b|\bp[ -]?2\b"
        r"|affect",
    ),
    ("indirect", r"indirect|feeds?\b|support|enabl|internal|\bmedium\b|\bp[ -]?3\b"),
    ("none", r"\blow(est)?\b|minor|\bp[ -]?[45]\b"),
)
CUES = tuple((level, re.compile(pattern, re.IGNORECASE)) for level, pattern in _CUES)


@dataclass(frozen=True)
class Guess:
    option: str
    level: str
    why: str


def guess_levels(options: Sequence[str]) -> tuple[Guess, ...]:
    """A level for each option: by its words where a cue matches, else by its place in the
    list (the list spread over the levels, most severe first)."""
    guesses = []
    for index, option in enumerate(options):
        for level, cue in CUES:
            found = cue.search(option)
            if found:
                words = _whole_words(option, found.start(), found.end())
                guesses.append(Guess(option, level, f"{words!r} suggests {level}"))
                break
        else:
            level = LEVELS[index * len(LEVELS) // len(options)].name
            why = f"no word suggests a level; by its place in Jira's list, {level}"
            guesses.append(Guess(option, level, why))
    return tuple(guesses)


def _whole_words(text: str, start: int, end: int) -> str:
    """``text[start:end]`` widened to the whole words it touches ("Degrad" -> "Degrades")."""
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return text[start:end]


def starter_config(
    field_name: str, options: Sequence[str], project_keys: Sequence[str] = ()
) -> str:
    """The TOML text of a config mapping the field's options to the default levels."""
    if not options:
        raise ValueError("the field has no options to map")
    guesses = guess_levels(options)
    lines = [
        "# A starting config for jira-customer-impact, written by `jira-impact config init` from",
        f"# the {len(options)} options of the Jira field {field_name!r}.",
        "# Each option's level below is a GUESS: check every one, move values between levels,",
        "# then run `jira-impact config check`. config/impact.example.toml explains every key.",
        "",
        "[field]",
        f"name = {_toml(field_name)}",
    ]
    for level in LEVELS:
        mine = [g for g in guesses if g.level == level.name]
        lines.append("")
        if not mine:
            lines += [
                f"# [levels.{level.name}]: no option was guessed to mean {level.name!r}; add the",
                "# level back (as in config/impact.example.toml) when an option means it.",
            ]
            continue
        lines += [f"[levels.{level.name}]", "values = ["]
        lines += [f"    {_toml(g.option)},  # {g.why}" for g in mine]
        lines += [
            "]",
            f"score = {level.score}",
            f"label = {_toml(level.label)}",
            f"class = {_toml(level.impact_class.value)}",
            f"priority = {_toml(level.priority)}",
        ]
    lines += [
        "",
        "[missing]",
        'label = "needs-customer-impact"',
        "score = 20",
        "comment = true",
        "",
        "[inferred]",
        'label = "customer-impact-inferred"',
        "write_field = false",
        "",
        '# The projects whose issues are triaged; board = <id> and rank = "band" keep a board',
        "# ordered by impact.",
    ]
    for key in project_keys:
        lines += ["[[projects]]", f"key = {_toml(key)}", 'rank = "off"', ""]
    if not project_keys:
        lines += ["# [[projects]]", '# key = "SHOP"', ""]
    return "\n".join(lines).rstrip() + "\n"


def _toml(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, for the characters json.dumps emits).
    json.dumps leaves DEL and the C1 controls as they are, which TOML refuses raw: escaped."""
    return _TOML_RAW_CONTROL.sub(
        lambda m: f"\\u{ord(m.group()):04x}", json.dumps(text, ensure_ascii=False)
    )


_TOML_RAW_CONTROL = re.compile("[\x7f-\x9f]")
