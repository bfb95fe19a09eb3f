"""The event store protocol every store implements, and the shared subscription loop."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

import msgspec

from ..core.errors import InvalidFormat, TooLong, VersionConflict
from ..core.events import EventToWrite, ExpectedVersion, Metadata, StoredEvent
from ..core.ids import StreamId
from ..core.registry import EventRegistry


class StreamsRead(msgspec.Struct, frozen=True):
    """The events of some streams merged in position order, and each stream's version when read."""

    events: list[StoredEvent]
    versions: dict[str, int]


@runtime_checkable
class EventStore(Protocol):
    """What the executor, projections and tools need from a store.

    Positions start at 1 and grow in commit order; ``after`` arguments are exclusive, so a reader that
    processed up to position ``p`` continues with ``read_all(after=p)``.
    """

    def append(
        self, events: Sequence[EventToWrite], expected: Mapping[str, ExpectedVersion] | None = None
    ) -> list[StoredEvent]:
        """Append ``events`` all-or-nothing, if every stream in ``expected`` is as expected.

        Streams written but absent from ``expected`` are not checked. Raises VersionConflict (nothing
        written) when an expectation fails.
        """
        ...

    def read_stream(self, stream_id: str, *, after_version: int = 0) -> list[StoredEvent]:
        """The events of one stream with version > ``after_version``, oldest first."""
        ...

    def read_streams(self, stream_ids: Iterable[str]) -> StreamsRead:
        """All events of these streams, merged in position order, with their versions."""
        ...

    def read_all(self, *, after: int = 0, limit: int | None = None) -> list[StoredEvent]:
        """Events with position > ``after`` in position order, at most ``limit`` of them."""
        ...

    def stream_version(self, stream_id: str) -> int:
        """The stream's current version (0 when it has no events)."""
        ...

    def head(self) -> int:
        """The highest committed position (0 for an empty store)."""
        ...

    def wait_for_events(self, after: int, timeout: float) -> bool:
        """Block until an event with position > ``after`` is committed or ``timeout`` passes."""
        ...

    def subscribe(self, *, after: int = 0, batch_size: int = 500) -> Subscription:
        """Every event after ``after``: first the history, then live events as they commit."""
        ...

    def import_events(self, events: Iterable[StoredEvent]) -> int:
        """Bulk-load already stored events (e.g. another store's export), keeping ids, versions,
        metadata and timestamps; positions are assigned anew in input order. Each event's version must
        follow its stream's current version. All-or-nothing. Returns the number imported."""
        ...

    def close(self) -> None: ...


class Subscription(Iterator[StoredEvent]):
    """Catch-up then live iteration over a store's log, in position order, never skipping an event.

    Iterating blocks until the next event arrives; use :meth:`poll` for a bounded wait, and
    :meth:`close` (or a ``with`` block) to stop. ``position`` is the last position delivered.
    """

    def __init__(self, store: EventStore, *, after: int = 0, batch_size: int = 500) -> None:
        self._store = store
        self._batch_size = batch_size
        self._buffer: list[StoredEvent] = []
        self._index = 0
        self._closed = threading.Event()
        self.position = after

    def poll(self, timeout: float = 0.0) -> StoredEvent | None:
        """The next event, waiting at most ``timeout`` seconds; None if none came or closed."""
        if self._index >= len(self._buffer):
            self._buffer = self._store.read_all(after=self.position, limit=self._batch_size)
            self._index = 0
            if not self._buffer:
                if self._closed.is_set() or not self._store.wait_for_events(self.position, timeout):
                    return None
                self._buffer = self._store.read_all(after=self.position, limit=self._batch_size)
                if not self._buffer:
                    return None
        event = self._buffer[self._index]
        self._index += 1
        self.position = event.position
        return event

    def __next__(self) -> StoredEvent:
        while not self._closed.is_set():
            event = self.poll(timeout=0.25)
            if event is not None:
                return event
        raise StopIteration

    def close(self) -> None:
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Payloads larger than this (as JSON) are refused, so one bad event cannot bloat or stall a store.
MAX_PAYLOAD_BYTES = 1 << 20


class PreparedEvent(msgspec.Struct, frozen=True):
    """A write that passed validation: its stream id, type name, JSON payload and metadata."""

    stream_id: StreamId
    event_type: str
    payload: object
    payload_json: bytes
    metadata: Metadata


def prepare_append(
    events: Sequence[EventToWrite],
    expected: Mapping[str, ExpectedVersion] | None,
    registry: EventRegistry,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
) -> tuple[list[PreparedEvent], dict[StreamId, ExpectedVersion]]:
    """Validate an append before anything is written; raise a clear error on the first bad item.

    Every store calls this first, so that all stores refuse the same bad input in the same way.
    """
    prepared = []
    for write in events:
        if not isinstance(write, EventToWrite):
            raise InvalidFormat(f"append expects EventToWrite items, got {type(write).__name__}")
        sid = StreamId(write.stream_id)
        event_type = registry.type_name(write.event)
        data = registry.encode(write.event)
        if len(data) > max_payload_bytes:
            raise TooLong(
                f"{event_type} payload for stream {sid!r} is {len(data)} bytes as JSON; "
                f"the limit is {max_payload_bytes}"
            )
        metadata = write.metadata or Metadata()
        if not isinstance(metadata, Metadata):
            raise InvalidFormat(f"metadata must be a Metadata, got {type(metadata).__name__}")
        prepared.append(PreparedEvent(sid, event_type, write.event, data, metadata))
    checks: dict[StreamId, ExpectedVersion] = {}
    for name, exp in (expected or {}).items():
        if not isinstance(exp, ExpectedVersion):
            raise InvalidFormat(f"expected version for {name!r} must be an ExpectedVersion, got {exp!r}")
        checks[StreamId(name)] = exp
    return prepared, checks


def check_expected(checks: Mapping[StreamId, ExpectedVersion], version_of: Callable[[str], int]) -> None:
    """Raise VersionConflict naming every stream whose expectation fails."""
    conflicts: dict[str, tuple[str, int]] = {}
    for sid, exp in checks.items():
        actual = version_of(sid)
        if not exp.holds_for(actual):
            conflicts[sid] = (str(exp), actual)
    if conflicts:
        raise VersionConflict(conflicts)


def stamp_events(
    prepared: Sequence[PreparedEvent],
    version_of: Callable[[str], int],
    first_position: int,
    now: datetime,
    new_id: Callable[[], uuid.UUID],
) -> tuple[list[StoredEvent], dict[str, int]]:
    """Number validated writes: the next version of each stream and consecutive positions.

    Returns the stored events and each written stream's new version. Stores that number events in
    process call this under their write lock, after :func:`check_expected`.
    """
    versions: dict[str, int] = {}
    stored = []
    position = first_position
    for item in prepared:
        sid = item.stream_id
        version = versions.get(sid) or version_of(sid)
        versions[sid] = version = version + 1
        stored.append(
            StoredEvent(
                event_id=new_id(),
                stream_id=sid,
                version=version,
                position=position,
                event_type=item.event_type,
                payload=item.payload,
                metadata=item.metadata,
                recorded_at=now,
            )
        )
        position += 1
    return stored, versions
