"""The in-memory store: the reference implementation and the fastest path."""

from __future__ import annotations

import functools
import operator
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

import msgspec

from ..core.errors import InvalidFormat, VersionConflict
from ..core.events import EventToWrite, ExpectedVersion, StoredEvent
from ..core.ids import StreamId, new_event_id
from ..core.registry import EventRegistry, default_registry
from .base import (
    MAX_PAYLOAD_BYTES,
    StreamsRead,
    Subscription,
    check_expected,
    prepare_append,
    stamp_events,
)


class MemoryStore:
    """A thread-safe store in process memory, indexed by stream and by position.

    Appends validate fully (stream ids, registered and serializable events) so that code that runs here
    also runs on the durable stores.

    ``clock`` (read once per append, for ``recorded_at``) and ``new_id`` (called once per event, for
    ``event_id``) default to the real time and :func:`new_event_id`. Simulations pass a virtual clock and
    :class:`~eventcore_lab.core.ids.RepeatableIds` so that a rerun stores the very same events.
    ``import_events`` keeps the ids and times it is given.
    """

    def __init__(
        self,
        *,
        registry: EventRegistry | None = None,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        clock: Callable[[], datetime] | None = None,
        new_id: Callable[[], uuid.UUID] | None = None,
    ) -> None:
        self.registry = registry or default_registry
        self.max_payload_bytes = max_payload_bytes
        self._clock = _utc_now if clock is None else _checked_clock(clock)
        self._new_id = new_event_id if new_id is None else _checked_ids(new_id)
        self._log: list[StoredEvent] = []
        self._streams: dict[str, list[StoredEvent]] = {}
        self._changed = threading.Condition(threading.Lock())

    def __repr__(self) -> str:
        return f"<MemoryStore: {len(self._log)} events in {len(self._streams)} streams>"

    # -- writing -----------------------------------------------------------------------------------

    def append(
        self, events: Sequence[EventToWrite], expected: Mapping[str, ExpectedVersion] | None = None
    ) -> list[StoredEvent]:
        prepared, checks = prepare_append(events, expected, self.registry, self.max_payload_bytes)
        version_of = self._version_of
        with self._changed:
            check_expected(checks, version_of)
            stored, _ = stamp_events(prepared, version_of, len(self._log) + 1, self._clock(), self._new_id)
            self._commit(stored)
        return stored

    def _version_of(self, stream_id: str) -> int:
        return len(self._streams.get(stream_id, ()))

    def import_events(self, events: Iterable[StoredEvent]) -> int:
        batch = list(events)
        streams = self._streams
        with self._changed:
            versions: dict[str, int] = {}
            position = len(self._log)
            renumbered = []
            for event in batch:
                if not isinstance(event, StoredEvent):
                    raise InvalidFormat(f"import expects StoredEvent items, got {type(event).__name__}")
                sid = StreamId(event.stream_id)
                self.registry.type_name(event.payload)
                current = versions.get(sid) or len(streams.get(sid, ()))
                if event.version != current + 1:
                    raise VersionConflict({sid: (f"version {event.version - 1}", current)})
                versions[sid] = event.version
                position += 1
                renumbered.append(msgspec.structs.replace(event, stream_id=sid, position=position))
            self._commit(renumbered)
        return len(renumbered)

    def _commit(self, stored: list[StoredEvent]) -> None:
        """Publish built events; cannot fail, so an append is all-or-nothing. Caller holds the lock."""
        streams = self._streams
        for event in stored:
            stream = streams.get(event.stream_id)
            if stream is None:
                streams[event.stream_id] = [event]
            else:
                stream.append(event)
        self._log.extend(stored)
        self._changed.notify_all()

    # -- reading -----------------------------------------------------------------------------------

    def read_stream(self, stream_id: str, *, after_version: int = 0) -> list[StoredEvent]:
        return self._streams.get(StreamId(stream_id), [])[after_version:]

    def read_streams(self, stream_ids: Iterable[str]) -> StreamsRead:
        ids = [StreamId(s) for s in stream_ids]
        streams = self._streams
        merged: list[StoredEvent] = []
        with self._changed:
            found = [streams.get(s, ()) for s in ids]
            versions: dict[str, int] = {s: len(events) for s, events in zip(ids, found, strict=True)}
            parts = 0
            for events in found:
                if events:
                    merged += events  # a copy: later appends to the stream do not show through
                    parts += 1
        if parts > 1:  # each part is in position order; sorting such runs is a linear merge in C
            merged.sort(key=_by_position)
        return StreamsRead(merged, versions)

    def read_all(self, *, after: int = 0, limit: int | None = None) -> list[StoredEvent]:
        if after < 0:
            raise InvalidFormat(f"after must be a position >= 0, got {after}")
        end = None if limit is None else after + limit
        return self._log[after:end]

    def stream_version(self, stream_id: str) -> int:
        return self._version_of(StreamId(stream_id))

    def stream_ids(self) -> list[str]:
        """Every stream that has events, in order of first event."""
        return list(self._streams)

    def head(self) -> int:
        return len(self._log)

    def wait_for_events(self, after: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self._log) > after, timeout)

    def subscribe(self, *, after: int = 0, batch_size: int = 500) -> Subscription:
        return Subscription(self, after=after, batch_size=batch_size)

    def close(self) -> None:
        """Nothing to release; present so every store can be used the same way."""

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_by_position = operator.attrgetter("position")
_utc_now = functools.partial(datetime.now, UTC)


def _checked_clock(clock: Callable[[], datetime]) -> Callable[[], datetime]:
    """``clock``, checked on each reading: an aware datetime, stored in UTC like the real clock's."""
    if not callable(clock):
        raise InvalidFormat(f"clock must be a callable returning a datetime, got {clock!r}")

    def read() -> datetime:
        now = clock()
        if not isinstance(now, datetime) or now.tzinfo is None:
            raise InvalidFormat(f"the store's clock must return a timezone-aware datetime, got {now!r}")
        return now.astimezone(UTC)

    return read


def _checked_ids(new_id: Callable[[], uuid.UUID]) -> Callable[[], uuid.UUID]:
    """``new_id``, checked on each call: it must give a ``uuid.UUID``."""
    if not callable(new_id):
        raise InvalidFormat(f"new_id must be a callable returning a uuid.UUID, got {new_id!r}")

    def make() -> uuid.UUID:
        value = new_id()
        if not isinstance(value, uuid.UUID):
            raise InvalidFormat(f"the store's new_id must return a uuid.UUID, got {value!r}")
        return value

    return make
