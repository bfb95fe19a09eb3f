"""The DuckDB store: the embedded default, one file and no server, strong at analytics.

A DuckDB transaction costs a millisecond or more while a columnar insert of many rows is cheap, so this
store keeps what the write path needs in the process and talks to DuckDB in batches:

* every stream's version lives in memory (a DuckDB file has one writing process, so it cannot go stale);
  appends are validated against it under a lock, without a DuckDB round trip;
* concurrent appends are **group-committed**: each validated append joins a queue, a writer thread
  commits everything queued in one DuckDB transaction (one appender flush, or Arrow inserts for large
  groups) while the appenders wait, and every append returns only after its group has committed, so a
  successful append is durable;
* recently read or written streams (an LRU bounded by ``cache_events``) and the newest events of the log
  (``tail_events``) are served from memory, so the executor and tailing subscribers rarely touch DuckDB.

Positions are handed out in queue order and groups commit in that order, so the log grows without holes
and a tailing reader can never miss an event. If a group fails to commit, it and every append queued
behind it fail with a retriable :class:`TransactionError` and nothing of them is stored.

Analytics and tools (for the notebooks and the projections package):

* ``store.sql("select stream_id, count(*) from events group by 1")`` runs one read-only query and returns a
  pandas DataFrame; ``events`` is the log table (payload and metadata as JSON text).
* ``store.events_frame(after=0, ...)`` is the log as a DataFrame, filtered in SQL.
* ``store.checkpoint_load(name) -> int`` and ``store.checkpoint_save(name, position)`` keep projection
  checkpoints in the same file (table ``checkpoints``); ``store.checkpoints()`` lists them.
* ``with store.connection() as con:`` lends a DuckDB cursor under the store's lock, for a projection's own
  tables; never write to ``events`` through it.
* ``store.export_events(path)`` and ``store.import_file(path)`` move Parquet/JSON Lines files in bulk;
  ``store.import_events(events)`` loads StoredEvents with one Arrow insert (see :mod:`.bulk`).
* ``store.events_table(...)`` is the log as an Arrow table with payload fields expanded by DuckDB;
  ``projections.events_frame`` builds its DataFrame from it instead of from Python objects.

A second process opening the same file for writing gets :class:`ConnectionFailed` naming the file and the
process that holds it. ``read_only=True`` opens a file for analysis when no writer holds it (DuckDB lets
several read-only processes share a file, but not alongside a writer).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pandas as pd
import pyarrow as pa

from .._gc import gc_paused
from ..core.errors import (
    ConnectionFailed,
    EventFileChanged,
    EventFileMissing,
    InvalidEventFile,
    InvalidFormat,
    MigrationError,
    SerializationError,
    TransactionError,
    VersionConflict,
)
from ..core.events import EventToWrite, ExpectedVersion, Metadata, StoredEvent
from ..core.ids import StreamId, new_event_id
from ..core.registry import EventRegistry, default_registry, schema_version_of
from . import bulk
from .base import StreamsRead, Subscription
from .rules import (
    MAX_PAYLOAD_BYTES,
    check_checkpoint_name,
    check_event_type,
    check_expected,
    check_follows,
    check_limit,
    check_open,
    check_position,
    prepare_append,
    prepare_import,
    stamp_events,
)

#: Version of the tables this module writes; stored in ``eventcore_schema`` for future migrations.
SCHEMA_VERSION = 2

_SCHEMA = """
create table if not exists eventcore_schema (
    version integer not null,
    applied_at timestamptz not null
);
create table if not exists events (
    position bigint primary key,
    event_id uuid not null,
    stream_id varchar not null,
    version bigint not null,
    event_type varchar not null,
    payload json not null,
    metadata json not null,
    recorded_at timestamptz not null,
    schema_version integer not null default 1
);
create table if not exists checkpoints (
    name varchar primary key,
    position bigint not null,
    updated_at timestamptz not null
);
"""

_COLUMNS = ", ".join(bulk.COLUMNS)
#: The events table's columns in order: the bulk columns, then the payload's schema version.
_TABLE_COLUMNS = f"{_COLUMNS}, schema_version"
#: Adds the schema version column to a table made by schema version 1; its rows read as version 1.
_MIGRATE_1_TO_2 = "alter table events add column schema_version integer default 1"

# The bulk file schema, except that event ids go into DuckDB as native UUIDs rather than text.
_ARROW_SCHEMA = bulk.ARROW_SCHEMA.set(
    bulk.ARROW_SCHEMA.get_field_index("event_id"), pa.field("event_id", pa.uuid())
)

_IMPORT_CHUNK = 200_000
#: Groups up to this many rows are inserted with one parameterised statement, larger ones through Arrow.
_SMALL_GROUP = 2_000
#: A writer thread without work for this long ends; the next append starts another.
_WRITER_IDLE_SECONDS = 1.0
_metadata_encoder = msgspec.json.Encoder()
_metadata_decoder = msgspec.json.Decoder(Metadata)

# Files open for writing by a DuckDBStore of this process: DuckDB would hand a second store the same
# database, and two stores each believing they own the versions would corrupt the log.
_open_files: dict[str, str] = {}
_open_files_lock = threading.Lock()


class _Rows:
    """Column lists of events bound for the ``events`` table."""

    __slots__ = (
        "event_ids",
        "metadata",
        "payloads",
        "positions",
        "recorded",
        "schema_versions",
        "streams",
        "types",
        "versions",
    )

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.event_ids: list[uuid.UUID] = []
        self.streams: list[str] = []
        self.versions: list[int] = []
        self.types: list[str] = []
        self.payloads: list[bytes] = []
        self.metadata: list[bytes] = []
        self.recorded: list[datetime] = []
        self.schema_versions: list[int] = []

    def __len__(self) -> int:
        return len(self.positions)

    def extend(self, other: _Rows) -> None:
        for name in self.__slots__:
            getattr(self, name).extend(getattr(other, name))

    def table(self, start: int = 0, stop: int | None = None) -> pa.Table:
        """The rows as Arrow columns, converting ids and timestamps in bulk (per row they cost more
        than DuckDB's whole insert)."""
        cut = slice(start, stop)
        ids = self.event_ids[cut]
        id_bytes = pa.py_buffer(b"".join([u.bytes for u in ids]))
        stamps = self.recorded[cut]
        micros = {at: _micros(at) for at in dict.fromkeys(stamps)}  # an append shares one timestamp
        recorded = pa.array([micros[at] for at in stamps], pa.int64())
        return pa.Table.from_arrays(
            [
                pa.array(self.positions[cut], pa.int64()),
                pa.ExtensionArray.from_storage(
                    pa.uuid(), pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(ids), [None, id_bytes])
                ),
                pa.array(self.streams[cut], pa.string()),
                pa.array(self.versions[cut], pa.int64()),
                pa.array(self.types[cut], pa.string()),
                pa.array(self.payloads[cut], pa.string()),
                pa.array(self.metadata[cut], pa.string()),
                recorded.view(pa.timestamp("us", tz="UTC")),
                pa.array(self.schema_versions[cut], pa.int32()),
            ],
            schema=_ARROW_SCHEMA,
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(at: datetime) -> int:
    """Microseconds since the epoch, exactly (naive times are taken as UTC, as DuckDB would)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (at - _EPOCH) // _MICROSECOND


class _ParquetImport:
    """A Parquet file that DuckDB reads twice, to check it and then to insert it, and the file's
    signature (size, modification time) so that a file changed in between is noticed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self.signature = self._signature()
        self._schema_version: str | None = None

    def _signature(self) -> tuple[int, int]:
        stat = self.path.stat()
        return stat.st_size, stat.st_mtime_ns

    def source(self) -> str:
        return f"read_parquet({_sql_string(str(self.path))}, file_row_number = true)"

    def schema_version_column(self, con: duckdb.DuckDBPyConnection) -> str:
        """The SQL for each row's schema version: the file's column, or 1 for files written before it.
        DuckDB reads the file's schema, so a damaged file fails as a DuckDB error like every other check."""
        if self._schema_version is None:
            empty = con.execute(f"select * from {self.source()} limit 0")
            names = [column[0] for column in empty.description]
            found = "schema_version" in names
            self._schema_version = "coalesce(schema_version, 1)::integer" if found else "1"
        return self._schema_version

    def check_unchanged(self) -> None:
        try:
            unchanged = self._signature() == self.signature
        except OSError:
            unchanged = False
        if not unchanged:
            raise EventFileChanged(f"{self.path.name} changed while it was being imported")


class _Batch:
    """One append (or import) waiting in the group-commit queue; it ends at position ``end``."""

    __slots__ = ("done", "end", "error", "events", "rows", "staged", "streams", "waiter")

    def __init__(
        self,
        rows: _Rows,
        events: list[StoredEvent] | None,
        streams: dict[str, int],
        end: int,
        staged: tuple[_ParquetImport, int] | None = None,
    ) -> None:
        self.rows = rows
        self.events = events  # None for imports: their streams are dropped from the cache instead
        self.streams = streams  # stream id -> version after this batch
        self.end = end
        self.staged = staged  # (Parquet file, first position) of a file import done in SQL
        self.done = False
        self.error: BaseException | None = None
        # Held until the group commits: the appender sleeps on it, so a commit wakes only its own
        # appenders instead of every thread waiting on a shared condition.
        self.waiter = threading.Lock()
        self.waiter.acquire()

    def finish(self, error: BaseException | None = None) -> None:
        if not self.done:
            self.error = error
            self.done = True
            self.waiter.release()


class DuckDBStore:
    """An event store in a DuckDB file (or ``":memory:"``); see the module docstring for the design.

    ``cache_events`` bounds the events kept for recently used streams; ``tail_events`` the newest events
    kept for tailing readers. ``show_progress`` controls bulk progress bars (None: on a terminal only).
    Small commits run DuckDB single-threaded (its worker threads cost more CPU than a few rows are worth);
    analytics, exports and large imports use ``analytics_threads`` (default: every core).
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
        self._versions: dict[str, int] = {}
        self._head = 0
        # ... and the overlay of validated appends waiting in the queue or being committed.
        self._pending: dict[str, int] = {}
        self._next_position = 1
        self._queue: list[_Batch] = []
        self._committing = False
        self._work = threading.Condition(self._lock)  # wakes the writer thread
        self._writer: threading.Thread | None = None
        self._appender: Any = None  # DuckDB appender for small commits, made on first use
        self._cache: OrderedDict[str, list[StoredEvent]] = OrderedDict()
        self._cached = 0
        self._tail: list[StoredEvent] = []
        self._tail_start = 1
        self._load()

    # -- opening -------------------------------------------------------------------------------------

    @staticmethod
    def _claim(path: str, read_only: bool) -> str | None:
        if path == ":memory:" or path.startswith(":memory:") or read_only:
            return None
        key = os.path.realpath(path)
        with _open_files_lock:
            if key in _open_files:
                raise ConnectionFailed(
                    f"DuckDB file {path} is already open for writing by another DuckDBStore in this process; "
                    "share that store or close it first",
                    retriable=False,
                )
            _open_files[key] = path
        return key

    def _release(self) -> None:
        if self._key is not None:
            with _open_files_lock:
                _open_files.pop(self._key, None)
            self._key = None

    def _migrate(self) -> None:
        con = self._con
        try:
            tables = {row[0] for row in con.execute("select table_name from duckdb_tables()").fetchall()}
            if "eventcore_schema" in tables:
                row = con.execute("select max(version) from eventcore_schema").fetchall()[0]
                found = row[0] or 0
                if found > SCHEMA_VERSION:
                    raise MigrationError(
                        f"DuckDB file {self.path} has schema version {found}, newer than this eventcore-lab "
                        f"understands ({SCHEMA_VERSION}); upgrade eventcore-lab"
                    )
                if found == SCHEMA_VERSION:
                    return
                if found == 1 and not self.read_only:
                    con.execute("begin")
                    con.execute(_MIGRATE_1_TO_2)
                    con.execute("insert into eventcore_schema values (?, now())", [SCHEMA_VERSION])
                    con.execute("commit")
                    return
            if self.read_only:
                raise MigrationError(
                    f"DuckDB file {self.path} holds no eventcore-lab event store (schema version "
                    f"{SCHEMA_VERSION}); open it once for writing to create one"
                )
            con.execute("begin")
            con.execute(_SCHEMA)
            con.execute("insert into eventcore_schema values (?, now())", [SCHEMA_VERSION])
            con.execute("commit")
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("rollback")
            raise MigrationError(f"cannot create the event tables in {self.path}: {exc}") from exc

    def _load(self) -> None:
        """Read every stream's version and the head position: all the write path needs."""
        rows = self._con.execute(
            "select stream_id, max(version) from events group by stream_id order by min(position)"
        ).fetchall()
        self._versions = dict(rows)
        self._head = self._con.execute("select coalesce(max(position), 0) from events").fetchall()[0][0]
        self._next_position = self._head + 1
        self._tail_start = self._head + 1

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"<DuckDBStore {self.path!r} ({mode}): {self._head} events in {len(self._versions)} streams>"

    # -- writing -------------------------------------------------------------------------------------

    def append(
        self, events: Sequence[EventToWrite], expected: Mapping[str, ExpectedVersion] | None = None
    ) -> list[StoredEvent]:
        prepared, checks = prepare_append(events, expected, self.registry, self.max_payload_bytes)
        self._check_writable()
        if not prepared:
            with self._lock:
                check_expected(checks, self._version_with_pending)
            return []
        rows = _Rows()
        with self._lock:
            check_expected(checks, self._version_with_pending)
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
            batch = self._enqueue(rows, stored, versions, stored[-1].position + 1)
        self._wait_durable(batch)
        return stored

    def import_events(self, events: Iterable[StoredEvent], *, progress: bool | None = None) -> int:
        """Load stored events with one Arrow insert; positions are renumbered, all else kept.

        The events are checked by :func:`.rules.prepare_import` (the same rules as every store); each
        stream's first event must follow its current version. Nothing is stored when any is refused.
        """
        self._check_writable()
        show = self.show_progress if progress is None else progress
        items = events if isinstance(events, list | tuple) else list(events)
        with gc_paused(), bulk.progress_bar(total=len(items), desc="validate import", progress=show) as bar:
            batch = prepare_import(items, self.registry, self.max_payload_bytes)
            bar.update(len(items))
        if not batch.events:
            return 0
        rows = _Rows()
        rows.event_ids = [e.event_id for e in batch.events]
        rows.streams = [e.stream_id for e in batch.events]
        rows.versions = [e.version for e in batch.events]
        rows.types = [e.event_type for e in batch.events]
        rows.payloads = batch.payloads
        rows.metadata = batch.metadata
        rows.recorded = [e.recorded_at for e in batch.events]
        rows.schema_versions = [schema_version_of(e.payload) for e in batch.events]
        with self._lock:
            self._check_writable()
            check_follows(batch.first_versions, self._version_with_pending)
            start = self._next_position
            rows.positions = list(range(start, start + len(rows.streams)))
            queued = self._enqueue(rows, None, batch.last_versions, start + len(rows.streams))
        self._wait_durable(queued)
        return len(rows)

    def _check_follows(self, first_version: Mapping[str, int]) -> None:
        """Refuse an import whose first event of a stream does not follow that stream's version."""
        check_follows(first_version, self._version_with_pending)

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            raise TransactionError(f"the DuckDB store {self.path} was opened read-only; it cannot be written")

    def _version_with_pending(self, stream_id: str) -> int:
        version = self._pending.get(stream_id)
        return self._versions.get(stream_id, 0) if version is None else version

    def _enqueue(
        self,
        rows: _Rows,
        events: list[StoredEvent] | None,
        versions: dict[str, int],
        end: int,
        staged: _ParquetImport | None = None,
    ) -> _Batch:
        """Reserve positions ``self._next_position`` .. ``end - 1`` and the versions of a validated batch.

        Caller holds ``self._lock``.
        """
        self._check_open()
        batch = _Batch(
            rows, events, versions, end - 1, None if staged is None else (staged, self._next_position)
        )
        self._pending.update(versions)
        self._next_position = end
        self._queue.append(batch)
        self._start_writer()
        return batch

    def _wait_durable(self, batch: _Batch) -> None:
        """Return once ``batch`` is committed (raise its error if its group failed)."""
        batch.waiter.acquire()
        if batch.error is not None:
            raise batch.error

    def _start_writer(self) -> None:
        """Make sure a writer thread serves the queue. Caller holds ``self._lock``."""
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_loop, name=f"duckdb-writer {self.path}", daemon=True
            )
            self._writer.start()
        else:
            self._work.notify()

    def _write_loop(self) -> None:
        """Commit everything queued in one transaction, again and again, until idle or closed.

        One thread does all commits, so that appenders keep deciding their next command while DuckDB
        commits (it releases the GIL): everything queued meanwhile goes into the next commit. A
        commit wakes only its own appenders (each waits on its batch), not every waiting thread.
        Waiting for more appends before committing (bigger groups, less DuckDB CPU per append) was
        measured slower: DuckDB and Python then stop overlapping. The thread ends after a second
        without work (a store left open holds no idle thread); the next append starts a new one.
        """
        group: list[_Batch] = []
        with self._lock:
            try:
                while True:
                    if not self._queue and not self._closed:
                        self._work.wait(_WRITER_IDLE_SECONDS)
                    if not self._queue:
                        return
                    group, self._queue = self._queue, []
                    self._committing = True
                    self._lock.release()
                    try:
                        error = self._commit_group(group)
                    finally:
                        self._lock.acquire()
                    if error is None:
                        self._publish(group)
                    else:
                        self._fail(group, error)
                    self._committing = False
                    self._changed.notify_all()
            except BaseException as exc:  # a bug here must not leave appenders waiting forever
                self._fail(group, exc)
                raise
            finally:
                self._writer = None
                self._committing = False
                self._changed.notify_all()

    def _commit_group(self, group: list[_Batch]) -> BaseException | None:
        """Write ``group`` in one DuckDB transaction; return the error instead of raising it.

        Runs in the writer thread without ``self._lock``, so appenders keep validating meanwhile.
        """
        rows = group[0].rows
        if len(group) > 1:
            rows = _Rows()
            for batch in group:
                rows.extend(batch.rows)
        staged = [batch.staged for batch in group if batch.staged is not None]
        with self._db_lock:
            con = self._con
            try:
                if staged:
                    self._insert_staged(rows, staged)
                elif len(rows) <= _SMALL_GROUP:
                    # One call, one implicit transaction: every call into DuckDB gives up the GIL, and
                    # with many client threads getting it back can cost a whole switch interval.
                    if self._appender is None:
                        self._appender = con.appender("events")
                    _insert_small(self._appender, rows)
                elif len(rows) <= _IMPORT_CHUNK:
                    # one Arrow insert on one DuckDB thread: measured faster than two threads here
                    with gc_paused():
                        con.from_arrow(rows.table()).insert_into("events")
                else:
                    with self._parallel(), gc_paused():
                        try:
                            con.execute("begin")
                            for start in range(0, len(rows), _IMPORT_CHUNK):
                                con.from_arrow(rows.table(start, start + _IMPORT_CHUNK)).insert_into("events")
                            con.execute("commit")
                        except BaseException:
                            with contextlib.suppress(duckdb.Error):
                                con.execute("rollback")
                            raise
            except BaseException as exc:
                with contextlib.suppress(duckdb.Error):
                    con.execute("rollback")
                return exc
        return None

    def _insert_staged(self, rows: _Rows, staged: list[tuple[_ParquetImport, int]]) -> None:
        """Commit Arrow rows and Parquet imports in one transaction. Caller holds ``self._db_lock``."""
        con = self._con
        with self._parallel(), gc_paused():
            try:
                con.execute("begin")
                for start in range(0, len(rows), _IMPORT_CHUNK):
                    con.from_arrow(rows.table(start, start + _IMPORT_CHUNK)).insert_into("events")
                for parquet, first in staged:
                    parquet.check_unchanged()
                    [(inserted,)] = con.execute(
                        f"insert into events select {int(first)} + file_row_number, event_id::uuid, "
                        "stream_id, version, event_type, payload::json, metadata::json, "
                        f"recorded_at::timestamptz, {parquet.schema_version_column(con)} "
                        f"from {parquet.source()}"
                    ).fetchall()
                    if inserted != parquet.count:
                        raise EventFileChanged(f"{parquet.path.name} changed while it was being imported")
                con.execute("commit")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("rollback")
                raise

    def _publish(self, group: list[_Batch]) -> None:
        """Make a committed group visible to readers. Holds both locks."""
        versions, pending, cache = self._versions, self._pending, self._cache
        for batch in group:
            for sid, version in batch.streams.items():
                versions[sid] = version
                if pending.get(sid) == version:
                    del pending[sid]
            if batch.events is None:
                for sid in batch.streams:
                    dropped = cache.pop(sid, None)
                    if dropped is not None:
                        self._cached -= len(dropped)
                self._tail = []
                self._tail_start = batch.end + 1
            else:
                for event in batch.events:
                    events = cache.get(event.stream_id)
                    if events is not None:
                        events.append(event)
                        self._cached += 1
                    elif event.version == 1:
                        cache[event.stream_id] = [event]
                        self._cached += 1
                self._tail.extend(batch.events)
        self._head = group[-1].end
        self._trim()
        for batch in group:
            batch.finish()

    def _fail(self, group: list[_Batch], error: BaseException) -> None:
        """Fail ``group`` and everything queued behind it (validated against it), and forget them."""
        if isinstance(error, duckdb.Error):
            error = TransactionError(f"DuckDB could not commit to {self.path}: {error}", retriable=True)
        for batch in group + self._queue:
            batch.finish(error)
        self._queue = []
        self._pending = {}
        self._next_position = self._head + 1

    def _trim(self) -> None:
        """Keep the cache and the tail within their budgets. Caller holds ``self._lock``."""
        cache = self._cache
        while self._cached > self.cache_events and len(cache) > 1:
            _, events = cache.popitem(last=False)
            self._cached -= len(events)
        if len(self._tail) > 2 * self.tail_events:
            drop = len(self._tail) - self.tail_events
            del self._tail[:drop]
            self._tail_start += drop

    # -- reading -------------------------------------------------------------------------------------

    def read_stream(self, stream_id: str, *, after_version: int = 0) -> list[StoredEvent]:
        self._check_open()
        sid = StreamId(stream_id)
        return self.registry.current(self._stream(sid)[check_position(after_version, "after_version") :])

    def read_streams(self, stream_ids: Iterable[str]) -> StreamsRead:
        self._check_open()
        ids = list(dict.fromkeys(StreamId(s) for s in stream_ids))
        found: dict[str, list[StoredEvent]] = {}
        with self._lock:
            missing = [sid for sid in ids if not self._cached_copy(sid, found)]
        if missing:
            with self._db_lock, self._lock:
                # Both locks: DuckDB and memory agree, so what is read now can be cached.
                still = [sid for sid in missing if not self._cached_copy(sid, found)]
                if still:
                    for sid, events in self._fetch_streams(still).items():
                        found[sid] = events
                        self._remember(sid, events)
        lists = [found[sid] for sid in ids if found[sid]]
        if len(lists) == 1:
            merged = lists[0]
        else:
            merged = sorted((e for events in lists for e in events), key=_by_position)
        return StreamsRead(self.registry.current(merged), {sid: len(found[sid]) for sid in ids})

    def _stream(self, sid: str) -> list[StoredEvent]:
        found: dict[str, list[StoredEvent]] = {}
        with self._lock:
            if self._cached_copy(sid, found):
                return found[sid]
        with self._db_lock, self._lock:
            if not self._cached_copy(sid, found):
                found[sid] = self._fetch_streams([sid])[sid]
                self._remember(sid, found[sid])
        return found[sid]

    def _cached_copy(self, sid: str, into: dict[str, list[StoredEvent]]) -> bool:
        """Copy a stream from memory into ``into`` if it is cached or known empty. Holds ``self._lock``."""
        if self._versions.get(sid, 0) == 0:
            into[sid] = []
            return True
        events = self._cache.get(sid)
        if events is None:
            return False
        self._cache.move_to_end(sid)
        into[sid] = events[:]
        return True

    def _remember(self, sid: str, events: list[StoredEvent]) -> None:
        if events and len(events) == self._versions.get(sid, 0) and sid not in self._cache:
            self._cache[sid] = events[:]
            self._cached += len(events)
            self._trim()

    def _fetch_streams(self, ids: Sequence[str]) -> dict[str, list[StoredEvent]]:
        """Read whole streams from DuckDB. Caller holds ``self._db_lock``."""
        result: dict[str, list[StoredEvent]] = {sid: [] for sid in ids}
        if not ids:
            return result
        self._check_open()
        rows = self._con.execute(
            f"select {_TABLE_COLUMNS} from events where stream_id in (select unnest(?)) order by position",
            [list(ids)],
        ).fetchall()
        for event in self._decode(rows):
            result[event.stream_id].append(event)
        return result

    def _decode(self, rows: list[tuple[Any, ...]]) -> list[StoredEvent]:
        decode = self.registry.read_event
        events = []
        for position, event_id, stream, version, event_type, payload, metadata, recorded, schema in rows:
            current_type, decoded = decode(event_type, payload, schema)
            events.append(
                StoredEvent(
                    event_id=event_id,
                    stream_id=stream,
                    version=version,
                    position=position,
                    event_type=current_type,
                    payload=decoded,
                    metadata=_metadata_decoder.decode(metadata),
                    recorded_at=recorded.astimezone(UTC),
                )
            )
        return events

    def read_all(self, *, after: int = 0, limit: int | None = None) -> list[StoredEvent]:
        self._check_open()
        after, limit = check_position(after), check_limit(limit)
        with self._lock:
            head = self._head
            if after >= head or limit == 0:
                return []
            if after + 1 >= self._tail_start:
                start = after + 1 - self._tail_start
                return self.registry.current(self._tail[start : None if limit is None else start + limit])
        with self._db_lock:
            self._check_open()
            query = (
                f"select {_TABLE_COLUMNS} from events where position > ? and position <= ? order by position"
            )
            params: list[Any] = [after, head]
            if limit is not None:
                query += " limit ?"
                params.append(limit)
            rows = self._con.execute(query, params).fetchall()
        return self._decode(rows)

    def stream_version(self, stream_id: str) -> int:
        self._check_open()
        sid = StreamId(stream_id)
        with self._lock:
            return self._versions.get(sid, 0)

    def stream_ids(self) -> list[str]:
        """Every stream that has events, in order of first event."""
        self._check_open()
        with self._lock:
            return list(self._versions)

    def head(self) -> int:
        self._check_open()
        with self._lock:
            return self._head

    def wait_for_events(self, after: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._head > after or self._closed, timeout) and (
                self._head > after
            )

    def subscribe(self, *, after: int = 0, batch_size: int = 500) -> Subscription:
        self._check_open()
        return Subscription(self, after=check_position(after), batch_size=batch_size)

    # -- analytics -------------------------------------------------------------------------------------

    def sql(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run one read-only SQL statement (SELECT, WITH, DESCRIBE, ...) and return a DataFrame.

        Tables: ``events`` (the log; payload and metadata are JSON text) and ``checkpoints``. Statements
        that change anything are refused, so analysis cannot damage the log.
        """
        with self._db_lock:
            self._check_open()
            try:
                statements = self._con.extract_statements(query)
            except duckdb.Error as exc:
                raise InvalidFormat(f"cannot parse the SQL query: {exc}") from exc
            if len(statements) != 1:
                raise InvalidFormat(f"store.sql runs exactly one statement, got {len(statements)}")
            kind = statements[0].type
            if kind not in _READ_ONLY_STATEMENTS:
                raise InvalidFormat(
                    f"store.sql runs read-only queries; got a {kind.name} statement. Use store.connection() "
                    "for your own tables"
                )
            try:
                with self._parallel() as con:
                    return con.execute(query, params).df()
            except duckdb.Error as exc:
                raise InvalidFormat(f"the SQL query failed: {exc}") from exc

    def events_table(
        self,
        *,
        after: int = 0,
        until: int | datetime | None = None,
        stream_ids: Iterable[str] | None = None,
        event_types: Iterable[str] | None = None,
        fields: Callable[[list[str]], Mapping[str, str] | None] = lambda types: {},
    ) -> pa.Table | None:
        """The log as an Arrow table with payload fields expanded by DuckDB, for vectorised replays.

        ``projections.events_frame`` uses this instead of decoding events in Python: DuckDB filters,
        parses the JSON once per row (``json_transform``) and hands over columns. ``fields`` gets the
        event types present, in order of first appearance, and returns the payload fields to extract
        (name -> DuckDB type), or None when they cannot be, and then this returns None (as it does when
        DuckDB cannot read a payload field as declared). ``until`` is a position or a time (the log up
        to the last event recorded at or before it, a prefix of the log).

        Columns: position, stream_id, version, event_type, recorded_at, event_id (16 bytes, big-endian),
        correlation_id, causation_id, user_id, then the payload fields; rows in position order.
        """
        where: list[str] = ["position > ?", "position <= ?"]
        params: list[Any] = [after, self.head()]
        if isinstance(until, datetime):
            where.append("position < coalesce((select min(position) from events where recorded_at > ?), ?)")
            params += [until, params[1] + 1]
        elif until is not None:
            where.append("position <= ?")
            params.append(until)
        if stream_ids is not None:
            where.append("stream_id in (select unnest(?))")
            params.append([str(s) for s in stream_ids])  # matched verbatim, like a filter in Python
        wanted_types = None if event_types is None else list(event_types)
        if wanted_types is not None and self.registry.evolution is None:
            where.append("event_type in (select unnest(?))")
            params.append(wanted_types)
            wanted_types = None
        condition = " and ".join(where)
        with self._parallel() as con:
            present = con.execute(
                f"select event_type, schema_version from events where {condition} "
                "group by event_type, schema_version order by min(position)",
                params,
            ).fetchall()
            upcast = _upcast_rows(con, self.registry, present, condition, params, wanted_types)
            if wanted_types is not None:  # stored names are filtered in SQL, upcast ones in Python
                present = [(t, v) for t, v in present if t in wanted_types]
                condition += " and event_type in (select unnest(?))"
                params.append(wanted_types)
            names = [t for t, _ in present if upcast is None or (t, _) not in upcast.stale]
            if upcast is not None:
                names += upcast.types
            wanted = fields(list(dict.fromkeys(names)))
            if wanted is None:
                return None
            structure = _sql_string(msgspec.json.encode(dict(wanted)).decode()) if wanted else None
            envelope = (
                "select position, stream_id, version, EVENT_TYPE as event_type, recorded_at, "
                "event_id::blob as event_id, unnest(json_transform(metadata, "
                """'{"correlation_id":"VARCHAR","causation_id":"VARCHAR","user_id":"VARCHAR"}'))"""
            )
            payload = f", unnest(json_transform(payload, {structure}))" if structure else ""
            query = envelope.replace("EVENT_TYPE", "event_type") + f"{payload} from events where {condition}"
            if upcast is not None:
                # rows stored at an older schema: their payloads were upcast in Python; DuckDB still
                # expands them, so that both kinds of rows get exactly the same column types
                con.register("eventcore_upcast", upcast.table)
                fresh = f", unnest(json_transform(u.payload::json, {structure}))" if structure else ""
                query = (
                    f"{query} and position not in (select position from eventcore_upcast) union all "
                    + envelope.replace("EVENT_TYPE", "u.event_type")
                    + f"{fresh} from events join eventcore_upcast u using (position) order by position"
                )
            # No ORDER BY otherwise: DuckDB keeps insertion order, which is position order but for rare
            # groups mixing appends and file imports; sorting 1M rows would cost more than the whole scan.
            try:
                table = con.sql(query, params=params).to_arrow_table()
            except duckdb.Error:
                return None  # a payload DuckDB cannot read as declared (e.g. an int beyond 64 bits)
            finally:
                if upcast is not None:
                    con.unregister("eventcore_upcast")
        positions = table.column("position").to_numpy()
        if len(positions) > 1 and not (positions[1:] > positions[:-1]).all():
            table = table.sort_by("position")
        return table

    def events_frame(
        self,
        *,
        after: int = 0,
        until: int | None = None,
        stream_ids: Iterable[str] | None = None,
        event_types: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """The log (or a slice of it) as a DataFrame, one row per event, filtered inside DuckDB."""
        where: list[str] = ["position > ?"]
        params: list[Any] = [after]
        if until is not None:
            where.append("position <= ?")
            params.append(until)
        if stream_ids is not None:
            where.append("stream_id in (select unnest(?))")
            params.append([StreamId(s) for s in stream_ids])
        if event_types is not None:
            where.append("event_type in (select unnest(?))")
            params.append(list(event_types))
        query = (
            "select position, event_id, stream_id, version, event_type, payload::varchar as payload, "
            "metadata::varchar as metadata, recorded_at from events "
            f"where {' and '.join(where)} order by position"
        )
        with self._parallel() as con:
            return con.execute(query, params).df()

    @contextlib.contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Lend a DuckDB cursor, holding the store's lock, for your own tables (never write ``events``)."""
        with self._parallel() as con:
            cursor = con.cursor()
            try:
                yield cursor
            finally:
                cursor.close()

    def checkpoint_load(self, name: str) -> int:
        """The position saved under ``name`` (0 when none was saved)."""
        name = check_checkpoint_name(name)
        with self._db_lock:
            self._check_open()
            rows = self._con.execute("select position from checkpoints where name = ?", [name]).fetchall()
        return int(rows[0][0]) if rows else 0

    def checkpoint_save(self, name: str, position: int) -> None:
        """Save ``position`` under ``name``, durably, in the store's file."""
        name, position = check_checkpoint_name(name), check_position(position, "position")
        self._check_writable()
        with self._db_lock:
            self._con.execute("insert or replace into checkpoints values (?, ?, now())", [name, position])

    def checkpoints(self) -> pd.DataFrame:
        """Every saved checkpoint: name, position, updated_at."""
        with self._db_lock:
            self._check_open()
            return self._con.execute("select * from checkpoints order by name").df()

    # -- bulk ------------------------------------------------------------------------------------------

    def export_events(
        self, path: str | os.PathLike[str], *, after: int = 0, progress: bool | None = None
    ) -> int:
        """Write the log after ``after`` to a .parquet (by DuckDB itself), .jsonl or .jsonl.gz file."""
        target = Path(path)
        if bulk._format_of(target) != "parquet":
            show = self.show_progress if progress is None else progress
            return bulk.write_events(bulk.iter_store(self, after=after), target, self.registry, progress=show)
        with self._parallel() as con:
            head = self._head
            con.execute(
                "copy (select position, event_id::varchar as event_id, stream_id, version, event_type, "
                "payload::varchar as payload, metadata::varchar as metadata, recorded_at, schema_version "
                f"from events where position > {int(after)} and position <= {int(head)} order by position) "
                f"to {_sql_string(str(target))} (format parquet, compression zstd)"
            )
        return max(0, head - after)

    def import_file(self, path: str | os.PathLike[str], *, progress: bool | None = None) -> int:
        """Import a .parquet, .jsonl or .jsonl.gz event file (see :mod:`.bulk`); all-or-nothing.

        Parquet files are checked and loaded by DuckDB straight from the file (versions, types, JSON,
        ids), without Python objects or a staging copy, which is the fastest way in; payloads are
        checked to be JSON objects of a registered type, not decoded. A file changed between the check
        and the insert is refused. Other formats go through :meth:`import_events`.
        """
        target = Path(path)
        show = self.show_progress if progress is None else progress
        if bulk._format_of(target) != "parquet":
            return self.import_events(bulk.read_events(target, self.registry, progress=show), progress=show)
        self._check_writable()
        if not target.is_file():
            raise EventFileMissing(f"event file {target} does not exist")
        parquet = _ParquetImport(target)
        with self._db_lock:
            try:
                with self._parallel() as con:
                    first, last = self._check_parquet(con, parquet)
            except (duckdb.Error, UnicodeDecodeError, pa.ArrowException) as exc:  # damaged pages, bad text
                raise InvalidEventFile(f"{target.name} is not a readable event file: {exc}") from exc
        if parquet.count == 0:
            return 0
        with self._lock:
            self._check_follows(first)
            batch = self._enqueue(_Rows(), None, last, self._next_position + parquet.count, staged=parquet)
        self._wait_durable(batch)
        return parquet.count

    def _check_parquet(
        self, con: duckdb.DuckDBPyConnection, parquet: _ParquetImport
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Validate a Parquet import in SQL; return each stream's first and last version."""
        name, source = parquet.path.name, parquet.source()
        nulls, bad_ids, bad_json, count, types = con.execute(
            "select count(*) filter (where event_id is null or stream_id is null or version is null "
            "or event_type is null or payload is null or metadata is null or recorded_at is null), "
            "count(*) filter (where try_cast(event_id as uuid) is null), "
            "count(*) filter (where json_type(try_cast(payload as json)) is distinct from 'OBJECT' "
            # a correlation_id can only be read from an object
            "or (try_cast(metadata as json) ->> 'correlation_id') is null), "
            f"count(*), list(distinct event_type) from {source}"
        ).fetchall()[0]
        if nulls or bad_ids or bad_json:
            raise InvalidEventFile(
                f"{name}: {nulls} rows with missing fields, {bad_ids} with invalid event ids, "
                f"{bad_json} with payload or metadata that are not JSON objects "
                "(metadata needs a correlation_id)"
            )
        for event_type in types:
            check_event_type(event_type)
        self._check_parquet_rows(con, parquet)
        parquet.count = count
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        rows = con.execute(
            "select stream_id, min(gap), max(gap), max(version) from (select stream_id, version, "
            "version - row_number() over (partition by stream_id order by file_row_number) as gap "
            f"from {source}) group by stream_id"
        ).fetchall()
        for stream, low, high, top in rows:
            if StreamId(stream) != stream:
                raise InvalidEventFile(f"{name}: stream id {stream!r} has surrounding whitespace")
            if low != high:
                raise VersionConflict({stream: (f"consecutive versions in {name}", low + 1)})
            first[stream] = low + 1
            last[stream] = top
        return first, last

    def _check_parquet_rows(self, con: duckdb.DuckDBPyConnection, parquet: _ParquetImport) -> None:
        """Decode every payload and metadata of a Parquet import as a read will: nothing that cannot be
        read back is imported (the same rule as :func:`.rules.prepare_import`; types not registered are
        kept as they are, like UnknownEvent). Duplicate event ids are refused too."""
        name, source = parquet.path.name, parquet.source()
        [(distinct, total)] = con.execute(
            f"select count(distinct event_id), count(*) from {source}"
        ).fetchall()
        if distinct != total:
            raise InvalidEventFile(f"{name}: {total - distinct} event ids appear more than once")
        kinds = con.execute(f"select distinct typeof(recorded_at) from {source}").fetchall()
        if any(kind != "TIMESTAMP WITH TIME ZONE" for (kind,) in kinds):
            raise InvalidEventFile(f"{name}: recorded_at is not a UTC timestamp (got {kinds[0][0]})")
        reader = con.sql(
            f"select file_row_number, event_type, payload, metadata, {parquet.schema_version_column(con)} "
            f"as schema_version from {source}"
        ).to_arrow_reader(50_000)
        registry = self.registry
        try:
            for batch in reader:
                columns = batch.to_pydict()
                rows = zip(
                    columns["file_row_number"],
                    columns["event_type"],
                    columns["payload"],
                    columns["metadata"],
                    columns["schema_version"],
                    strict=True,
                )
                for row, event_type, payload, metadata, schema_version in rows:
                    try:
                        if registry.knows(event_type) or registry.evolution is not None:
                            registry.read(event_type, payload, schema_version)
                        bulk.decode_file_metadata(metadata)
                    except (SerializationError, msgspec.DecodeError) as exc:
                        raise SerializationError(
                            f"{name} row {row}: the {event_type} event cannot be read back: {exc}"
                        ) from exc
        finally:
            reader.close()

    # -- lifecycle -------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        check_open(self._closed, f"the DuckDBStore {self.path}")

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
                self._con.close()
            self._release()

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_READ_ONLY_STATEMENTS = {
    duckdb.StatementType.SELECT,
    duckdb.StatementType.EXPLAIN,
    duckdb.StatementType.PRAGMA,
}

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def _connect(path: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open the file, turning DuckDB's errors into ConnectionFailed messages a person can act on."""
    if read_only and path != ":memory:" and not Path(path).exists():
        raise ConnectionFailed(
            f"DuckDB file {path} does not exist; cannot open it read-only", retriable=False
        )
    try:
        con = duckdb.connect(path, read_only=read_only)
    except duckdb.IOException as exc:
        holder = _LOCK_HOLDER.search(str(exc))
        if holder:
            raise ConnectionFailed(
                f"DuckDB file {path} is in use by another process "
                f"({holder['program']}, PID {holder['pid']}): "
                "a DuckDB file has a single writing process. Stop that process, or share its store; "
                "read-only opening also needs the writer to be gone",
                retriable=False,
            ) from exc
        raise ConnectionFailed(f"cannot open DuckDB file {path}: {exc}", retriable=False) from exc
    except duckdb.Error as exc:
        raise ConnectionFailed(
            f"cannot open DuckDB file {path}: {exc}. In one process, open a file once and share the store",
            retriable=False,
        ) from exc
    con.execute("set TimeZone = 'UTC'")
    con.execute("set threads = 1")
    return con


class _Upcast:
    """The rows of a columnar read stored at an older schema, upcast in Python: (position, current type,
    current payload JSON) as an Arrow table, the stale (type, version) pairs and the types they became."""

    def __init__(self, table: pa.Table, stale: set[tuple[str, int]], types: list[str]) -> None:
        self.table = table
        self.stale = stale
        self.types = types


def _upcast_rows(
    con: duckdb.DuckDBPyConnection,
    registry: EventRegistry,
    present: list[tuple[str, int]],
    condition: str,
    params: list[Any],
    wanted_types: list[str] | None,
) -> _Upcast | None:
    """Upcast only the rows whose (type, schema version) is not current; None when there are none."""
    evolution = registry.evolution
    if evolution is None:
        return None
    stale = set()
    for event_type, version in present:
        if not evolution.is_current(event_type, version):
            stale.add((event_type, version))
    if not stale:
        return None
    pairs = ", ".join(f"({_sql_string(t)}, {int(v)})" for t, v in sorted(stale))
    rows = con.execute(
        f"select position, event_type, payload::varchar, schema_version from events where {condition} "
        f"and (event_type, schema_version) in ({pairs}) order by position",
        params,
    ).fetchall()
    positions, types, payloads = [], [], []
    for position, event_type, payload, version in rows:
        current_type, decoded = registry.read_event(event_type, payload, version)
        if wanted_types is not None and current_type not in wanted_types:
            continue
        positions.append(position)
        types.append(current_type)
        payloads.append(registry.encode(decoded).decode())
    table = pa.table(
        {
            "position": pa.array(positions, pa.int64()),
            "event_type": pa.array(types, pa.string()),
            "payload": pa.array(payloads, pa.string()),
        }
    )
    return _Upcast(table, stale, list(dict.fromkeys(types)))


def _insert_small(appender: Any, rows: _Rows) -> None:
    """Insert a few rows through DuckDB's appender: its flush is one statement (one implicit
    transaction, one release of the GIL), and it skips parsing and planning an INSERT per commit."""
    try:
        appender.append_rows(
            zip(
                rows.positions,
                rows.event_ids,
                rows.streams,
                rows.versions,
                rows.types,
                [p.decode() for p in rows.payloads],
                [m.decode() for m in rows.metadata],
                rows.recorded,
                rows.schema_versions,
                strict=True,
            )
        )
        appender.flush()
    except BaseException:
        appender.clear()
        raise


def _sql_string(text: str) -> str:
    """``text`` as an SQL string literal (COPY takes no parameter for its file name)."""
    return "'" + text.replace("'", "''") + "'"


def _by_position(event: StoredEvent) -> int:
    return event.position
