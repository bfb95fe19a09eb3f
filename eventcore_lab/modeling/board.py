"""Draw an event model as an Event Modeling board with Graphviz.

Layout: time runs left to right. Each slice takes one column for what happens (the automation on top,
the command, and below it the events it writes, one lane per stream category) and, when it has read
models, a second column for them. Rows are swimlanes: automations, commands · read models, then one lane
of events per stream category; an event written to several categories appears once in each lane.

A board wider than ``max_width`` wraps into bands stacked top to bottom, like lines of text, so that it
can be shown at a size where its labels stay readable; an arrow whose ends fall in different bands is
written on its target instead (``◂ from OrderPlaced``). Long field lists wrap inside their note.
"""

from __future__ import annotations

import base64
import html
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import EventCoreError, InvalidFormat
from .model import Element, EventModel, Kind

COLOURS = {
    Kind.EVENT: "#ffb74d",  # orange
    Kind.COMMAND: "#64b5f6",  # blue
    Kind.READ_MODEL: "#81c784",  # green
    Kind.AUTOMATION: "#cfd8dc",  # grey: the robot
}
_EDGE_COLOURS = {
    Kind.EVENT: "#ef8f00",
    Kind.COMMAND: "#1e88e5",
    Kind.READ_MODEL: "#43a047",
    Kind.AUTOMATION: "#78909c",
}
_LEGEND = {
    Kind.COMMAND: "command: a request to change something",
    Kind.EVENT: "event: a fact, in its stream's lane",
    Kind.READ_MODEL: "read model: a view built from events",
    Kind.AUTOMATION: "automation: a robot issuing commands",
}
#: Default widest band, in points (1 pt = 4/3 CSS px). Shown at 100% in a ~1,000 px JupyterLab output
#: it needs no scaling; shrunk into an 800 px book column its 10 pt field text still renders at 10 px.
DEFAULT_MAX_WIDTH = 760.0
NAME_SIZE, DETAIL_SIZE, LANE_SIZE, TITLE_SIZE = 12, 10, 11, 16  # points
_WRAP = 26  # characters per line of a field list
_MARGIN, _COL_GAP, _LANE_GAP, _BAND_GAP, _PAD = 96.0, 22.0, 10.0, 34.0, 10.0
_INSTALL_HINT = (
    "drawing a board needs the `dot` program of Graphviz, which was not found on PATH. Install it: "
    "`apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) or "
    "`conda install -c conda-forge graphviz`; the DOT text is available without it as `board.source`"
)


class GraphvizMissing(EventCoreError):
    """The Graphviz ``dot`` program is not installed, so a board cannot be rendered."""

    code = "EC010"


@dataclass
class _Note:
    """One sticky note placed in one lane (an event in two lanes is two notes)."""

    node: str
    element: Element
    lane: str
    column: int
    notes: list[str] = field(default_factory=list)  # arrows from other bands, written out

    def lines(self, fields: bool) -> list[str]:
        out = _wrap(", ".join(self.element.fields)) if fields and self.element.fields else []
        out += [line for item in self.element.boundary for line in _wrap(f"reads {item}")]
        if self.element.tags:
            out += _wrap(f"tags {', '.join(self.element.tags)}")
        return out + [line for note in self.notes for line in _wrap(note)]

    def width(self, fields: bool) -> float:
        text = max((len(line) * DETAIL_SIZE * 0.56 for line in self.lines(fields)), default=0.0)
        return max(len(self.element.name) * NAME_SIZE * 0.62, text) + 2 * _PAD

    def height(self, fields: bool) -> float:
        return NAME_SIZE * 1.5 + len(self.lines(fields)) * DETAIL_SIZE * 1.25 + _PAD


class Board:
    """A rendered view of an :class:`EventModel`; displays inline in notebooks and saves SVG/PNG/PDF.

    ``max_width`` (points) wraps a long board into bands so it reads without scrolling; ``None`` draws
    one band however wide (what :meth:`full_size` returns). In a notebook the board is scaled down to
    the output's width when it is wider, with a "full size" view to open beneath it.
    """

    def __init__(
        self,
        model: EventModel,
        *,
        title: str | None = None,
        fields: bool = True,
        max_width: float | None = DEFAULT_MAX_WIDTH,
        legend: bool = True,
    ) -> None:
        if max_width is not None and max_width < 200:
            raise InvalidFormat(f"a board's max_width is at least 200 points (or None), got {max_width!r}")
        self.model = model
        self.title = model.name if title is None else title
        self.fields = fields
        self.max_width = max_width
        self.legend = legend
        self._svg: str | None = None

    def full_size(self) -> Board:
        """The same board in one band, however wide (for a poster, or to zoom around in)."""
        return Board(self.model, title=self.title, fields=self.fields, max_width=None, legend=self.legend)

    # -- layout ---------------------------------------------------------------------------------------

    def _columns(self) -> list[list[_Note]]:
        """Per slice: a column for automation, command and events, then one for its read models."""
        model = self.model
        lane_of_category = {lane: f"s_{i}" for i, lane in enumerate(model.lanes)}
        columns: list[list[_Note]] = []
        for piece in model.slices:
            acting: list[_Note] = []
            reading: list[_Note] = []
            order = {Kind.AUTOMATION: 0, Kind.COMMAND: 1, Kind.EVENT: 2, Kind.READ_MODEL: 3}
            for name in sorted(piece.elements, key=lambda n: order[model.elements[n].kind]):
                element = model.elements[name]
                if element.kind is Kind.EVENT:
                    for category in element.lanes:
                        key = lane_of_category[category]
                        acting.append(_Note(_node_id(name, key), element, key, 0))
                elif element.kind is Kind.READ_MODEL:
                    reading.append(_Note(_node_id(name, ""), element, "main", 0))
                else:
                    key = "automation" if element.kind is Kind.AUTOMATION else "main"
                    acting.append(_Note(_node_id(name, ""), element, key, 0))
            columns.extend(column for column in (acting, reading) if column)
        for index, column in enumerate(columns):
            for note in column:
                note.column = index
        return columns

    def _bands(self, columns: list[list[_Note]]) -> list[list[int]]:
        """Column indexes per band: as many columns as fit in ``max_width``, at least one."""
        bands: list[list[int]] = [[]]
        used = _MARGIN
        for index, column in enumerate(columns):
            width = max(n.width(self.fields) for n in column) + _COL_GAP
            if self.max_width is not None and bands[-1] and used + width > self.max_width:
                bands.append([])
                used = _MARGIN
            bands[-1].append(index)
            used += width
        return bands

    def graph(self) -> Any:
        """The board as a ``graphviz.Digraph`` with pinned positions (rendered by ``neato -n2``)."""
        import graphviz

        model = self.model
        lane_titles = {"automation": "automations", "main": "commands ·\nread models"}
        lane_titles |= {f"s_{i}": f"{lane}-*" for i, lane in enumerate(model.lanes)}
        columns = self._columns()
        bands = self._bands(columns)
        band_of = {i: b for b, band in enumerate(bands) for i in band}
        notes = {n.node: n for column in columns for n in column}
        placed: dict[str, list[_Note]] = {}
        for note in notes.values():
            placed.setdefault(note.element.name, []).append(note)

        # an arrow between bands is written on its target rather than drawn across the board
        edges: list[tuple[_Note, _Note, str]] = []
        for flow in model.flows:
            colour = _EDGE_COLOURS[model.elements[flow.source].kind]
            for head in placed.get(flow.target, []):
                tails = placed.get(flow.source, [])
                near = [t for t in tails if band_of[t.column] == band_of[head.column]]
                edges.extend((tail, head, colour) for tail in near)
                if tails and not near:
                    head.notes.append(f"◂ from {flow.source}")

        dot = graphviz.Digraph(self.title or "board", engine="neato")
        dot.attr(splines="line", outputorder="edgesfirst", fontname="Helvetica", pad="0.1")
        if self.title:
            dot.attr(label=self.title, labelloc="t", fontsize=str(TITLE_SIZE))
        dot.attr("node", shape="box", style="filled,rounded", fontname="Helvetica", fontsize=str(NAME_SIZE))
        dot.attr("edge", arrowsize="0.7", penwidth="1.2")

        widths = [max(n.width(self.fields) for n in column) for column in columns]
        board_width = max(_MARGIN + sum(widths[i] + _COL_GAP for i in band) for band in bands)
        background = ""
        y = 0.0  # from the top, downwards; graphviz's y grows upwards, so positions use -y
        for b, band in enumerate(bands):
            lanes = [key for key in lane_titles if any(n.lane == key for i in band for n in columns[i])]
            for key in lanes:
                stacks = [[n for n in columns[i] if n.lane == key] for i in band]
                row = max(n.height(self.fields) for stack in stacks for n in stack) + _PAD
                depth = max(len(stack) for stack in stacks)
                lane_height = depth * row + _PAD
                background += self._lane(dot, f"{b}_{key}", lane_titles[key], board_width, y, lane_height)
                x = _MARGIN
                for i, stack in zip(band, stacks, strict=True):
                    for r, note in enumerate(stack):
                        centre = (x + widths[i] / 2, -(y + _PAD / 2 + r * row + row / 2))
                        dot.node(note.node, pos=_pos(*centre), **self._node_attrs(note))
                    x += widths[i] + _COL_GAP
                y += lane_height + _LANE_GAP
            y += _BAND_GAP - _LANE_GAP if b < len(bands) - 1 else 0.0
        for tail, head, colour in edges:
            dot.edge(tail.node, head.node, color=colour)
        if self.legend:
            self._legend(dot, y + _LANE_GAP)
        dot.attr(_background=background)
        return dot

    def _lane(self, dot: Any, key: str, title: str, width: float, top: float, height: float) -> str:
        """The lane's title as a node; returns its background as xdot drawing operations.

        Backgrounds go in the graph's ``_background`` (drawn before anything else), so that arrows can
        be drawn beneath the notes (``outputorder=edgesfirst``) and still above the lanes.
        """
        dot.node(
            f"title_{key}",
            label=title,
            shape="plaintext",
            style="solid",
            fontsize=str(LANE_SIZE),
            fontcolor="#455a64",
            pos=_pos(_MARGIN / 2, -(top + height / 2)),
        )
        corners = [(0.0, -top), (width, -top), (width, -(top + height)), (0.0, -(top + height))]
        points = " ".join(f"{x:.1f} {y:.1f}" for x, y in corners)
        return f"C 7 -#f7f7f7 c 7 -#e0e0e0 P 4 {points} "

    def _legend(self, dot: Any, top: float) -> None:
        """What the colours, shapes and arrows mean, so that a newcomer can read the board."""
        kinds = [k for k in _LEGEND if any(e.kind is k for e in self.model.elements.values())]
        rows = [
            f'<tr><td bgcolor="{COLOURS[k]}" width="22" height="12" style="rounded"></td>'
            f'<td align="left">{html.escape(_LEGEND[k])}</td></tr>'
            for k in kinds
        ]
        rows.append(
            '<tr><td>→</td><td align="left">an arrow: what leads to what; '
            "◂ from X: an arrow from another row of the board</td></tr>"
        )
        longest = max(len(_LEGEND[k]) for k in kinds) if kinds else 0
        width = 40 + max(longest, 70) * DETAIL_SIZE * 0.5
        height = len(rows) * (DETAIL_SIZE + 8)
        dot.node(
            "legend",
            label=f'<<table border="0" cellspacing="3" cellpadding="1">{"".join(rows)}</table>>',
            shape="plaintext",
            style="solid",
            fontsize=str(DETAIL_SIZE),
            fontcolor="#37474f",
            pos=_pos(width / 2, -(top + height / 2)),
        )

    def _node_attrs(self, note: _Note) -> dict[str, str]:
        element = note.element
        label = f"<b>{html.escape(element.name)}</b>"
        lines = note.lines(self.fields)
        if lines:
            body = "<br/>".join(html.escape(line) for line in lines)
            label += f'<br/><font point-size="{DETAIL_SIZE}">{body}</font>'
        attrs = {
            "label": f"<{label}>",
            "fillcolor": COLOURS[element.kind],
            "tooltip": element.doc or element.name,
            "margin": "0.08,0.04",
        }
        if element.kind is Kind.AUTOMATION:
            attrs["shape"] = "component"
        return attrs

    @property
    def source(self) -> str:
        """The DOT text (available without Graphviz installed)."""
        return str(self.graph().source)

    # -- rendering --------------------------------------------------------------------------------------

    def pipe(self, fmt: str) -> bytes:
        """The board rendered by ``dot`` in ``fmt`` (svg, png, pdf)."""
        import graphviz

        try:
            return bytes(self.graph().pipe(format=fmt, neato_no_op=2))
        except graphviz.ExecutableNotFound as missing:
            raise GraphvizMissing(_INSTALL_HINT) from missing

    def svg(self) -> str:
        if self._svg is None:
            self._svg = self.pipe("svg").decode("utf-8")
        return self._svg

    def size(self) -> tuple[float, float]:
        """Width and height in points, as drawn at 100%."""
        found = re.search(r'viewBox="[-\d.]+ [-\d.]+ ([\d.]+) ([\d.]+)"', self.svg())
        if found is None:  # pragma: no cover - graphviz always writes a viewBox
            raise InvalidFormat("the rendered board has no viewBox")
        return float(found.group(1)), float(found.group(2))

    def save(self, path: str | Path) -> Path:
        """Write the board to ``path``; the format is the suffix: ``.svg``, ``.png``, ``.pdf`` or ``.dot``."""
        target = Path(path)
        fmt = target.suffix.lower().lstrip(".")
        if fmt == "dot":
            target.write_text(self.source, encoding="utf-8")
        elif fmt in {"svg", "png", "pdf"}:
            target.write_bytes(self.svg().encode() if fmt == "svg" else self.pipe(fmt))
        else:
            raise InvalidFormat(f"cannot save a board as {target.name!r}: use .svg, .png, .pdf or .dot")
        return target

    def html(self) -> str:
        """The board inline, scaled down to the output's width, and a link to it at full size."""
        return fit_svg(self.svg(), css_class="ec-board", full=self.full_size().svg())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        try:
            return {"text/html": self.html(), "image/svg+xml": self.svg(), "text/plain": repr(self)}
        except GraphvizMissing as missing:
            return {
                "text/plain": f"{self!r}\n{missing}",
                "text/html": f"<pre>{html.escape(str(missing))}</pre>",
            }

    def _repr_svg_(self) -> str:
        return self.svg()

    def __repr__(self) -> str:
        return f"<Board of {self.model!r}>"


def fit_svg(svg: str, *, css_class: str, full: str | None = None) -> str:
    """HTML showing ``svg`` no wider than its container (never scaled up), with hover tooltips kept.

    ``full`` (an SVG, by default ``svg`` itself) is offered beneath as a link that opens it at 100% in a
    new tab, for boards and timelines too big to read shrunk.
    """
    body = _inline(svg)
    data = base64.b64encode((full or svg).encode("utf-8")).decode("ascii")
    link = (
        f'<a href="data:image/svg+xml;base64,{data}" download="{css_class.removeprefix("ec-")}.svg" '
        'style="font-size:12px">download at full size (SVG)</a>'
    )
    return f'<div class="{css_class}" style="max-width:100%;overflow:hidden">{body}<div>{link}</div></div>'


def _inline(svg: str) -> str:
    """An SVG document as an element for HTML: no XML prolog, sized by CSS to fit its container."""
    start = svg.find("<svg")
    element = svg[start:] if start >= 0 else svg
    element = re.sub(r"<!--.*?-->", "", element, flags=re.S)
    found = re.search(r'<svg[^>]*?\swidth="([\d.]+)(pt|px)?"', element)
    if found is None:
        return element
    width = float(found.group(1)) * (4 / 3 if found.group(2) == "pt" else 1)
    head_end = element.index(">")
    head = re.sub(r'\s(width|height)="[^"]*"', "", element[:head_end])
    style = f' style="display:block;width:{width:.0f}px;max-width:100%;height:auto"'
    return head + style + element[head_end:]


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, _WRAP, break_long_words=False, break_on_hyphens=False) if text else []


def _pos(x: float, y: float) -> str:
    return f"{x:.1f},{y:.1f}!"


def _inches(points: float) -> str:
    return f"{points / 72:.3f}"


def _node_id(name: str, lane: str) -> str:
    safe = name.replace("\\", "\\\\").replace('"', "'")
    return f"n_{safe}@{lane}" if lane else f"n_{safe}"
