"""The 12 weeks' chart, drawn on the server as inline SVG with pygal: the issues resolved each
week by class, stacked, and the share that served paying customers. No script, so it reads in a
screenshot or an e-mail; its numbers are also in a table beside it.

pygal writes a ``<script>`` (its tooltips' config), tooltip shapes and an inline ``style``
attribute into every chart; they are taken out, and its ``<style>`` element carries the page's
CSP nonce. The SVG names itself (``role="img"``, a title and a description), so a screen reader
reads one image, not pygal's guide lines. Only the product's own words reach the chart (dates,
class names, counts): nothing Jira sends is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import count
from xml.etree import ElementTree

import pygal
from markupsafe import Markup
from pygal.style import Style

from pipeline.priorities import COLUMNS, EXTERNAL, INTERNAL, MISSING, Week

# Each passes 3:1 against white (WCAG's contrast for graphics); the legend and the table say
# the words, so colour is never the only cue.
COLOURS = {EXTERNAL: "#0b57d0", INTERNAL: "#a15c00", MISSING: "#6e7781"}
NAMES = {  # of resolved work
    EXTERNAL: "served paying customers",
    INTERNAL: "internal preferences",
    MISSING: "no impact stated",
}
OPEN_NAMES = {  # of open work: what it is for, not what it did
    EXTERNAL: "serve paying customers",
    INTERNAL: "internal preferences",
    MISSING: "need an impact",
}
_FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'
_ids = count(1)


def _style(colours: Sequence[str]) -> Style:
    return Style(
        background="#ffffff",
        plot_background="#ffffff",
        foreground="#1b1f24",
        foreground_strong="#1b1f24",
        foreground_subtle="#8c959f",
        opacity="1",
        opacity_hover="1",
        transition="0ms",
        colors=tuple(colours),
        font_family=_FONT,
        label_font_size=13,
        major_label_font_size=13,
        legend_font_size=14,
        title_font_size=16,
        value_font_size=12,
    )


def week_label(week: Week) -> str:
    return f"{week.start.day} {week.start:%b}"


def counts_chart(weeks: Sequence[Week], *, nonce: str) -> Markup:
    """Stacked bars: per week, the issues resolved in each class."""
    top = max((week.total for week in weeks), default=0)
    step = max(1, math.ceil(top / 5))
    chart = pygal.StackedBar(
        _config(),
        style=_style([COLOURS[c] for c in COLUMNS]),
        height=340,
        y_labels=list(range(0, max(top, 1) + step, step)),
        title="Issues resolved per week, by class",
    )
    chart.x_labels = [week_label(week) for week in weeks]
    for column in COLUMNS:
        chart.add(NAMES[column], [week.count(column) for week in weeks])
    described = "; ".join(
        f"week of {week_label(w)}: " + ", ".join(f"{w.count(c)} {NAMES[c]}" for c in COLUMNS)
        for w in weeks
    )
    return _inline(chart, nonce, "Issues resolved per week, by class", described)


def share_chart(weeks: Sequence[Week], *, nonce: str) -> Markup:
    """A line: per week, the share of the resolved issues that served paying customers."""
    chart = pygal.Line(
        _config(),
        style=_style([COLOURS[EXTERNAL]]),
        height=240,
        range=(0, 100),
        y_labels=[0, 25, 50, 75, 100],
        value_formatter=lambda value: f"{value:.0f} %",
        allow_interruptions=True,
        show_legend=False,
        dots_size=4,
        title="Share that served paying customers (%)",
    )
    chart.x_labels = [week_label(week) for week in weeks]
    shares = [None if w.external_share is None else round(100 * w.external_share) for w in weeks]
    chart.add(NAMES[EXTERNAL], shares)
    described = "; ".join(
        f"week of {week_label(w)}: " + ("nothing resolved" if s is None else f"{s} %")
        for w, s in zip(weeks, shares, strict=True)
    )
    return _inline(chart, nonce, "Share of resolved issues that served paying customers", described)


def _config() -> pygal.Config:
    config = pygal.Config()
    config.js = []  # no script of pygal's
    config.disable_xml_declaration = True  # inline in HTML
    config.width = 760
    config.legend_at_bottom = True
    config.legend_at_bottom_columns = 3
    config.truncate_label = -1
    config.margin = 12
    return config


def _inline(chart: pygal.Graph, nonce: str, title: str, description: str) -> Markup:
    root = chart.render_tree()
    _strip(root)
    for element in root.iter():
        if element.tag == "style":
            element.set("nonce", nonce)
    number = next(_ids)
    root.set("role", "img")
    root.set("aria-labelledby", f"chart-title-{number} chart-desc-{number}")
    root.set("preserveAspectRatio", "xMidYMid meet")
    described = ElementTree.Element("desc", id=f"chart-desc-{number}")
    described.text = description
    named = ElementTree.Element("title", id=f"chart-title-{number}")
    named.text = title
    root.insert(0, described)
    root.insert(0, named)
    # Only our words went in (see the module's docstring); ElementTree escapes them anyway.
    return Markup(ElementTree.tostring(root, encoding="unicode"))


def _strip(root: ElementTree.Element) -> None:
    """Take out what pygal adds for its script: the script, tooltip shapes and their data
    (``desc``), guide titles, comments and ``style`` attributes (a CSP without
    'unsafe-inline' refuses those)."""
    for parent in list(root.iter()):
        for child in list(parent):
            tag = child.tag if isinstance(child.tag, str) else ""
            unwanted = tag in ("script", "desc", "title") or not tag
            if unwanted or "tooltip-overlay" in child.get("class", ""):
                parent.remove(child)
        parent.attrib.pop("style", None)
