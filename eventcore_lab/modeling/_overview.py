"""The picture of a history too long to draw event by event: how many events each stream has along
the log, as a strip of shaded bins per stream, at a fixed width.

A 100,000-event timeline drawn dot by dot was an SVG of 77 MB that took seconds to build and that no
browser shows usefully; this one costs one pass over the events and a few thousand shapes, whatever
the size. x is affine in position, so a slider under the picture lines up with its marker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .timeline import _LEFT, _MARGIN, _RIGHT, FIT_WIDTH, LABEL_SIZE, STREAM_SIZE, TITLE_SIZE, Shape, _clip

#: streams drawn as rows (in the order they first appear); the rest are counted in the "all streams" row
ROWS = 30
BIN = 4.0  # px per bin
_ROW = 22.0  # px between rows
_BAR = 14.0  # px: a bin's height
_SHADE = "#ef6c00"


def bins_for(max_width: float | None) -> int:
    """How many bins fit the strip of a picture ``max_width`` px wide."""
    width = max_width or FIT_WIDTH
    return max(1, int((width - _RIGHT - _MARGIN - _LEFT) // BIN))


@dataclass(frozen=True)
class Density:
    """What the picture shows of a log: its first and last positions, how many events and streams, the
    first ``ROWS`` streams in order of first appearance, and events per bin over all streams and for
    each of those streams. Event ``p`` falls in bin ``(p - first) * bins // (last - first + 1)``."""

    first: int
    last: int
    events: int
    stream_count: int
    total: list[int]
    shown: dict[str, list[int]]

    @classmethod
    def of_events(cls, events: Sequence[Any], bins: int) -> Density:
        """Counted in Python over ``events`` (sorted by position, not empty)."""
        first, last = int(events[0].position), int(events[-1].position)
        streams = list(dict.fromkeys(e.stream_id for e in events))
        shown = {s: [0] * bins for s in streams[:ROWS]}
        total = [0] * bins
        span = last - first + 1
        for event in events:
            k = min(bins - 1, (int(event.position) - first) * bins // span)
            total[k] += 1
            row = shown.get(event.stream_id)
            if row is not None:
                row[k] += 1
        return cls(first, last, len(events), len(streams), total, shown)

    @classmethod
    def of_store(cls, store: Any, head: int, bins: int) -> Density | None:
        """Counted by the store's SQL (a :class:`~eventcore_lab.stores.base.SQLAccess` store) over the
        log up to ``head``, without an object per event; None for another store or an empty log."""
        from ..stores.base import SQLAccess

        if not isinstance(store, SQLAccess):
            return None
        upto = "from events where position <= $head"
        # a stream first appears with its first event, version 1 (versions start at 1 and no event is
        # ever deleted): no grouping by stream over the whole log
        firsts = store.sql(
            f"select stream_id, count(*) over () as streams, (select min(position) {upto}) as first, "
            f"(select max(position) {upto}) as last, (select count(*) {upto}) as events {upto} "
            f"and version = 1 order by position limit {ROWS}",
            {"head": head},
        )
        if firsts.empty:
            return None
        streams = firsts["stream_id"].tolist()
        first, last, events, stream_count = (
            int(firsts[c].iloc[0]) for c in ("first", "last", "events", "streams")
        )
        binned = f"least({bins - 1}, (position - {first}) * {bins} // {last - first + 1}) as k"
        counts = store.sql(  # events per bin over all streams (stream_id null), then for each drawn stream
            f"select {binned}, null as stream_id, count(*) {upto} group by k union all "
            f"select {binned}, stream_id, count(*) {upto} and list_contains($streams, stream_id) "
            "group by all",
            {"head": head, "streams": streams},
        )
        total = [0] * bins
        shown = {s: [0] * bins for s in streams}
        for k, stream, n in counts.itertuples(index=False):
            (shown[stream] if isinstance(stream, str) else total)[int(k)] = int(n)
        return cls(first, last, events, stream_count, total, shown)


class Overview:
    """Layout of the density picture of a log."""

    def __init__(self, density: Density, *, title: str, max_width: float | None) -> None:
        self.density = density
        self.title = title
        self.width = max_width or FIT_WIDTH
        self.first = density.first
        self.last = density.last
        right = self.width - _RIGHT - _MARGIN
        # position first - 1 (before the first event) at the left end, the last event at the right end
        self.scale = (right - _LEFT) / max(self.last - self.first + 1, 1)
        self.bins = len(density.total)
        self.top = (30.0 if title else 8.0) + 44
        self.rows = len(density.shown) + 1  # + the "all streams" row
        self.axis_y = self.top + _ROW * self.rows + 8

    def size(self) -> tuple[float, float]:
        return (self.width, self.axis_y + 40)

    def x(self, position: float) -> float:
        return _LEFT + (position - self.first + 1) * self.scale

    def marker_x(self, position: int) -> float:
        return self.x(position)

    def shapes(self) -> list[Shape]:
        density = self.density
        total, shown = density.total, density.shown
        out: list[Shape] = []
        if self.title:
            out.append(Shape("text", 10, 20, text=self.title, size=TITLE_SIZE))
        more = density.stream_count - len(shown)
        lines = (
            f"{density.events:,} events on {density.stream_count:,} streams: events per stretch of the log "
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
