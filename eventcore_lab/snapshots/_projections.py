"""Snapshots of a projection's state, so a restarted runner replays only the events after the last one.

Same rules as command snapshots: a snapshot is keyed by the projection class, its declared
``fold_version`` and a fingerprint of its code (``__init__``, ``apply`` and every ``@handles`` method),
so a changed fold misses; a snapshot that does not fit the store (the event it was taken at is not there
with the same id: another history, a restored backup) is ignored and the replay starts from scratch.
The state is the projection's ``__dict__``, pickled by the snapshot store.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..core.errors import InvalidFormat
from ..core.events import StoredEvent
from ..stores.base import EventStore
from ._keys import _code_bytes
from ._stores import Snapshot, SnapshotStore


def projection_key(projection_class: type) -> str:
    """``module.QualName@version#fingerprint`` of a projection class's fold."""
    digest = hashlib.sha256()
    functions: list[Any] = [
        getattr(projection_class, "__init__", None),
        getattr(projection_class, "apply", None),
    ]
    dispatch = getattr(projection_class, "_dispatch", None) or {}
    functions += [dispatch[cls] for cls in sorted(dispatch, key=lambda c: f"{c.__module__}.{c.__qualname__}")]
    for function in functions:
        code = getattr(function, "__code__", None)
        digest.update(_code_bytes(code) if code is not None else repr(function).encode())
    version = getattr(projection_class, "fold_version", 1)
    return (
        f"{projection_class.__module__}.{projection_class.__qualname__}@{version}#{digest.hexdigest()[:16]}"
    )


class ProjectionSnapshots:
    """Snapshots of a projection's state in ``store``, taken once ``every`` events were applied past the
    last one. Give it to ``ProjectionRunner(store, projection, snapshots=...)``, with a fresh projection:
    the runner resumes from the newest snapshot that fits, at its position."""

    def __init__(self, store: SnapshotStore, *, every: int = 1000) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise InvalidFormat(f"every must be an int >= 1, got {every!r}")
        if not isinstance(store, SnapshotStore):
            raise InvalidFormat(f"store must be a snapshot store (load/save), got {type(store).__name__}")
        self.store = store
        self.every = every
        #: snapshots resumed from; runners that found none for their key; found but not fitting; saved
        self.hits = 0
        self.misses = 0
        self.rejected = 0
        self.saved = 0

    def restore(self, projection: Any, name: str, events: EventStore) -> int | None:
        """Load the snapshot of ``projection``'s fold under ``name`` into it and return its position;
        None (projection untouched) when there is none or it does not fit ``events``."""
        if not hasattr(projection, "__dict__"):
            return None
        snapshot = self.store.load(projection_key(type(projection)), _streams(name))
        if snapshot is None:
            self.misses += 1
            return None
        state = snapshot.state
        position = snapshot.position
        fits = isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict) and position >= 1
        if fits:
            at = events.read_all(after=position - 1, limit=1)
            fits = bool(at) and at[0].position == position and str(at[0].event_id) == state[1]
        if not fits:
            self.rejected += 1
            return None
        vars(projection).clear()
        vars(projection).update(state[0])
        self.hits += 1
        return position

    def save(self, projection: Any, name: str, last: StoredEvent) -> None:
        """Save ``projection``'s state as of ``last``, the last event applied to it."""
        if not hasattr(projection, "__dict__"):
            return
        state = (dict(vars(projection)), str(last.event_id))
        self.store.save(projection_key(type(projection)), _streams(name), Snapshot(state, {}, last.position))
        self.saved += 1


def _streams(name: str) -> str:
    return f"projection:{name}"
