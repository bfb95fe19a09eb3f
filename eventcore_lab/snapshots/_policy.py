"""When to take a snapshot of a command's folded state, and how to resume a fold from one safely.

A snapshot only shortens the *read*: the executor still learns every stream's current version from the
store and appends with those exact versions, so a snapshot can never let a decision through that the
optimistic check would refuse. A snapshot that does not fit what the store holds now (a stream shorter
than the snapshot's version, a gap after it) is ignored and the fold starts from scratch.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..core.errors import InvalidFormat
from ..core.events import StoredEvent
from ..stores.base import EventStore, StreamsRead
from ._keys import fold_key, streams_key
from ._stores import Snapshot, SnapshotStore


@dataclass
class Start:
    """A fold resumed from a snapshot: its state, and where each stream's events continue."""

    fold: str
    streams: str
    snapshot: Snapshot
    owner: Snapshots | None = None

    @property
    def state(self) -> Any:
        return self.snapshot.state

    def read(self, store: EventStore) -> StreamsRead | None:
        """The events after the snapshot and each stream's current version; None when it does not fit."""
        per_stream: list[list[StoredEvent]] = []
        versions: dict[str, int] = {}
        for sid, version in self.snapshot.versions.items():
            events = store.read_stream(sid, after_version=version)
            if events:
                if events[0].version != version + 1:
                    self._reject()
                    return None
                versions[sid] = events[-1].version
                per_stream.append(events)
            else:
                current = store.stream_version(sid)
                if current != version:  # shorter than the snapshot (another history), or moved on meanwhile
                    self._reject()
                    return None
                versions[sid] = version
        if self.owner is not None:
            self.owner.hits += 1
        merged = list(heapq.merge(*per_stream, key=lambda e: e.position))
        return StreamsRead(merged, versions)

    def _reject(self) -> None:
        if self.owner is not None:
            self.owner.rejected += 1
        return None


class Snapshots:
    """Snapshots of folded command state in ``store``, taken after ``every`` events were folded past the
    last one. Give it to ``Executor(store, snapshots=...)``.

    A command class opts out with ``snapshots = False`` (for folds that depend on more than state and
    event, e.g. on the command's own fields) and declares ``fold_version`` to invalidate old snapshots
    explicitly (changing ``apply`` or ``initial_state`` invalidates them anyway).
    """

    def __init__(self, store: SnapshotStore, *, every: int = 100) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise InvalidFormat(f"every must be an int >= 1, got {every!r}")
        self.store = store
        self.every = every
        self._keys: dict[type, str] = {}
        #: folds resumed from a snapshot; folds with no snapshot of their key; snapshots found but not
        #: fitting the store (ignored); snapshots saved
        self.hits = 0
        self.misses = 0
        self.rejected = 0
        self.saved = 0

    def _fold(self, command: Any) -> str | None:
        cls = type(command)
        if getattr(cls, "snapshots", True) is False:
            return None
        key = self._keys.get(cls)
        if key is None:
            key = self._keys[cls] = fold_key(cls)
        return key

    def start(self, command: Any, stream_ids: Iterable[str]) -> Start | None:
        """The snapshot to resume ``command``'s fold over ``stream_ids`` from, if one fits its key."""
        fold = self._fold(command)
        ids = list(stream_ids)
        if fold is None or not ids:
            return None
        streams = streams_key(ids)
        snapshot = self.store.load(fold, streams)
        if snapshot is None or set(snapshot.versions) != set(ids):
            self.misses += 1
            return None
        return Start(fold, streams, snapshot, self)

    def offer(
        self,
        command: Any,
        stream_ids: Iterable[str],
        state: Any,
        versions: dict[str, int],
        folded: int,
        position: int,
    ) -> None:
        """Called after a fold: save ``state`` when ``folded`` events were applied since the last snapshot."""
        fold = self._fold(command)
        ids = list(stream_ids)
        if fold is None or not ids or folded < self.every:
            return
        self.store.save(
            fold, streams_key(ids), Snapshot(state, {sid: versions.get(sid, 0) for sid in ids}, position)
        )
        self.saved += 1
