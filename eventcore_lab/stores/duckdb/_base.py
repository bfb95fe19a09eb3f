"""The state every part of the DuckDB store shares, and the checks they all make.

The store is assembled from one mixin per concern (connection, writer, reading, analytics); this base
names the attributes they share, so that each module can be read (and type-checked) on its own.
Locks: ``_db_lock`` guards the DuckDB connection and is taken before ``_lock``, never after; ``_lock``
guards the in-memory state (versions, head, queue, cache, tail).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import duckdb

from ...core.errors import TransactionError
from ...core.events import StoredEvent
from ...core.registry import EventRegistry
from .._query_index import QueryIndex
from .._stream_cache import StreamCache
from ..rules import check_open
from ._batches import _Batch


class _DuckDBBase:
    """The attributes the parts of the store share (set by ``DuckDBStore.__init__``)."""

    registry: EventRegistry
    max_payload_bytes: int
    read_only: bool
    cache_events: int
    tail_events: int
    show_progress: bool | None
    analytics_threads: int
    path: str
    _key: str | None
    _con: duckdb.DuckDBPyConnection
    _db_lock: threading.RLock
    _lock: threading.Lock
    _changed: threading.Condition
    _closed: bool
    _versions: dict[str, int]
    _head: int
    _pending: dict[str, int]
    _next_position: int
    _queue: list[_Batch]
    _in_flight: list[_Batch]
    _condition_cursor: duckdb.DuckDBPyConnection | None
    _committing: bool
    _work: threading.Condition
    _writer: threading.Thread | None
    _appender: Any
    _cache: StreamCache
    _read_hook: Callable[[list[str]], None] | None
    _commit_hook: Callable[[int], None] | None
    _tail: list[StoredEvent]
    _tail_start: int
    _index: QueryIndex  # tag/type -> positions up to the published head (see ._queries)
    _streams_indexed: int  # the index's stream -> positions is complete up to here (see ._reading)

    def _check_open(self) -> None:
        check_open(self._closed, f"the DuckDBStore {self.path}")

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            raise TransactionError(f"the DuckDB store {self.path} was opened read-only; it cannot be written")

    @contextlib.contextmanager
    def _parallel(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the DuckDB lock with DuckDB's worker threads enabled, for large queries."""
        with self._db_lock:
            self._check_open()
            self._con.execute(f"set threads = {int(self.analytics_threads)}")
            try:
                yield self._con
            finally:
                self._con.execute("set threads = 1")
