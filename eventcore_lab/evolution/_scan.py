"""Reading a history as it is stored: (type, schema version, JSON) per event, decoding nothing.

Compatibility checks and migrations must see what the store holds, not what the current code makes of
it; a read through the store's own registry would upcast, or fail on the very payloads being checked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import msgspec

from ..core.events import StoredEvent
from ..core.registry import EventRegistry, UnknownEvent, schema_version_of
from ..stores.base import EventStore


class RawEvent(msgspec.Struct, frozen=True):
    """One stored event with its payload as stored: JSON bytes at ``schema_version``."""

    event: StoredEvent
    event_type: str
    schema_version: int
    raw: bytes


@contextlib.contextmanager
def _blank_registry(store: EventStore) -> Iterator[EventRegistry]:
    """Give ``store`` an empty registry while it is scanned: every payload then reads as an UnknownEvent
    (type, JSON and schema version kept). The store's own registry is put back afterwards; do not write
    to the store meanwhile."""
    while isinstance(getattr(store, "inner", None), EventStore):  # a wrapper (ChaosStore): its store reads
        store = store.inner  # type: ignore[attr-defined]
    own = store.registry
    store.registry = EventRegistry()
    try:
        yield own
    finally:
        store.registry = own


def scan(store: EventStore, *, after: int = 0, batch_size: int = 10_000) -> Iterator[list[RawEvent]]:
    """The store's events after ``after`` in position order, in batches, as stored."""
    with _blank_registry(store) as registry:
        position = after
        while True:
            batch = store.read_all(after=position, limit=batch_size)
            if not batch:
                return
            yield [_raw(event, registry) for event in batch]
            position = batch[-1].position


def _raw(event: StoredEvent, registry: EventRegistry) -> RawEvent:
    payload: Any = event.payload
    if isinstance(payload, UnknownEvent):
        return RawEvent(event, payload.event_type, payload.schema_version, payload.raw)
    # a store that keeps objects (memory): the object's class tells its version
    return RawEvent(event, event.event_type, schema_version_of(payload), registry.encode(payload))
