"""Timelines of recorded history: events per stream along position or time, with the commands that
wrote them (one marker per commit, linked to its events) and causation arrows between events.

The picture is computed once as a list of shapes, then written as SVG (no dependency) or drawn with
matplotlib (PNG, PDF).
"""

from __future__ import annotations

import bisect
import copy
import fnmatch
import html
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from ..core.errors import InvalidFormat
from .board import COLOURS
from .checks import COMMAND_KEY, commits_of
from .model import Kind

# x by position, command label levels, event label levels by position, command row y, stream row y, axis y
_Layout = tuple[dict[int, float], list[int], dict[int, int], float, dict[str, float], float]

_LEFT, _STEP, _RIGHT = 150.0, 46.0, 40.0  # px: where the first event sits, between events, after the last
_MIN_STEP = 18.0  # px between events when squeezed to fit: a dot (14 px) and a gap
_MARGIN = 60.0  # px right of the axis, for the last label and the marker's caption
#: the widest a timeline is drawn by default: a JupyterLab output at 1440x900 shows it at 100%
FIT_WIDTH = 980.0
LABEL_SIZE, STREAM_SIZE, TITLE_SIZE = 12.0, 13.0, 15.0  # px at 100%
#: the most events drawn one by one; a longer history is drawn as a density overview (``_overview.py``)
DETAIL_LIMIT = 2_000
_LEVEL = LABEL_SIZE + 3  # px between stacked label levels
_CHAR = LABEL_SIZE * 0.56  # px per character, a generous estimate for sans-serif


def stagger(spans: Sequence[tuple[float, float]], gap: float = 6.0) -> list[int]:
    """A level per label so that labels on one level do not overlap: ``spans`` are (start, end) x
    ranges in drawing order; each label takes the lowest level whose last label ends before it starts.
    """
    ends: list[float] = []
    levels = []
    for start, end in spans:
        level = next((i for i, last in enumerate(ends) if last + gap <= start), len(ends))
        if level == len(ends):
            ends.append(end)
        else:
            ends[level] = end
        levels.append(level)
    return levels


@dataclass(frozen=True)
class Shape:
    """One drawing instruction, in SVG coordinates (y grows downwards)."""

    kind: str  # circle, line, text, rect, bar (x2, y2: width, height)
    x: float
    y: float
    x2: float = 0.0
    y2: float = 0.0
    colour: str = "#000"
    text: str = ""
    dashed: bool = False
    size: float = LABEL_SIZE
    halo: bool = False  # a white outline, so that a line passing behind a label does not hide it
    tip: str = ""  # hover text
    opacity: float = 1.0


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
        max_width: float | None = FIT_WIDTH,
        detail_limit: int | None = DETAIL_LIMIT,
    ) -> None:
        if axis not in ("position", "time"):
            raise InvalidFormat(f"a timeline's axis is 'position' or 'time', got {axis!r}")
        self.axis = axis
        self.title = title
        self.marker = marker
        self.max_width = max_width
        self.detail_limit = detail_limit
        # the events, layout and SVG body, which the marker does not change: shared with the with_marker
        # copies
        self._memo: dict[Any, Any] = {"events": sorted(events, key=_position)}

    @classmethod
    def _of_density(
        cls, density: Any, read: Callable[[], Iterable[Any]], *, title: str, max_width: float | None
    ) -> Timeline:
        """The overview of a log counted by its store (a ``_overview.Density``), without an object
        per event; ``read`` reads its events for whatever needs them one by one."""
        from ._overview import Overview

        line = cls([], title=title, max_width=max_width)
        line._memo = {"read": read, "overview": Overview(density, title=title, max_width=max_width)}
        return line

    @property
    def events(self) -> list[Any]:
        """The events, in position order (an overview counted by its store reads them on first use)."""
        if "events" not in self._memo:
            self._memo["events"] = sorted(self._memo["read"](), key=_position)
        events: list[Any] = self._memo["events"]
        return events

    @property
    def overview(self) -> Any:
        """The density picture drawn instead of every event when there are more than ``detail_limit``
        events (position axis only; ``None`` when every event is drawn)."""
        if "overview" not in self._memo:
            from ._overview import Density, Overview, bins_for

            events = self.events
            dense = self.detail_limit is not None and len(events) > self.detail_limit
            self._memo["overview"] = (
                Overview(
                    Density.of_events(events, bins_for(self.max_width)),
                    title=self.title,
                    max_width=self.max_width,
                )
                if dense and self.axis == "position"
                else None
            )
        return self._memo["overview"]

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
        marked = copy.copy(self)  # the same (sorted) events and memo: nothing to sort or lay out again
        marked.marker = position
        return marked

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

    @property
    def step(self) -> float:
        """px between neighbouring events: the usual spacing, squeezed (down to a dot and a gap) so that
        the picture is no wider than ``max_width`` and shows at 100% instead of being scaled down with
        its text; labels that then collide are stacked on more levels (the rows grow, not the width).
        Past the minimum spacing the picture grows wider than ``max_width``."""
        gaps = len(self.events) - 1
        if self.max_width is None or gaps < 1:
            return _STEP
        room = self.max_width - _LEFT - _RIGHT - _MARGIN
        return max(_MIN_STEP, min(_STEP, room / gaps))

    def _x(self) -> dict[int, float]:
        """x of each event by position: evenly spaced by position, or proportional to recorded time."""
        if not self.events:
            return {}
        step = self.step
        if self.axis == "position":
            return {e.position: _LEFT + step * i for i, e in enumerate(self.events)}
        first = self.events[0].recorded_at
        span = max((self.events[-1].recorded_at - first).total_seconds(), 1e-9)
        width = step * max(len(self.events) - 1, 1)
        return {
            e.position: _LEFT + width * (e.recorded_at - first).total_seconds() / span for e in self.events
        }

    def _layout(self) -> _Layout:
        """x by position; label levels of commands and of events; y of the command row, of each stream
        row and of the axis. Rows grow to fit their stacked labels. Computed once per timeline (and
        shared with its marked copies): every event is visited a fixed number of times, not once per
        stream, which made 100,000 events over 1,000 streams take minutes."""
        laid_out: _Layout | None = self._memo.get("layout")
        if laid_out is not None:
            return laid_out
        xs = self._x()
        commits = self.commits()
        centres = [sum(xs[e.position] for e in c.events) / len(c.events) for c in commits]
        named = [(c, x) for c, x in zip(commits, centres, strict=True) if c.label != "commit"]
        command_levels = stagger([(x - _half(c.label), x + _half(c.label)) for c, x in named])
        by_stream: dict[str, list[Any]] = {}
        for e in self.events:
            by_stream.setdefault(e.stream_id, []).append(e)
        event_levels: dict[int, int] = {}
        depths: dict[str, int] = {}
        for stream_id, mine in by_stream.items():
            spans = [(xs[e.position] - _half(_name(e)), xs[e.position] + _half(_name(e))) for e in mine]
            levels = stagger(spans)
            event_levels.update(zip((e.position for e in mine), levels, strict=True))
            depths[stream_id] = max(levels, default=0)
        top = 30.0 if self.title else 8.0
        command_y = top + 16 + _LEVEL * (max(command_levels, default=-1) + 1)
        rows: dict[str, float] = {}
        y = command_y + 12
        for stream_id, depth in depths.items():
            y += 20 + _LEVEL * (depth + 1)
            rows[stream_id] = y
        laid_out = (xs, command_levels, event_levels, command_y, rows, y + 26)
        self._memo["layout"] = laid_out
        return laid_out

    def size(self) -> tuple[float, float]:
        if self.overview is not None:
            return self.overview.size()
        xs, *_, axis_y = self._layout()
        return (max(xs.values(), default=_LEFT) + _RIGHT + _MARGIN, axis_y + 40)

    def marker_x(self, position: int) -> float:
        """Where the marker of ``position`` is drawn: halfway between the last event at or before it
        and the next one (what a slider under the picture lines up with)."""
        if self.overview is not None:
            return float(self.overview.marker_x(position))
        xs = self._layout()[0]
        if self.axis == "position":  # x grows with position: the last event at or before it
            count = bisect.bisect_right(self.events, position, key=_position)
            before = [xs[self.events[count - 1].position]] if count else []
        else:
            before = [xs[e.position] for e in self.events if e.position <= position]
        half = self.step / 2
        return (max(before) + half) if before else _LEFT - half

    def _unmarked_shapes(self) -> list[Shape]:
        if self.overview is not None:
            return self.overview.shapes()
        xs, command_levels, event_levels, command_y, row, axis_y = self._layout()
        width, _ = self.size()
        out: list[Shape] = []
        if self.title:
            out.append(Shape("text", 10, 20, text=self.title, size=TITLE_SIZE))
        out.append(Shape("text", 10, command_y + 4, text="commands", colour="#1565c0", size=STREAM_SIZE))
        for stream_id, y in row.items():
            out.append(Shape("line", _LEFT - 20, y, width - _RIGHT, y, colour="#cfd8dc"))
            out.append(Shape("text", 10, y + 4, text=_clip(stream_id, 18), size=STREAM_SIZE, tip=stream_id))
        at = {e.event_id: e for e in self.events}
        previous_by_correlation: dict[str, float] = {}
        labels: list[Shape] = []  # drawn last, over every line
        named = 0
        for commit in self.commits():
            cx = sum(xs[e.position] for e in commit.events) / len(commit.events)
            for event in commit.events:
                out.append(
                    Shape("line", cx, command_y, xs[event.position], row[event.stream_id], colour="#bbdefb")
                )
            earlier = previous_by_correlation.get(commit.correlation_id)
            if earlier is not None:  # same request, several commands: link them
                out.append(
                    Shape(
                        "line", earlier, command_y, cx, command_y, colour=COLOURS[Kind.COMMAND], dashed=True
                    )
                )
            previous_by_correlation[commit.correlation_id] = cx
            wrote = ", ".join(f"{e.event_type} to {e.stream_id}" for e in commit.events)
            tip = f"{commit.label}: wrote {wrote}"
            out.append(Shape("rect", cx, command_y, colour=COLOURS[Kind.COMMAND], text=commit.label, tip=tip))
            if commit.label != "commit":
                y = command_y - 11 - _LEVEL * command_levels[named]
                named += 1
                labels.append(
                    Shape("text", cx, y, text=commit.label, x2=1, colour="#1565c0", halo=True, tip=tip)
                )
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
            tip = _tooltip(event)
            out.append(Shape("circle", x, y, colour=COLOURS[Kind.EVENT], text=tip, tip=tip))
            level = event_levels[event.position]
            label_y = y - 12 - _LEVEL * level
            if level:  # a stacked label: a leader down to its dot
                out.append(Shape("line", x, label_y + 3, x, y - 7, colour="#cfd8dc"))
            labels.append(Shape("text", x, label_y, text=_name(event), x2=1, halo=True, tip=tip))
        out.extend(self._axis(xs, axis_y, width))
        out.extend(labels)
        return out

    def shapes(self) -> list[Shape]:
        return self._unmarked_shapes() + self._marker_shapes()

    def _marker_shapes(self) -> list[Shape]:
        """The marker's line and label, drawn over everything else."""
        if self.marker is None:
            return []
        if self.overview is not None:
            command_y, axis_y = self.overview.top - 8, self.overview.axis_y
        elif not self.events:
            return []
        else:
            _, _, _, command_y, _, axis_y = self._layout()
        mx = self.marker_x(self.marker)
        return [
            Shape("line", mx, command_y - 8, mx, axis_y, colour="#e53935"),
            Shape("text", mx + 4, axis_y - 4, text=f"position {self.marker}", colour="#e53935", halo=True),
        ]

    def _axis(self, xs: dict[int, float], y: float, width: float) -> list[Shape]:
        """A position or time axis under the rows, with ticks labelled where there is room."""
        if not self.events:
            return []
        out = [Shape("line", _LEFT - 20, y, width - _RIGHT, y, colour="#78909c")]
        if self.axis == "position":
            every = max(1, int(-(-(_CHAR * 5) // self.step)))  # room for a 4-digit label
            ticks = [(xs[e.position], str(e.position)) for i, e in enumerate(self.events) if i % every == 0]
            caption = "position in the log"
        else:
            first, last = self.events[0].recorded_at, self.events[-1].recorded_at
            span = (last - first).total_seconds()
            fmt = "%H:%M:%S.%f" if span < 10 else "%H:%M:%S" if first.date() == last.date() else "%m-%d %H:%M"
            count = max(2, min(8, int((max(xs.values()) - _LEFT) // 90) + 1))
            lo, hi = _LEFT, max(xs.values())
            ticks = [
                (lo + (hi - lo) * k / (count - 1), _clock(first + (last - first) * k / (count - 1), fmt))
                for k in range(count)
            ]
            caption = f"recorded at ({first.tzname() or 'local time'})"
        for x, text in ticks:
            out.append(Shape("line", x, y, x, y + 4, colour="#78909c"))
            out.append(Shape("text", x, y + 17, text=text, x2=1, colour="#455a64"))
        out.append(Shape("text", (_LEFT + width - _RIGHT) / 2, y + 33, text=caption, x2=1, colour="#455a64"))
        return out

    # -- output -----------------------------------------------------------------------------------------

    def svg(self, *, attributes: str = "") -> str:
        """The picture as SVG text; ``attributes`` are added to the ``<svg>`` element (a style, say)."""
        body: str | None = self._memo.get(("svg", attributes))
        if body is None:  # everything but the marker, rendered once (a slider move only adds the marker)
            width, height = self.size()
            parts = [
                f'<svg {attributes + " " if attributes else ""}xmlns="http://www.w3.org/2000/svg" '
                f'width="{width:.0f}" height="{height:.0f}" '
                f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif">',
                '<rect width="100%" height="100%" fill="white"/>',
            ]
            parts.extend(_svg_element(s) for s in self._unmarked_shapes())
            body = self._memo[("svg", attributes)] = "\n".join(parts)
        return "\n".join([body, *(_svg_element(s) for s in self._marker_shapes()), "</svg>"])

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
            elif s.kind == "bar":
                ax.add_patch(Rectangle((s.x, s.y), s.x2, s.y2, facecolor=s.colour, alpha=s.opacity, lw=0))
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

    def html(self) -> str:
        """The timeline inline, scaled down to the output's width when wider, hover details kept."""
        from .board import fit_svg

        return fit_svg(self.svg(), css_class="ec-timeline")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"text/html": self.html(), "image/svg+xml": self.svg(), "text/plain": repr(self)}

    def _repr_svg_(self) -> str:
        return self.svg()

    def __repr__(self) -> str:
        if self.overview is not None:
            density = self.overview.density
            return f"<Timeline of {density.events} events on {density.stream_count} streams>"
        return f"<Timeline of {len(self.events)} events on {len(self.streams)} streams>"


def timeline(
    source: Any,
    *,
    streams: Iterable[str] | str | None = None,
    query: Any = None,
    start: int | datetime | None = None,
    end: int | datetime | None = None,
    axis: str = "position",
    title: str = "",
    max_width: float | None = FIT_WIDTH,
    detail_limit: int | None = DETAIL_LIMIT,
) -> Timeline:
    """A timeline of a store (or of stored events), optionally narrowed to some streams and a window.

    ``streams`` takes stream ids or shell patterns (``"account-*"``); ``query`` (a
    :class:`~eventcore_lab.core.query.Query`) keeps the events it matches by type and tag, i.e. what a
    query-based command decided on, whatever streams they are in. ``start``/``end`` are inclusive
    bounds, either global positions (int) or times (datetime, compared with ``recorded_at``).
    ``max_width`` (px) is how wide the picture may be before its events are drawn closer together;
    ``None`` keeps the usual spacing whatever the width. Past ``detail_limit`` events (on the position
    axis) the picture is a density overview per stream instead of one dot per event (``None``: always
    every event). The overview of a whole store that counts its log in SQL (DuckDB) is drawn from those
    counts, without reading every event.
    """
    prefix = end is None or (isinstance(end, int) and not isinstance(end, bool))
    whole = streams is None and query is None and start is None and prefix
    if whole and axis == "position" and detail_limit is not None and hasattr(source, "head"):
        head = source.head() if end is None else min(source.head(), cast(int, end))
        counted = _counted(source, head, title=title, max_width=max_width, detail_limit=detail_limit)
        if counted is not None:
            return counted
    events = list(source.read_all() if hasattr(source, "read_all") else source)
    if streams is not None:
        patterns = [streams] if isinstance(streams, str) else list(streams)
        if not patterns:
            raise InvalidFormat("timeline(streams=...) got an empty selection; pass None for every stream")
        events = [e for e in events if any(fnmatch.fnmatchcase(e.stream_id, p) for p in patterns)]
    if query is not None:
        from ..core.query import Query

        if not isinstance(query, Query):
            raise InvalidFormat(f"timeline(query=...) takes a Query, got {query!r}")
        events = [e for e in events if query.matches(e.event_type, getattr(e, "tags", ()))]
    for bound, keep in ((start, lambda v, b: v >= b), (end, lambda v, b: v <= b)):
        if bound is None:
            continue
        if isinstance(bound, datetime):
            events = [e for e in events if keep(e.recorded_at, bound)]
        elif isinstance(bound, int) and not isinstance(bound, bool):
            events = [e for e in events if keep(e.position, bound)]
        else:
            raise InvalidFormat(f"timeline start/end must be a position (int) or a datetime, got {bound!r}")
    return Timeline(events, axis=axis, title=title, max_width=max_width, detail_limit=detail_limit)


def _counted(
    store: Any, head: int, *, title: str, max_width: float | None, detail_limit: int
) -> Timeline | None:
    """The overview of ``store``'s log up to ``head``, counted by the store; None when the store cannot
    count it or when its events are few enough to be drawn one by one."""
    from ._overview import Density, bins_for

    if head <= detail_limit:  # positions start at 1: no more events than the head
        return None
    density = Density.of_store(store, head, bins_for(max_width))
    if density is None or density.events <= detail_limit:
        return None

    def read() -> list[Any]:
        return [e for e in store.read_all(limit=head) if e.position <= head]

    return Timeline._of_density(density, read, title=title, max_width=max_width)


def _clock(when: datetime, fmt: str) -> str:
    text = when.strftime(fmt)
    return text[:-3] if fmt.endswith("%f") else text  # milliseconds, not microseconds


def _name(event: Any) -> str:
    """An event's label: its type without the namespace (the row says where it is; the hover text
    gives the full name)."""
    return str(event.event_type).rsplit(".", 1)[-1]


def _svg_element(s: Shape) -> str:
    if s.kind == "line":
        dash = ' stroke-dasharray="4 3"' if s.dashed else ""
        return (
            f'<line x1="{s.x:.1f}" y1="{s.y:.1f}" x2="{s.x2:.1f}" y2="{s.y2:.1f}" stroke="{s.colour}"{dash}/>'
        )
    if s.kind == "circle":
        return (
            f'<circle cx="{s.x:.1f}" cy="{s.y:.1f}" r="7" fill="{s.colour}" stroke="#e65100">'
            f"<title>{html.escape(s.tip or s.text)}</title></circle>"
        )
    if s.kind == "bar":
        return (
            f'<rect x="{s.x:.1f}" y="{s.y:.1f}" width="{s.x2:.1f}" height="{s.y2:.1f}" fill="{s.colour}" '
            f'fill-opacity="{s.opacity:.2f}"><title>{html.escape(s.tip)}</title></rect>'
        )
    if s.kind == "rect":
        return (
            f'<rect x="{s.x - 6:.1f}" y="{s.y - 6:.1f}" width="12" height="12" rx="2" fill="{s.colour}">'
            f"<title>{html.escape(s.tip or s.text)}</title></rect>"
        )
    anchor = ' text-anchor="middle"' if s.x2 else ""
    halo = ' stroke="white" stroke-width="3" paint-order="stroke"' if s.halo else ""
    tip = f"<title>{html.escape(s.tip)}</title>" if s.tip else ""
    return (
        f'<text x="{s.x:.1f}" y="{s.y:.1f}" font-size="{s.size:g}" fill="{s.colour}"'
        f"{anchor}{halo}>{tip}{html.escape(s.text)}</text>"
    )


def _position(event: Any) -> int:
    return int(event.position)


def _half(label: str) -> float:
    return len(label) * _CHAR / 2


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _as_uuid(value: str | None) -> Any:
    import uuid

    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _tooltip(event: Any) -> str:
    when = f"{event.recorded_at:%Y-%m-%d %H:%M:%S}"
    tags = getattr(event, "tags", ())
    tagged = f"\ntags: {', '.join(tags)}" if tags else ""
    return (
        f"{event.event_type} on {event.stream_id} (version {event.version}, position {event.position}, "
        f"{when}){tagged}\n{event.payload!r}"
    )
