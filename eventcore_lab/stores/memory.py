"""The in-memory store: the reference implementation and the fastest path."""

from __future__ import annotations

import functools
import itertools
import operator
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime

import msgspec

from .._gc import gc_paused
from ..core.errors import InvalidFormat
from ..core.events import EventToWrite, ExpectedVersion, StoredEvent
from ..core.ids import StreamId, new_event_id
from ..core.query import AppendCondition, Query
from ..core.registry import EventRegistry, default_registry
from ._query_index import QueryIndex
from .base import QueryRead, StreamsRead, Subscription
from .filters import FilteredRead, LogFilter, scan, select_stream
from .health import StoreHealth, measure_health
from .rules import (
    MAX_PAYLOAD_BYTES,
    check_backwards,
    check_checkpoint_name,
    check_condition,
    check_condition_holds,
    check_expected,
    check_follows,
    check_limit,
    check_log_filter,
    check_open,
    check_position,
    check_query,
    prepare_append,
    prepare_import,
    stamp_events,
)


class MemoryStore:
    """A thread-safe store in process memory, indexed by stream and by position.

    Appends validate fully (stream ids, registered and serializable events) so that code that runs here
    also runs on the durable stores. Tags and event types are indexed (tag -> positions, type ->
    positions), so a query read or an append condition looks at matching events only.

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
        self._index = QueryIndex()
        # appends and reads take the lock itself (a Condition's ``with`` adds a Python call per use);
        # waiters and notify_all go through the Condition built on that same lock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._waiting = 0  # threads in wait_for_events: a commit notifies only when someone waits
        self._checkpoints: dict[str, int] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"<MemoryStore: {len(self._log)} events in {len(self._streams)} streams>"

    # -- writing -----------------------------------------------------------------------------------

    def append(
        self,
        events: Sequence[EventToWrite],
        expected: Mapping[str, ExpectedVersion] | None = None,
        *,
        condition: AppendCondition | None = None,
    ) -> list[StoredEvent]:
        check_open(self._closed, "the MemoryStore")
        prepared, checks = prepare_append(events, expected, self.registry, self.max_payload_bytes)
        if condition is not None:  # most appends have none: two calls less
            condition = check_condition(condition)
        version_of = self._version_of
        with self._lock:
            check_open(self._closed, "the MemoryStore")
            check_expected(checks, version_of)
            if condition is not None:
                check_condition_holds(condition, self._first_match)
            stored, _ = stamp_events(prepared, version_of, len(self._log) + 1, self._clock(), self._new_id)
            self._commit(stored)
        return stored

    def _version_of(self, stream_id: str) -> int:
        return len(self._streams.get(stream_id, ()))

    def import_events(self, events: Iterable[StoredEvent]) -> int:
        check_open(self._closed, "the MemoryStore")
        with gc_paused():  # 100,000s of new, acyclic objects: collections would rescan them all
            batch = prepare_import(events, self.registry, self.max_payload_bytes)
            with self._changed:
                check_open(self._closed, "the MemoryStore")
                check_follows(batch.first_versions, self._version_of)
                start = len(self._log) + 1
                positions = range(start, start + len(batch.events))
                replace = msgspec.structs.replace
                stored = [
                    replace(event, position=p) for event, p in zip(batch.events, positions, strict=True)
                ]
                self._commit_import(stored, positions)
        return len(stored)

    def _commit_import(self, stored: list[StoredEvent], positions: range) -> None:
        """:meth:`_commit` for an import: the index takes each event type's positions in one pass."""
        streams = self._streams
        for event in stored:
            stream = streams.get(event.stream_id)
            if stream is None:
                streams[event.stream_id] = [event]
            else:
                stream.append(event)
        types, tags = map(operator.attrgetter("event_type"), stored), map(operator.attrgetter("tags"), stored)
        self._index.add_many(positions, list(types), list(tags))
        self._log.extend(stored)
        if self._waiting:
            self._changed.notify_all()

    def _commit(self, stored: list[StoredEvent]) -> None:
        """Publish built events; cannot fail, so an append is all-or-nothing. Caller holds the lock."""
        streams, index = self._streams, self._index
        for event in stored:
            stream = streams.get(event.stream_id)
            if stream is None:
                streams[event.stream_id] = [event]
            else:
                stream.append(event)
            index.add(event.position, event.event_type, event.tags)
        self._log.extend(stored)
        if self._waiting:
            self._changed.notify_all()

    # -- reading -----------------------------------------------------------------------------------

    def read_stream(
        self,
        stream_id: str,
        *,
        after_version: int = 0,
        event_types: Iterable[str | type] | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        check_open(self._closed, "the MemoryStore")
        sid = StreamId(stream_id)
        after_version = check_position(after_version, "after_version")
        where = check_log_filter(event_types, None, self.registry)
        backwards, limit = check_backwards(backwards), check_limit(limit)
        stream = self._streams.get(sid, [])
        if where is None and not backwards:  # a page of a long stream copies the page only
            return self.registry.current(
                stream[after_version : None if limit is None else after_version + limit]
            )
        return select_stream(self.registry.current(stream[after_version:]), where, backwards, limit)

    def read_streams(self, stream_ids: Iterable[str]) -> StreamsRead:
        check_open(self._closed, "the MemoryStore")
        ids = [s if type(s) is StreamId else StreamId(s) for s in stream_ids]  # a command's are validated
        streams = self._streams
        merged: list[StoredEvent] = []
        with self._lock:
            found = [streams.get(s, ()) for s in ids]
            versions: dict[str, int] = {s: len(events) for s, events in zip(ids, found, strict=True)}
            parts = 0
            for events in found:
                if events:
                    merged += events  # a copy: later appends to the stream do not show through
                    parts += 1
        if parts > 1:  # each part is in position order; sorting such runs is a linear merge in C
            merged.sort(key=_by_position)
        return StreamsRead(self.registry.current(merged), versions)

    def read_all(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
        backwards: bool = False,
    ) -> list[StoredEvent]:
        check_open(self._closed, "the MemoryStore")
        after, limit = check_position(after), check_limit(limit)
        where = check_log_filter(event_types, categories, self.registry)
        if check_backwards(backwards):
            return select_stream(self.registry.current(self._log[after:]), where, True, limit)
        if where is not None:
            return self._filtered(after, limit, where).events
        end = None if limit is None else after + limit
        return self.registry.current(self._log[after:end])

    def read_query(self, query: Query, *, after: int = 0, limit: int | None = None) -> QueryRead:
        """Events matching ``query`` with position > ``after`` (at most ``limit``), and the head."""
        check_open(self._closed, "the MemoryStore")
        query, after, limit = check_query(query), check_position(after), check_limit(limit)
        log = self._log
        with self._lock:
            head = len(log)
            positions = itertools.islice(self._matching(query, after, head), limit)
            found = [log[p - 1] for p in positions]
        return QueryRead(self.registry.current(found), head)

    def _first_match(self, query: Query, after: int) -> int | None:
        return next(self._matching(query, after, len(self._log)), None)

    def _matching(self, query: Query, after: int, head: int) -> Iterator[int]:
        """Positions in (after, head] matching ``query``, ascending, each once. Caller holds the lock."""
        return self._index.matching(query, after, head)

    # -- filtered reads ----------------------------------------------------------------------------

    def read_filtered(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
    ) -> FilteredRead:
        check_open(self._closed, "the MemoryStore")
        after, limit = check_position(after), check_limit(limit)
        return self._filtered(after, limit, check_log_filter(event_types, categories, self.registry))

    def _filtered(self, after: int, limit: int | None, where: LogFilter | None) -> FilteredRead:
        head = len(self._log)  # appends publish whole, so every event up to here is readable
        current = None if self.registry.evolution is None else self.registry.current
        return scan(self._log, after, head, where, after=after, head=head, limit=limit, current=current)

    def stream_version(self, stream_id: str) -> int:
        check_open(self._closed, "the MemoryStore")
        return self._version_of(StreamId(stream_id))

    def stream_ids(self) -> list[str]:
        """Every stream that has events, in order of first event."""
        check_open(self._closed, "the MemoryStore")
        return list(self._streams)

    def head(self) -> int:
        check_open(self._closed, "the MemoryStore")
        return len(self._log)

    def checkpoint_load(self, name: str) -> int:
        """The position saved under ``name`` (0 when none was saved); kept as long as the store."""
        check_open(self._closed, "the MemoryStore")
        return self._checkpoints.get(check_checkpoint_name(name), 0)

    def checkpoint_save(self, name: str, position: int) -> None:
        """Save ``position`` under ``name``."""
        check_open(self._closed, "the MemoryStore")
        name, position = check_checkpoint_name(name), check_position(position, "position")
        with self._changed:
            self._checkpoints[name] = position

    def wait_for_events(self, after: int, timeout: float) -> bool:
        with self._changed:
            self._waiting += 1
            try:
                return self._changed.wait_for(lambda: len(self._log) > after or self._closed, timeout) and (
                    len(self._log) > after
                )
            finally:
                self._waiting -= 1

    def subscribe(
        self,
        *,
        after: int = 0,
        batch_size: int = 500,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
    ) -> Subscription:
        check_open(self._closed, "the MemoryStore")
        where = check_log_filter(event_types, categories, self.registry)
        return Subscription(self, after=check_position(after), batch_size=batch_size, where=where)

    def close(self) -> None:
        """Refuse every later call with StoreClosed, like the durable stores; idempotent."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    # -- health ---------------------------------------------------------------------------------------

    def health(self) -> StoreHealth:
        """It answers (a head read), timed; never raises. No schema and no pool to report."""
        return measure_health("MemoryStore", lambda: {"head": self.head()})

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
