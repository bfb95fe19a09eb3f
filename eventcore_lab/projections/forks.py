"""Forks: a "what if" branch of history in memory, to run other commands on and compare read models.

A fork copies the log up to a point into a new :class:`MemoryStore` with ``import_events`` (same event
ids, versions, metadata and timestamps) and only ever *reads* the original. Positions in the fork are
assigned 1, 2, 3, ... in order: on a gap-free store (memory, DuckDB) they equal the original positions;
PostgreSQL positions may have gaps, so a fork keeps the mapping and event ids are the safe way to match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..core.errors import InvalidFormat
from ..core.events import StoredEvent
from ..core.executor import Executor
from ..stores.base import EventStore
from ..stores.memory import MemoryStore
from .base import fold
from .frames import iter_events
from .timetravel import FrameDiff, Point, diff_frames


@dataclass
class Fork:
    """A branch of a store's history. Run commands on ``fork.store`` (or ``fork.executor()``)."""

    store: MemoryStore
    source: Any
    #: The original position of each copied event: ``original_positions[i]`` is fork position ``i + 1``.
    original_positions: list[int] = field(default_factory=list)

    @property
    def base(self) -> int:
        """The fork position of the last copied event; later positions are the branch's own events."""
        return len(self.original_positions)

    def original_position(self, fork_position: int) -> int | None:
        """The original position of a copied event, None for an event written on the branch."""
        if 1 <= fork_position <= self.base:
            return self.original_positions[fork_position - 1]
        return None

    def executor(self, **options: Any) -> Executor:
        """An executor that writes to the branch only."""
        return Executor(self.store, **options)

    def branch_events(self) -> list[StoredEvent]:
        """The events written on the branch after the fork point."""
        return self.store.read_all(after=self.base)

    def __repr__(self) -> str:
        return f"<Fork of {self.base} events, {self.store.head() - self.base} written on the branch>"


def fork(store: EventStore, at: Point | None = None, *, progress: bool | None = None) -> Fork:
    """Copy the history of ``store`` up to ``at`` (a position, an aware datetime, or everything) into a
    new in-memory store that shares its event registry."""
    if isinstance(at, bool) or (isinstance(at, int) and at < 0):
        raise InvalidFormat(f"a fork point is a position >= 0 or an aware datetime, got {at!r}")
    branch = MemoryStore(registry=store.registry)
    original: list[int] = []
    limit = store.head() if at is None else at
    for batch in _batches(store, limit, progress):
        branch.import_events(batch)
        original.extend(e.position for e in batch)
    return Fork(store=branch, source=store, original_positions=original)


def _batches(store: EventStore, until: Point, progress: bool | None) -> Iterator[list[StoredEvent]]:
    yield from iter_events(store, until=until, batch_size=50_000, progress=progress, description="fork")


def compare(
    fork_: Fork,
    factory: Callable[[], Any],
    *,
    table: str | None = None,
    view: Callable[[Any], pd.DataFrame] | None = None,
    original_at: Point | None = None,
    branch_factory: Callable[[], Any] | None = None,
    progress: bool | None = None,
) -> FrameDiff:
    """The read model on the original (at its head, or at ``original_at``) versus on the branch.

    ``branch_factory`` builds a *changed* projection for the branch, to compare two versions of a
    projection over the same history. The diff reads "from original to branch".
    """
    as_frame = view or (lambda projection: projection.to_frame(table))
    original = factory()
    until = fork_.source.head() if original_at is None else original_at
    for batch in iter_events(fork_.source, until=until, progress=progress, description="original"):
        fold(original, batch)
    branch = (branch_factory or factory)()
    for batch in iter_events(fork_.store, progress=progress, description="branch"):
        fold(branch, batch)
    return diff_frames(as_frame(original), as_frame(branch))
