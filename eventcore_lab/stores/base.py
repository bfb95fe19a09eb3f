"""The event store protocol every store implements, and the shared subscription loop."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgspec

from ..core.events import EventToWrite, ExpectedVersion, StoredEvent
from ..core.query import AppendCondition, Query
from ..core.registry import EventRegistry
from .filters import FilteredRead, LogFilter
from .health import PoolStats, StoreHealth

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

from .rules import (  # noqa: F401  (the shared rules, re-exported for stores that import them from here)
    MAX_PAYLOAD_BYTES,
    PreparedEvent,
    PreparedImport,
    check_expected,
    check_follows,
    prepare_append,
    prepare_import,
    stamp_events,
)


class QueryRead(msgspec.Struct, frozen=True):
    """The events matching a query in position order, and the head position they were read at: the
    ``after`` of an :class:`~eventcore_lab.core.query.AppendCondition` guarding a decision made on them."""

    events: list[StoredEvent]
    position: int


class StreamsRead(msgspec.Struct, frozen=True):
    """The events of some streams merged in position order, and each stream's version when read."""

    events: list[StoredEvent]
    versions: dict[str, int]


@runtime_checkable
class EventStore(Protocol):
    """What the executor, projections and tools need from a store.

    Positions start at 1 and grow in commit order; ``after`` arguments are exclusive, so a reader that
    processed up to position ``p`` continues with ``read_all(after=p)``. Every store keeps the rules of
    :mod:`.rules` (the contract suite in :mod:`eventcore_lab.testing.contract` checks them); after
    ``close()`` every call but ``close()`` raises StoreClosed.
    """

    #: How payloads are turned into JSON and back; exports and tools use the store's own.
    registry: EventRegistry

    def append(
        self, events: Sequence[EventToWrite], expected: Mapping[str, ExpectedVersion] | None = None
    ) -> list[StoredEvent]:
        """Append ``events`` all-or-nothing, if every stream in ``expected`` is as expected.

        Streams written but absent from ``expected`` are not checked. Raises VersionConflict (nothing
        written) when an expectation fails.
        """
        ...

    def read_stream(
        self,
        stream_id: str,
        *,
        after_version: int = 0,
        event_types: Iterable[str | type] | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """The events of one stream with version > ``after_version``, oldest first (newest first when
        ``backwards``), only those of ``event_types`` when given, at most ``limit`` of them."""
        ...

    def read_streams(self, stream_ids: Iterable[str]) -> StreamsRead:
        """All events of these streams, merged in position order, with their versions."""
        ...

    def read_all(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
        backwards: bool = False,
    ) -> list[StoredEvent]:
        """Events with position > ``after`` in position order (newest first when ``backwards``), only
        those of ``event_types`` in streams of ``categories`` when given, at most ``limit`` of them."""
        ...

    def read_filtered(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
    ) -> FilteredRead:
        """The matching events after ``after`` (as ``read_all``) and the position the read looked up
        to: a reader continues from there, past the events that did not match."""
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

    def subscribe(
        self,
        *,
        after: int = 0,
        batch_size: int = 500,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
    ) -> Subscription:
        """Every event after ``after`` (only the matching ones when filtered): first the history, then
        live events as they commit."""
        ...

    def import_events(self, events: Iterable[StoredEvent]) -> int:
        """Bulk-load already stored events (e.g. another store's export), keeping ids, versions,
        metadata and timestamps; positions are assigned anew in input order. Each event's version must
        follow its stream's current version. All-or-nothing. Returns the number imported."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Queries(Protocol):
    """A store that reads by query and appends under an append condition (every built-in store).

    ``append(events, expected, condition=...)`` checks the condition atomically with the stream
    expectations and raises AppendConditionFailed (nothing written) when it fails.
    """

    def read_query(self, query: Query, *, after: int = 0, limit: int | None = None) -> QueryRead:
        """Events matching ``query`` with position > ``after``, and the head they were read at."""
        ...

    def append(
        self,
        events: Sequence[EventToWrite],
        expected: Mapping[str, ExpectedVersion] | None = None,
        *,
        condition: AppendCondition | None = None,
    ) -> list[StoredEvent]: ...


# -- capabilities only some stores have: check them with isinstance(store, Protocol) ---------------


@runtime_checkable
class FilteredReads(Protocol):
    """A store that filters the log by event type and stream category (every built-in store; a store
    written against the older protocol may not: a runner then reads every event)."""

    def read_filtered(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
    ) -> FilteredRead: ...


@runtime_checkable
class Checkpoints(Protocol):
    """A store that keeps projection checkpoints next to its log (memory, DuckDB, PostgreSQL)."""

    def checkpoint_load(self, name: str) -> int:
        """The position saved under ``name`` (0 when none was saved)."""
        ...

    def checkpoint_save(self, name: str, position: int) -> None:
        """Save ``position`` under ``name``; names follow :func:`.rules.check_checkpoint_name`."""
        ...


@runtime_checkable
class StreamListing(Protocol):
    """A store that can list its streams cheaply."""

    def stream_ids(self) -> list[str]:
        """Every stream that has events, in order of first event."""
        ...


@runtime_checkable
class SQLAccess(Protocol):
    """A store whose log can be queried with read-only SQL (DuckDB)."""

    def sql(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run one read-only statement and return a DataFrame."""
        ...


@runtime_checkable
class TableAccess(Protocol):
    """A store that hands out its log as an Arrow table with payload fields expanded (DuckDB,
    PostgreSQL): what ``events_frame`` builds its columns from without a Python object per event."""

    def events_table(
        self,
        *,
        after: int = 0,
        until: int | datetime | None = None,
        stream_ids: Iterable[str] | None = None,
        event_types: Iterable[str] | None = None,
        fields: Callable[[list[str]], Mapping[str, str] | None] = ...,
    ) -> pa.Table | None:
        """The log as an Arrow table with payload fields expanded (None when they cannot be)."""
        ...


@runtime_checkable
class ColumnarAccess(TableAccess, Protocol):
    """A store that hands out its log as columns, filtered by the database (DuckDB)."""

    def events_frame(
        self,
        *,
        after: int = 0,
        until: int | None = None,
        stream_ids: Iterable[str] | None = None,
        event_types: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """The log as a DataFrame, one row per event."""
        ...


@runtime_checkable
class BulkExport(Protocol):
    """A store with its own fast export to event files (DuckDB, PostgreSQL)."""

    def export_events(
        self, path: str | os.PathLike[str], *, after: int = 0, progress: bool | None = None
    ) -> int:
        """Write the log after ``after`` to a .parquet, .jsonl or .jsonl.gz file; return the count."""
        ...


@runtime_checkable
class BulkImport(Protocol):
    """A store with its own fast import of event files (DuckDB)."""

    def import_file(self, path: str | os.PathLike[str], *, progress: bool | None = None) -> int:
        """Import a .parquet, .jsonl or .jsonl.gz event file, all-or-nothing; return the count."""
        ...


# -- health: how a store is, asked by health checks, `GET /health` and `eventcore-lab health` ---------


@runtime_checkable
class HealthCheck(Protocol):
    """A store that reports on itself (every built-in store and wrapper): see :mod:`._health`."""

    def health(self) -> StoreHealth:
        """One timed round trip: answers, head, schema version, pool; never raises, never migrates."""
        ...


@runtime_checkable
class PoolStatistics(Protocol):
    """A store with a connection pool (PostgreSQL) whose state can be read cheaply, e.g. at scrape time."""

    def pool_stats(self) -> PoolStats: ...


class Subscription(Iterator[StoredEvent]):
    """Catch-up then live iteration over a store's log, in position order, never skipping an event.

    Iterating blocks until the next event arrives; use :meth:`poll` for a bounded wait, and
    :meth:`close` (or a ``with`` block) to stop. ``position`` is the last position delivered; a
    filtered subscription (``where``) only delivers matching events, and its ``position`` is the last
    position it looked at, so it also moves past events that did not match.
    """

    def __init__(
        self, store: EventStore, *, after: int = 0, batch_size: int = 500, where: LogFilter | None = None
    ) -> None:
        self._store = store
        self._batch_size = batch_size
        self._where = where
        self._scanned = after
        self._buffer: list[StoredEvent] = []
        self._index = 0
        self._closed = threading.Event()
        self.position = after

    def _fill(self) -> None:
        """Read the next batch; a filtered one also moves ``position`` past the events it skipped."""
        where = self._where
        if where is None:
            self._buffer = self._store.read_all(after=self.position, limit=self._batch_size)
        else:
            while True:  # a read may look at part of the log only: go on while it finds nothing but moves
                read = self._store.read_filtered(
                    after=self.position,
                    limit=self._batch_size,
                    event_types=where.event_types,
                    categories=where.categories,
                )
                self._buffer, self._scanned = read.events, read.position
                if self._buffer or read.position <= self.position:
                    break
                self.position = read.position
        self._index = 0

    def poll(self, timeout: float = 0.0) -> StoredEvent | None:
        """The next event, waiting at most ``timeout`` seconds; None if none came or closed."""
        if self._index >= len(self._buffer):
            self._fill()
            if not self._buffer:
                if self._closed.is_set() or not self._store.wait_for_events(self.position, timeout):
                    return None
                self._fill()
                if not self._buffer:
                    return None
        event = self._buffer[self._index]
        self._index += 1
        self.position = event.position
        if self._index == len(self._buffer) and self._scanned > event.position:
            self.position = self._scanned  # the filtered read looked this far: nothing else matched
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
