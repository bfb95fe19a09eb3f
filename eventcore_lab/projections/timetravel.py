"""Time travel: a projection's state as of a position or a time, and what changed between two points.

Nothing here is special machinery: the state at position ``p`` *is* the fold of events ``1..p``. These
helpers only make the fold bounded, batched and comparable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from ..core.errors import InvalidFormat, ProjectionError
from ..stores.base import EventStore
from .base import fold
from .frames import iter_events

Point = int | datetime


def _new(factory: Callable[[], Any]) -> Any:
    if not callable(factory):
        raise InvalidFormat(
            f"time travel needs a projection class or factory (something that builds an empty projection), "
            f"got {factory!r}"
        )
    return factory()


def _advance(store: EventStore, projection: Any, after: int, until: Point, progress: bool | None) -> int:
    """Fold the events after ``after`` up to ``until`` into ``projection``; return the last position."""
    position = after
    for batch in iter_events(store, after=after, until=until, progress=progress, description="time travel"):
        fold(projection, batch)
        position = batch[-1].position
    return position


def state_at(
    store: EventStore, factory: Callable[[], Any], at: Point, *, progress: bool | None = None
) -> Any:
    """A new projection from ``factory`` holding the state as of ``at``.

    ``at`` is a position (events ``1..at``) or an aware datetime (every event up to the first one
    recorded after it).
    """
    projection = _new(factory)
    _advance(store, projection, 0, at, progress)
    return projection


@dataclass(frozen=True)
class FrameDiff:
    """What changed in a read model table: rows added, rows removed, and changed cells (long format)."""

    added: pd.DataFrame
    removed: pd.DataFrame
    changed: pd.DataFrame  # columns: key, column, before, after

    @property
    def empty(self) -> bool:
        return self.added.empty and self.removed.empty and self.changed.empty

    def summary(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "changed_rows": self.changed["key"].nunique() if len(self.changed) else 0,
            "changed_cells": len(self.changed),
        }


def _differs(before: pd.Series, after: pd.Series) -> pd.Series:
    both_missing = before.isna() & after.isna()
    try:
        return (before != after) & ~both_missing
    except (TypeError, ValueError):  # unorderable or list-valued cells: compare one by one
        values = [not (b is a or b == a) for b, a in zip(before, after, strict=True)]
        return pd.Series(values, index=before.index) & ~both_missing


def diff_frames(before: pd.DataFrame, after: pd.DataFrame) -> FrameDiff:
    """Compare two versions of a read model table row by row (rows matched by index)."""
    for label, frame in (("before", before), ("after", after)):
        if not frame.index.is_unique:
            raise ProjectionError(f"cannot diff: the {label} frame's index has duplicate keys")
    added = after[~after.index.isin(before.index)]
    removed = before[~before.index.isin(after.index)]
    common = after.index[after.index.isin(before.index)]
    columns = list(dict.fromkeys([*before.columns, *after.columns]))
    old = before.reindex(index=common, columns=columns)
    new = after.reindex(index=common, columns=columns)
    parts = []
    for column in columns:
        mask = _differs(old[column], new[column]).to_numpy(dtype=bool)
        if mask.any():
            parts.append(
                pd.DataFrame(
                    {
                        "key": common[mask],
                        "column": column,
                        "before": old[column].to_numpy(dtype=object)[mask],
                        "after": new[column].to_numpy(dtype=object)[mask],
                    }
                )
            )
    if parts:
        changed = pd.concat(parts, ignore_index=True).sort_values(["key", "column"], kind="stable")
        changed = changed.reset_index(drop=True)
    else:
        changed = pd.DataFrame({"key": [], "column": [], "before": [], "after": []})
    return FrameDiff(added=added, removed=removed, changed=changed)


def _view_of(table: str | None, view: Callable[[Any], pd.DataFrame] | None) -> Callable[[Any], pd.DataFrame]:
    if view is not None:
        return view
    return lambda projection: projection.to_frame(table)


def diff_between(
    store: EventStore,
    factory: Callable[[], Any],
    start: Point,
    end: Point,
    *,
    table: str | None = None,
    view: Callable[[Any], pd.DataFrame] | None = None,
    progress: bool | None = None,
) -> FrameDiff:
    """How a read model changed from ``start`` to ``end`` (positions or times), in one pass over the log.

    The read model is ``projection.to_frame(table)``, or ``view(projection)`` for any other projection.
    """
    if isinstance(start, int) and isinstance(end, int) and end < start:
        raise InvalidFormat(f"diff_between needs start <= end, got {start} and {end}")
    if isinstance(start, datetime) and isinstance(end, datetime) and end < start:
        raise InvalidFormat(f"diff_between needs start <= end, got {start} and {end}")
    as_frame = _view_of(table, view)
    projection = _new(factory)
    position = _advance(store, projection, 0, start, progress)
    before = as_frame(projection).copy()
    _advance(store, projection, position, end, progress)
    return diff_frames(before, as_frame(projection))
