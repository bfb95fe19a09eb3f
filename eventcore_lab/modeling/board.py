"""Draw an event model as an Event Modeling board with Graphviz.

Layout: time runs left to right, one column per step of a slice; rows are swimlanes: automations on
top, then commands (blue) and read models (green), then one lane of events (orange) per stream category.
An event written to several categories appears once in each of their lanes.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from ..core.errors import EventCoreError, InvalidFormat
from .model import EventModel, Kind

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
_ROW, _LANE_GAP, _COL_GAP, _MARGIN = 48.0, 16.0, 28.0, 170.0  # points
_STEP = {Kind.AUTOMATION: 0, Kind.COMMAND: 1, Kind.EVENT: 2, Kind.READ_MODEL: 3}
_INSTALL_HINT = (
    "drawing a board needs the `dot` program of Graphviz, which was not found on PATH. Install it: "
    "`apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) or "
    "`conda install -c conda-forge graphviz`; the DOT text is available without it as `board.source`"
)


class GraphvizMissing(EventCoreError):
    """The Graphviz ``dot`` program is not installed, so a board cannot be rendered."""

    code = "EC010"


class Board:
    """A rendered view of an :class:`EventModel`; displays inline in notebooks and saves SVG/PNG/PDF."""

    def __init__(self, model: EventModel, *, title: str | None = None, fields: bool = True) -> None:
        self.model = model
        self.title = model.name if title is None else title
        self.fields = fields
        self._svg: str | None = None

    # -- DOT ------------------------------------------------------------------------------------------

    def graph(self) -> Any:
        """The board as a ``graphviz.Digraph`` with pinned positions (rendered by ``neato -n2``)."""
        import graphviz

        model = self.model
        lanes = [("automation", "automations"), ("main", "commands · read models")]
        lanes += [(f"s_{i}", f"{lane}-*") for i, lane in enumerate(model.lanes)]
        lane_of_category = {lane: f"s_{i}" for i, lane in enumerate(model.lanes)}

        # columns of the grid: one per step (automation, command, events, read models) of each slice
        columns: list[list[tuple[str, str, str]]] = []  # (node id, element name, lane key)
        for piece in model.slices:
            steps: dict[int, list[str]] = {}
            for name in piece.elements:
                steps.setdefault(_STEP[model.elements[name].kind], []).append(name)
            for step in sorted(steps):
                column = []
                for name in steps[step]:
                    element = model.elements[name]
                    if element.kind is Kind.EVENT:
                        for category in element.lanes:
                            key = lane_of_category[category]
                            column.append((_node_id(name, key), name, key))
                    else:
                        key = "automation" if element.kind is Kind.AUTOMATION else "main"
                        column.append((_node_id(name, ""), name, key))
                columns.append(column)

        rows = {key: 1 for key, _ in lanes}  # nodes stacked in a lane within one column
        for column in columns:
            for key, _ in lanes:
                rows[key] = max(rows[key], sum(1 for n in column if n[2] == key))
        lane_top: dict[str, float] = {}
        y = 0.0
        for key, _ in lanes:
            lane_top[key] = y
            y += rows[key] * _ROW + _LANE_GAP
        height = y
        widths = [max(self._width(model.elements[n[1]]) for n in column) for column in columns]
        total_width = _MARGIN + sum(w + _COL_GAP for w in widths)

        dot = graphviz.Digraph(self.title or "board", engine="neato")
        dot.attr(splines="line", outputorder="nodesfirst", fontname="Helvetica", pad="0.2")
        dot.attr(label=self.title, labelloc="t", fontsize="18")
        dot.attr("node", shape="box", style="filled,rounded", fontname="Helvetica", fontsize="11")
        dot.attr("edge", arrowsize="0.7", penwidth="1.2")
        for key, label in lanes:  # lane backgrounds and titles first, so they are drawn beneath
            top = lane_top[key]
            lane_height = rows[key] * _ROW + _LANE_GAP / 2
            centre = _pos(total_width / 2, height - top - lane_height / 2)
            dot.node(
                f"lane_{key}",
                label="",
                shape="box",
                style="filled",
                fillcolor="#f7f7f7",
                color="#e0e0e0",
                fixedsize="true",
                width=_inches(total_width),
                height=_inches(lane_height),
                pos=centre,
            )
            dot.node(
                f"title_{key}",
                label=label,
                shape="plaintext",
                style="solid",
                fontsize="12",
                fontcolor="#546e7a",
                pos=_pos(_MARGIN / 2, height - top - lane_height / 2),
            )
        x = _MARGIN
        placed: dict[str, list[str]] = {}
        for column, width in zip(columns, widths, strict=True):
            used: dict[str, int] = {}
            for node, name, key in column:
                row = used.get(key, 0)
                used[key] = row + 1
                centre_y = height - lane_top[key] - _ROW * row - _ROW / 2
                dot.node(node, pos=_pos(x + width / 2, centre_y), **self._node_attrs(model.elements[name]))
                placed.setdefault(name, []).append(node)
            x += width + _COL_GAP
        for flow in model.flows:
            colour = _EDGE_COLOURS[model.elements[flow.source].kind]
            for tail in placed.get(flow.source, []):
                for head in placed.get(flow.target, []):
                    dot.edge(tail, head, color=colour)
        return dot

    def _width(self, element: Any) -> float:
        text = len(element.name) * 7.2
        if self.fields and element.fields:
            text = max(text, len(", ".join(element.fields)) * 4.6)
        return text + 24

    def _node_attrs(self, element: Any) -> dict[str, str]:
        label = f"<b>{html.escape(element.name)}</b>"
        if self.fields and element.fields:
            label += f'<br/><font point-size="8">{html.escape(", ".join(element.fields))}</font>'
        attrs = {
            "label": f"<{label}>",
            "fillcolor": COLOURS[element.kind],
            "tooltip": element.doc or element.name,
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

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        try:
            return {"image/svg+xml": self.svg(), "text/plain": repr(self)}
        except GraphvizMissing as missing:
            return {
                "text/plain": f"{self!r}\n{missing}",
                "text/html": f"<pre>{html.escape(str(missing))}</pre>",
            }

    def _repr_svg_(self) -> str:
        return self.svg()

    def __repr__(self) -> str:
        return f"<Board of {self.model!r}>"


def _pos(x: float, y: float) -> str:
    return f"{x:.1f},{y:.1f}!"


def _inches(points: float) -> str:
    return f"{points / 72:.3f}"


def _node_id(name: str, lane: str) -> str:
    safe = name.replace("\\", "\\\\").replace('"', "'")
    return f"n_{safe}@{lane}" if lane else f"n_{safe}"
