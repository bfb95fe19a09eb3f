"""The picture of a history too long to draw event by event: how many events each stream has along
the log, as a strip of shaded bins per stream, at a fixed width.

A 100,000-event timeline drawn dot by dot was an SVG of 77 MB that took seconds to build and that no
browser shows usefully; this one costs one pass over the events and a few thousand shapes, whatever
the size. x is affine in position, so a slider under the picture lines up with its marker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .timeline import _LEFT, _MARGIN, _RIGHT, FIT_WIDTH, LABEL_SIZE, STREAM_SIZE, TITLE_SIZE, Shape, _clip

#: streams drawn as rows (in the order they first appear); the rest are counted in the "all streams" row
ROWS = 30
BIN = 4.0  # px per bin
_ROW = 22.0  # px between rows
_BAR = 14.0  # px: a bin's height
_SHADE = "#ef6c00"


class Overview:
    """Layout of the density picture of ``events`` (sorted by position, not empty)."""

    def __init__(self, events: Sequence[Any], *, title: str, max_width: float | None) -> None:
        self.events = events
        self.title = title
        self.width = max_width or FIT_WIDTH
        self.first = int(events[0].position)
        self.last = int(events[-1].position)
        right = self.width - _RIGHT - _MARGIN
        # position first - 1 (before the first event) at the left end, the last event at the right end
        self.scale = (right - _LEFT) / max(self.last - self.first + 1, 1)
        self.bins = max(1, int((right - _LEFT) // BIN))
        self.top = (30.0 if title else 8.0) + 44
        self.streams = list(dict.fromkeys(e.stream_id for e in events))
        self.rows = min(len(self.streams), ROWS) + 1  # + the "all streams" row
        self.axis_y = self.top + _ROW * self.rows + 8

    def size(self) -> tuple[float, float]:
        return (self.width, self.axis_y + 40)

    def x(self, position: float) -> float:
        return _LEFT + (position - self.first + 1) * self.scale

    def marker_x(self, position: int) -> float:
        return self.x(position)

    def _bin(self, position: int) -> int:
        span = self.last - self.first + 1
        return min(self.bins - 1, (position - self.first) * self.bins // span)

    def counts(self) -> tuple[list[int], dict[str, list[int]]]:
        """Events per bin over all streams, and per bin for each drawn stream."""
        shown = {s: [0] * self.bins for s in self.streams[:ROWS]}
        total = [0] * self.bins
        for event in self.events:
            k = self._bin(int(event.position))
            total[k] += 1
            row = shown.get(event.stream_id)
            if row is not None:
                row[k] += 1
        return total, shown

    def shapes(self) -> list[Shape]:
        total, shown = self.counts()
        out: list[Shape] = []
        if self.title:
            out.append(Shape("text", 10, 20, text=self.title, size=TITLE_SIZE))
        more = len(self.streams) - min(len(self.streams), ROWS)
        lines = (
            f"{len(self.events):,} events on {len(self.streams):,} streams: events per stretch of the log "
            "(darker: more)"
            + (f"; the first {ROWS} streams, {more:,} more in 'all streams'" if more else ""),
            "Too many to draw one by one: narrow with streams=, start=, end= to see each event.",
        )
        for i, line in enumerate(lines):
            out.append(
                Shape("text", 10, self.top - 30 + 15 * i, text=line, size=LABEL_SIZE, colour="#455a64")
            )
        rows = [("all streams", total), *shown.items()]
        span = self.last - self.first + 1
        for i, (name, counts) in enumerate(rows):
            y = self.top + _ROW * i
            out.append(Shape("text", 10, y + 4, text=_clip(name, 18), size=STREAM_SIZE, tip=name))
            out.append(Shape("line", _LEFT, y, self.width - _RIGHT - _MARGIN, y, colour="#eceff1"))
            most = max(counts)
            for k, count in enumerate(counts):
                if not count:
                    continue
                lo = self.first + k * span // self.bins
                hi = self.first + (k + 1) * span // self.bins - 1
                tip = f"{name}: {count:,} events at positions {lo:,}-{hi:,}"
                out.append(
                    Shape(
                        "bar",
                        self.x(lo - 1),
                        y - _BAR / 2,
                        max(self.x(hi) - self.x(lo - 1), 1.0),
                        _BAR,
                        colour=_SHADE,
                        opacity=0.2 + 0.8 * count / most,
                        tip=tip,
                    )
                )
        out.extend(self._axis())
        return out

    def _axis(self) -> list[Shape]:
        y, right = self.axis_y, self.width - _RIGHT - _MARGIN
        out = [Shape("line", _LEFT - 20, y, right, y, colour="#78909c")]
        ticks = 6
        for k in range(ticks + 1):
            position = self.first - 1 + round((self.last - self.first + 1) * k / ticks)
            x = self.x(position)
            out.append(Shape("line", x, y, x, y + 4, colour="#78909c"))
            out.append(Shape("text", x, y + 17, text=f"{position:,}", x2=1, colour="#455a64"))
        out.append(
            Shape("text", (_LEFT + right) / 2, y + 33, text="position in the log", x2=1, colour="#455a64")
        )
        return out
