"""The DuckDB store, assembled from its parts: see the package docstring for the design."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

import duckdb

from ...core.errors import AppendConditionFailed
from ...core.events import EventToWrite, ExpectedVersion, StoredEvent
from ...core.ids import StreamId, new_event_id
from ...core.query import AppendCondition
from ...core.registry import EventRegistry, default_registry, schema_version_of
from .._query_index import QueryIndex
from .._stream_cache import StreamCache
from ..base import Subscription
from ..health import StoreHealth, measure_health
from ..rules import (
    MAX_PAYLOAD_BYTES,
    PreparedEvent,
    check_condition,
    check_condition_holds,
    check_expected,
    check_log_filter,
    check_position,
    prepare_append,
    stamp_events,
)
from ._analytics import _AnalyticsMixin
from ._batches import (
    _Batch,
    _Rows,
)
from ._connection import (
    SCHEMA_VERSION,
    _connect,
    _ConnectionMixin,
)
from ._queries import _QueryMixin

#: How long a failed append condition waits for the matching event, queued ahead, to be readable.
_PUBLISH_WAIT_SECONDS = 10.0


class DuckDBStore(_ConnectionMixin, _QueryMixin, _AnalyticsMixin):
    """An event store in a DuckDB file (or ``":memory:"``); see the package docstring for the design.

    ``cache_events`` bounds the events kept for recently used streams; ``tail_events`` the newest events
    kept for tailing readers. ``show_progress`` controls bulk progress bars (None: on a terminal only).
    ``read_hook``, when given, is called with the stream ids a read is about to fetch from DuckDB,
    after the part served from memory was taken: a seam for tracing and for tests that interleave
    writes with reads. ``commit_hook``, when given, is called by the writer with the number of rows of
    each commit it is about to make, inside that commit: an exception it raises fails the commit as a
    database error would (a seam for metrics and for fault injection in tests). Small commits run
    DuckDB single-threaded (its worker threads cost more CPU than a few rows are worth); analytics,
    exports and large imports use ``analytics_threads`` (default: every core).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        *,
        registry: EventRegistry | None = None,
        read_only: bool = False,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        cache_events: int = 200_000,
        tail_events: int = 50_000,
        show_progress: bool | None = None,
        analytics_threads: int | None = None,
        read_hook: Callable[[list[str]], None] | None = None,
        commit_hook: Callable[[int], None] | None = None,
    ) -> None:
        self.registry = registry or default_registry
        self.max_payload_bytes = max_payload_bytes
        self.read_only = read_only
        self.cache_events = cache_events
        self.tail_events = tail_events
        self.show_progress = show_progress
        self.analytics_threads = analytics_threads or os.cpu_count() or 1
        self.path = str(path)
        self._key = self._claim(self.path, read_only)
        try:
            self._con = _connect(self.path, read_only)
        except BaseException:
            self._release()
            raise
        try:
            self._migrate()
        except BaseException:
            self._con.close()
            self._release()
            raise
        self._db_lock = threading.RLock()  # guards self._con; taken before self._lock, never after
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closed = False
        # Committed state (what DuckDB holds) ...
        self._versions = {}
        self._head = 0
        # ... and the overlay of validated appends waiting in the queue or being committed.
        self._pending = {}
        self._next_position = 1
        self._queue = []
        self._in_flight = []  # the group the writer is committing, until it is published
        self._condition_cursor = None  # DuckDB cursor for append conditions, made on first use
        self._committing = False
        self._work = threading.Condition(self._lock)  # wakes the writer thread
        self._writer = None
        self._appender = None  # DuckDB appender for small commits, made on first use
        self._cache = StreamCache(cache_events)
        self._read_hook = read_hook
        self._commit_hook = commit_hook
        self._tail = []
        self._tail_start = 1
        self._index = QueryIndex()
        self._streams_indexed = 0
        self._load()
        self._load_index()

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"<DuckDBStore {self.path!r} ({mode}): {self._head} events in {len(self._versions)} streams>"

    def append(
        self,
        events: Sequence[EventToWrite],
        expected: Mapping[str, ExpectedVersion] | None = None,
        *,
        condition: AppendCondition | None = None,
    ) -> list[StoredEvent]:
        """Validate, check and queue ``events``; return once they are committed.

        Stream expectations and an append ``condition`` are checked under ``_lock`` against what is
        committed and what is queued ahead (see :mod:`._queries`), then the batch is queued.
        """
        prepared, checks = prepare_append(events, expected, self.registry, self.max_payload_bytes)
        condition = check_condition(condition)
        self._check_writable()
        with self._lock:
            self._check_open()
            try:
                batch = self._queue_append(prepared, checks, condition)
            except AppendConditionFailed as failed:
                # The matching event may still wait in the queue: return once it is readable, so that
                # the caller's next read sees it (else a retry would only meet the same failure).
                self._await_readable(failed.position)
                raise
        if batch is None:
            return []
        self._wait_durable(batch)
        assert batch.events is not None
        return batch.events  # positions may have moved down if an append queued before it failed

    def _await_readable(self, position: int) -> None:
        """Wait until ``position`` is published, or nothing is queued any more. Caller holds ``_lock``."""
        self._changed.wait_for(
            lambda: self._head >= position or self._closed or not (self._queue or self._in_flight),
            timeout=_PUBLISH_WAIT_SECONDS,
        )

    def _queue_append(
        self,
        prepared: list[PreparedEvent],
        checks: Mapping[StreamId, ExpectedVersion],
        condition: AppendCondition | None,
    ) -> _Batch | None:
        """Check and queue a validated append (None when it writes nothing). Caller holds ``_lock``."""
        check_expected(checks, self._version_with_pending)
        check_condition_holds(condition, self._first_match)
        if not prepared:
            return None
        rows = _Rows()
        stored, versions = stamp_events(
            prepared, self._version_with_pending, self._next_position, datetime.now(UTC), new_event_id
        )
        for item, event in zip(prepared, stored, strict=True):
            rows.positions.append(event.position)
            rows.event_ids.append(event.event_id)
            rows.streams.append(event.stream_id)
            rows.versions.append(event.version)
            rows.types.append(event.event_type)
            rows.payloads.append(item.payload_json)
            rows.metadata.append(item.metadata_json)
            rows.recorded.append(event.recorded_at)
            rows.schema_versions.append(schema_version_of(item.payload))
            rows.tags.append(item.tags)
        return self._enqueue(rows, stored, versions, stored[-1].position + 1, checked=checks)

    def subscribe(
        self,
        *,
        after: int = 0,
        batch_size: int = 500,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
    ) -> Subscription:
        self._check_open()
        where = check_log_filter(event_types, categories, self.registry)
        return Subscription(self, after=check_position(after), batch_size=batch_size, where=where)

    def close(self) -> None:
        """Finish queued appends, then close the file. Later calls fail with StoreClosed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True  # refuses new appends; the writer drains the queue, then ends
            self._work.notify()
            self._changed.wait_for(lambda: self._writer is None)
            self._changed.notify_all()
        with self._db_lock:
            with contextlib.suppress(duckdb.Error):
                if self._condition_cursor is not None:
                    self._condition_cursor.close()
                self._con.close()
            self._release()

    # -- health ---------------------------------------------------------------------------------------

    def health(self) -> StoreHealth:
        """A round trip to the file (the recorded schema version) and the head, timed; never raises.
        Opening a file brings its tables to this release's version, so an open store reports it."""

        def probe() -> dict[str, int]:
            self._check_open()
            with self._db_lock:
                found = self._con.execute("select max(version) from eventcore_schema").fetchall()[0][0]
            return {
                "head": self.head(),
                "schema_version": int(found or 0),
                "latest_schema_version": SCHEMA_VERSION,
            }

        return measure_health(f"DuckDBStore {self.path}", probe)

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
