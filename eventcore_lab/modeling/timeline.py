"""Timelines of recorded history: events per stream along position or time, with the commands that
wrote them (one marker per commit, linked to its events) and causation arrows between events.

The picture is computed once as a list of shapes, then written as SVG (no dependency) or drawn with
matplotlib (PNG, PDF).
"""

from __future__ import annotations

import fnmatch
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core.errors import InvalidFormat
from .board import COLOURS
from .checks import COMMAND_KEY, commits_of
from .model import Kind

_LEFT, _TOP, _ROW, _STEP, _RIGHT = 150.0, 56.0, 34.0, 46.0, 30.0


@dataclass(frozen=True)
class Shape:
    """One drawing instruction, in SVG coordinates (y grows downwards)."""

    kind: str  # circle, line, text, rect
    x: float
    y: float
    x2: float = 0.0
    y2: float = 0.0
    colour: str = "#000"
    text: str = ""
    dashed: bool = False
    size: float = 10.0


@dataclass(frozen=True)
class Commit:
    """Events one command wrote in one atomic append (consecutive positions, one correlation id)."""

    label: str
    correlation_id: str
    causation_id: str | None
    events: tuple[Any, ...]


class Timeline:
    """Recorded events laid out per stream; displays inline and saves SVG/PNG."""

    def __init__(
        self,
        events: Sequence[Any],
        *,
        axis: str = "position",
        title: str = "",
        marker: int | None = None,
    ) -> None:
        if axis not in ("position", "time"):
            raise InvalidFormat(f"a timeline's axis is 'position' or 'time', got {axis!r}")
        self.events = sorted(events, key=lambda e: e.position)
        self.axis = axis
        self.title = title
        self.marker = marker

    @property
    def streams(self) -> list[str]:
        """Stream ids, one row each, in the order they first appear."""
        return list(dict.fromkeys(e.stream_id for e in self.events))

    def commits(self) -> list[Commit]:
        groups = commits_of(self.events)
        return [
            Commit(
                str((g[0].metadata.custom or {}).get(COMMAND_KEY) or "commit"),
                g[0].metadata.correlation_id,
                g[0].metadata.causation_id,
                tuple(g),
            )
            for g in groups
        ]

    def with_marker(self, position: int | None) -> Timeline:
        """The same timeline with a vertical line at ``position`` (what a slider shows)."""
        return Timeline(self.events, axis=self.axis, title=self.title, marker=position)

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "position": e.position,
                    "recorded_at": e.recorded_at,
                    "stream_id": e.stream_id,
                    "version": e.version,
                    "event_type": e.event_type,
                    "correlation_id": e.metadata.correlation_id,
                    "causation_id": e.metadata.causation_id,
                }
                for e in self.events
            ]
        )

    # -- geometry -------------------------------------------------------------------------------------

    def _x(self) -> dict[int, float]:
        """x of each event by position: evenly spaced by position, or proportional to recorded time."""
        if not self.events:
            return {}
        if self.axis == "position":
            return {e.position: _LEFT + _STEP * i for i, e in enumerate(self.events)}
        first = self.events[0].recorded_at
        span = max((self.events[-1].recorded_at - first).total_seconds(), 1e-9)
        width = _STEP * max(len(self.events) - 1, 1)
        return {
            e.position: _LEFT + width * (e.recorded_at - first).total_seconds() / span for e in self.events
        }

    def size(self) -> tuple[float, float]:
        xs = self._x().values()
        return (max(xs, default=_LEFT) + _RIGHT + 60, _TOP + _ROW * (len(self.streams) + 1) + 20)

    def shapes(self) -> list[Shape]:
        xs = self._x()
        row = {s: _TOP + _ROW * (i + 1) for i, s in enumerate(self.streams)}
        width, height = self.size()
        out: list[Shape] = []
        if self.title:
            out.append(Shape("text", 10, 18, text=self.title, size=14))
        out.append(Shape("text", 10, _TOP + 4, text="commands", colour=COLOURS[Kind.COMMAND], size=11))
        for stream_id, y in row.items():
            out.append(Shape("line", _LEFT - 20, y, width - _RIGHT, y, colour="#cfd8dc"))
            out.append(Shape("text", 10, y + 4, text=stream_id, size=11))
        at = {e.event_id: e for e in self.events}
        previous_by_correlation: dict[str, float] = {}
        for commit in self.commits():
            cx = sum(xs[e.position] for e in commit.events) / len(commit.events)
            for event in commit.events:
                out.append(
                    Shape("line", cx, _TOP, xs[event.position], row[event.stream_id], colour="#90caf9")
                )
            earlier = previous_by_correlation.get(commit.correlation_id)
            if earlier is not None:  # same request, several commands: link them
                out.append(Shape("line", earlier, _TOP, cx, _TOP, colour=COLOURS[Kind.COMMAND], dashed=True))
            previous_by_correlation[commit.correlation_id] = cx
            out.append(Shape("rect", cx, _TOP, colour=COLOURS[Kind.COMMAND], text=commit.label))
            if commit.label != "commit":
                out.append(Shape("text", cx, _TOP - 10, text=commit.label, size=8, x2=1, colour="#1565c0"))
        for event in self.events:  # causation: the event that caused another one
            cause = at.get(_as_uuid(event.metadata.causation_id))
            if cause is not None:
                out.append(
                    Shape(
                        "line",
                        xs[cause.position],
                        row[cause.stream_id],
                        xs[event.position],
                        row[event.stream_id],
                        colour="#8d6e63",
                        dashed=True,
                    )
                )
        for event in self.events:
            x, y = xs[event.position], row[event.stream_id]
            out.append(Shape("circle", x, y, colour=COLOURS[Kind.EVENT], text=_tooltip(event)))
            out.append(Shape("text", x, y - 11, text=event.event_type, size=8, x2=1))
        if self.marker is not None and self.events:
            before = [xs[e.position] for e in self.events if e.position <= self.marker]
            mx = (max(before) + _STEP / 2) if before else _LEFT - _STEP / 2
            out.append(Shape("line", mx, _TOP - 16, mx, height - 10, colour="#e53935"))
            out.append(
                Shape("text", mx + 3, _TOP - 20, text=f"position {self.marker}", colour="#e53935", size=9)
            )
        return out

    # -- output -----------------------------------------------------------------------------------------

    def svg(self) -> str:
        width, height = self.size()
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif">',
            '<rect width="100%" height="100%" fill="white"/>',
        ]
        for s in self.shapes():
            if s.kind == "line":
                dash = ' stroke-dasharray="4 3"' if s.dashed else ""
                parts.append(
                    f'<line x1="{s.x:.1f}" y1="{s.y:.1f}" x2="{s.x2:.1f}" y2="{s.y2:.1f}" '
                    f'stroke="{s.colour}"{dash}/>'
                )
            elif s.kind == "circle":
                parts.append(
                    f'<circle cx="{s.x:.1f}" cy="{s.y:.1f}" r="7" fill="{s.colour}" stroke="#e65100">'
                    f"<title>{html.escape(s.text)}</title></circle>"
                )
            elif s.kind == "rect":
                parts.append(
                    f'<rect x="{s.x - 6:.1f}" y="{s.y - 6:.1f}" width="12" height="12" rx="2" '
                    f'fill="{s.colour}">'
                    f"<title>{html.escape(s.text)}</title></rect>"
                )
            else:
                anchor = ' text-anchor="middle"' if s.x2 else ""
                parts.append(
                    f'<text x="{s.x:.1f}" y="{s.y:.1f}" font-size="{s.size:g}" fill="{s.colour}"{anchor}>'
                    f"{html.escape(s.text)}</text>"
                )
        parts.append("</svg>")
        return "\n".join(parts)

    def figure(self) -> Any:
        """The timeline as a matplotlib Figure (for PNG/PDF, or to add to)."""
        from matplotlib.figure import Figure
        from matplotlib.patches import Circle, Rectangle

        width, height = self.size()
        fig = Figure(figsize=(width / 72, height / 72), dpi=100)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.axis("off")
        for s in self.shapes():
            if s.kind == "line":
                ax.plot([s.x, s.x2], [s.y, s.y2], color=s.colour, linestyle="--" if s.dashed else "-", lw=1)
            elif s.kind == "circle":
                ax.add_patch(Circle((s.x, s.y), 7, facecolor=s.colour, edgecolor="#e65100", zorder=3))
            elif s.kind == "rect":
                ax.add_patch(Rectangle((s.x - 6, s.y - 6), 12, 12, facecolor=s.colour, zorder=3))
            else:
                ax.text(
                    s.x, s.y, s.text, fontsize=s.size * 0.75, color=s.colour, ha="center" if s.x2 else "left"
                )
        return fig

    def save(self, path: str | Path) -> Path:
        """Write ``.svg`` (built in) or ``.png``/``.pdf`` (with matplotlib)."""
        target = Path(path)
        fmt = target.suffix.lower().lstrip(".")
        if fmt == "svg":
            target.write_text(self.svg(), encoding="utf-8")
        elif fmt in ("png", "pdf"):
            self.figure().savefig(target, format=fmt)
        else:
            raise InvalidFormat(f"cannot save a timeline as {target.name!r}: use .svg, .png or .pdf")
        return target

    def _repr_svg_(self) -> str:
        return self.svg()

    def __repr__(self) -> str:
        return f"<Timeline of {len(self.events)} events on {len(self.streams)} streams>"


def timeline(
    source: Any,
    *,
    streams: Iterable[str] | str | None = None,
    start: int | datetime | None = None,
    end: int | datetime | None = None,
    axis: str = "position",
    title: str = "",
) -> Timeline:
    """A timeline of a store (or of stored events), optionally narrowed to some streams and a window.

    ``streams`` takes stream ids or shell patterns (``"account-*"``). ``start``/``end`` are inclusive
    bounds, either global positions (int) or times (datetime, compared with ``recorded_at``).
    """
    events = list(source.read_all() if hasattr(source, "read_all") else source)
    if streams is not None:
        patterns = [streams] if isinstance(streams, str) else list(streams)
        if not patterns:
            raise InvalidFormat("timeline(streams=...) got an empty selection; pass None for every stream")
        events = [e for e in events if any(fnmatch.fnmatchcase(e.stream_id, p) for p in patterns)]
    for bound, keep in ((start, lambda v, b: v >= b), (end, lambda v, b: v <= b)):
        if bound is None:
            continue
        if isinstance(bound, datetime):
            events = [e for e in events if keep(e.recorded_at, bound)]
        elif isinstance(bound, int) and not isinstance(bound, bool):
            events = [e for e in events if keep(e.position, bound)]
        else:
            raise InvalidFormat(f"timeline start/end must be a position (int) or a datetime, got {bound!r}")
    return Timeline(events, axis=axis, title=title)


def _as_uuid(value: str | None) -> Any:
    import uuid

    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _tooltip(event: Any) -> str:
    return f"{event.stream_id} v{event.version} @ {event.position}: {event.event_type} {event.payload!r}"
