"""The DuckDB store's write path: validated appends queue up and one writer thread group-commits them.

A DuckDB transaction costs a millisecond or more while a columnar insert of many rows is cheap, so
appends are validated in memory under ``_lock`` and queued; one writer thread commits everything queued
in one transaction and wakes only that group's appenders. A group that fails is committed again batch
by batch, so that one append the database refuses fails alone (see :meth:`_WriterMixin._recover`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import duckdb

from ...core.errors import (
    EventCoreError,
    EventFileChanged,
    StoreError,
    TransactionError,
    VersionConflict,
)
from ...core.events import StoredEvent
from ..rules import check_follows
from ._base import _DuckDBBase
from ._batches import (
    _Batch,
    _ParquetImport,
    _Rows,
)
from ._index import index_from_file

_IMPORT_CHUNK = 200_000


#: Groups up to this many rows are inserted with one parameterised statement, larger ones through Arrow.
_SMALL_GROUP = 2_000


#: The longest a writer waits for one more append while it gathers a group (see ``_gather``): after
#: a slow commit (a large import), appenders are not held back by its length.
_GATHER_MAX_SECONDS = 0.002


#: A writer thread without work for this long ends; the next append starts another.
_WRITER_IDLE_SECONDS = 1.0


#: DuckDB errors that another attempt may not meet (a busy or short-of-memory database); any other
#: refusal (a constraint, a conversion, invalid input) would fail again the same way.
_TRANSIENT_DUCKDB_ERRORS = (
    duckdb.TransactionException,
    duckdb.OutOfMemoryException,
    duckdb.IOException,
    duckdb.InterruptException,
)


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
                [list(t) for t in rows.tags],
                strict=True,
            )
        )
        appender.flush()
    except BaseException:
        appender.clear()
        raise


class _WriterMixin(_DuckDBBase):
    """Queueing validated appends and committing them in groups."""

    def _check_follows(self, first_version: Mapping[str, int]) -> None:
        """Refuse an import whose first event of a stream does not follow that stream's version."""
        check_follows(first_version, self._version_with_pending)

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
        checked: Iterable[str] = (),
    ) -> _Batch:
        """Reserve positions ``self._next_position`` .. ``end - 1`` and the versions of a validated batch.

        Caller holds ``self._lock``.
        """
        self._check_open()
        batch = _Batch(
            rows,
            events,
            versions,
            end - 1,
            None if staged is None else (staged, self._next_position),
            checked,
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
        commits (it releases the GIL): everything queued meanwhile goes into the next commit, and so
        do the last commit's appenders if they come back quickly (see :meth:`_gather`). A commit
        wakes only its own appenders (each waits on its batch), not every waiting thread. The
        thread ends after a second without work (a store left open holds no idle thread); the next
        append starts a new one.
        """
        group: list[_Batch] = []
        expected = 0  # appends queued when the last commit ended, plus that commit's own appenders
        took = 0.0  # seconds the last commit took
        with self._lock:
            try:
                while True:
                    if not self._queue and not self._closed:
                        self._work.wait(_WRITER_IDLE_SECONDS)
                    if not self._queue:
                        return
                    self._gather(expected, took)
                    group, self._queue = self._queue, []
                    self._in_flight = group  # searched by append conditions until published
                    self._committing = True
                    self._lock.release()
                    started = time.perf_counter()
                    try:
                        error = self._commit_group(group)
                    finally:
                        took = time.perf_counter() - started
                        self._lock.acquire()
                    expected = len(self._queue) + len(group)
                    if error is None:
                        self._publish(group)
                    else:
                        self._recover(group, error)
                    self._in_flight = []
                    self._committing = False
                    self._changed.notify_all()
            except BaseException as exc:  # a bug here must not leave appenders waiting forever
                self._fail([batch for batch in group if not batch.done], exc)
                raise
            finally:
                self._writer = None
                self._in_flight = []
                self._committing = False
                self._changed.notify_all()

    def _gather(self, expected: int, took: float) -> None:
        """Wait while the appenders of the last commit come back, as long as they come back quickly.

        A DuckDB commit costs about as much CPU for one row as for thirty. Committing whatever is
        queued the moment the last commit ends splits busy clients into two cohorts that alternate,
        each waiting for the other's commit as well as its own, with half the clients per commit.
        Waiting for the returning appenders pays when they are quicker than a commit: while each
        arrives within ``took / expected`` (the last commit's time shared among the appends it is
        expected to serve), keep waiting, up to ``expected`` queued appends; a late one ends the
        wait (the cohorts then stay), so no wait is longer than the last commit. A lone client is
        never kept waiting: it is the whole of ``expected``. Caller holds ``_lock``.
        """
        if len(self._queue) >= expected or took <= 0.0 or self._closed:
            return
        patience = min(took / expected, _GATHER_MAX_SECONDS)
        while len(self._queue) < expected and not self._closed:
            if not self._work.wait(patience):  # every queued append notifies
                return

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
                if self._commit_hook is not None:
                    self._commit_hook(len(rows))
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
                    con.from_arrow(rows.table()).insert_into("events")
                else:
                    # No gc_paused() here: this thread serves every client, and pausing the cyclic GC
                    # pauses it for the whole process, not just for this thread.
                    with self._parallel():
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
        with self._parallel():
            try:
                con.execute("begin")
                for start in range(0, len(rows), _IMPORT_CHUNK):
                    con.from_arrow(rows.table(start, start + _IMPORT_CHUNK)).insert_into("events")
                for parquet, first in staged:
                    parquet.check_unchanged()
                    [(inserted,)] = con.execute(
                        f"insert into events select {int(first)} + file_row_number, event_id::uuid, "
                        "stream_id, version, event_type, payload::json, metadata::json, "
                        f"recorded_at::timestamptz, {parquet.schema_version_column(con)}, "
                        f"{parquet.tags_column(con)} "
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
                cache.drop(batch.streams)
                self._tail = []
                self._tail_start = batch.end + 1
            else:
                cache.extend(batch.events)
                self._tail.extend(batch.events)
        self._head = group[-1].end
        self._trim()
        for batch in group:
            self._index_published(batch)
        for batch in group:
            batch.finish()

    # -- the query index ------------------------------------------------------------------------------

    def _index_published(self, batch: _Batch) -> None:
        """Add a committed batch to the query index, in position order. Caller holds ``_lock``."""
        index = self._index
        if batch.events is not None:
            for event in batch.events:
                index.add(event.position, event.event_type, event.tags)
            if batch.events and self._streams_indexed == batch.events[0].position - 1:  # else: see below
                index.add_streams((e.position for e in batch.events), (e.stream_id for e in batch.events))
                self._streams_indexed = batch.end
            return
        # imports leave streams to ``_stream_positions``, which indexes them from the file when needed
        rows = batch.rows
        index.add_many(rows.positions, rows.types, rows.tags)
        if batch.staged is not None:  # a Parquet import: its rows are only in the file (and now DuckDB)
            first = batch.staged[1]
            cursor = self._con.cursor()  # not ``_db_lock``: it is never taken after ``_lock``
            try:
                index_from_file(cursor, index, first - 1, batch.end)
            finally:
                cursor.close()

    # -------------------------------------------------------------------------------------------------

    def _recover(self, group: list[_Batch], error: BaseException) -> None:
        """A group failed to commit: find out which of its batches DuckDB refuses, and fail only those.

        Each batch is committed again alone, in queue order; one that fails alone gets its own error,
        and every later batch that depended on it (it writes or checked a stream the failed batch
        wrote, so it was validated against versions that will never exist) fails with a version
        conflict, which a command retries. The others move down to close the positions left free,
        and so do the batches queued meanwhile. Holds ``self._lock`` except while committing.
        """
        if len(group) == 1:
            outcomes: list[BaseException | None] = [error]
        else:
            outcomes = []
            lost: set[str] = set()
            shift = 0
            for batch in group:
                if lost & (batch.streams.keys() | batch.checked):
                    outcomes.append(self._dependent_error(batch, lost))
                    lost.update(batch.streams)
                    shift += batch.size
                    continue
                if shift:
                    batch.shift(shift)
                self._lock.release()
                try:
                    alone = self._commit_group([batch])
                finally:
                    self._lock.acquire()
                outcomes.append(None if alone is None else self._own_error(alone, error))
                if alone is None:
                    self._publish([batch])
                else:
                    lost.update(batch.streams)
                    shift += batch.size
        lost = set()
        shift = 0
        for batch, outcome in zip(group, outcomes, strict=True):
            if outcome is not None:
                batch.finish(self._own_error(outcome, error) if len(group) == 1 else outcome)
                lost.update(batch.streams)
                shift += batch.size
        if not shift:
            return
        survivors: list[_Batch] = []
        for batch in self._queue:  # validated against the failed batches too: renumber or fail them
            if lost & (batch.streams.keys() | batch.checked):
                batch.finish(self._dependent_error(batch, lost))
                lost.update(batch.streams)
                shift += batch.size
            else:
                batch.shift(shift)
                survivors.append(batch)
        self._queue = survivors
        self._next_position -= shift
        self._pending = {sid: v for batch in survivors for sid, v in batch.streams.items()}

    def _own_error(self, cause: BaseException, group_error: BaseException) -> BaseException:
        """A new error for one failed batch, chained to what DuckDB (or a file) raised for it."""
        if isinstance(cause, EventCoreError):
            return cause  # raised for this batch alone (e.g. a Parquet file changed during import)
        if isinstance(cause, duckdb.Error):
            retriable = isinstance(cause, _TRANSIENT_DUCKDB_ERRORS)
            kind = "could not commit" if retriable else "refused"
            error: BaseException = TransactionError(
                f"DuckDB {kind} an append to {self.path}: {cause}", retriable=retriable
            )
        else:
            error = StoreError(f"appending to {self.path} failed: {type(cause).__name__}: {cause}")
        error.__cause__ = cause
        return error

    def _dependent_error(self, batch: _Batch, lost: set[str]) -> BaseException:
        """The error of a batch validated against a failed one: its streams are not as it expected."""
        conflicts = {
            sid: ("the version of an append that failed", self._versions.get(sid, 0))
            for sid in sorted(lost & (batch.streams.keys() | batch.checked))
        }
        return VersionConflict(conflicts)

    def _fail(self, group: list[_Batch], error: BaseException) -> None:
        """Fail ``group`` and everything queued behind it (validated against it), and forget them."""
        for batch in group + self._queue:
            batch.finish(self._own_error(error, error) if not isinstance(error, EventCoreError) else error)
        self._queue = []
        self._pending = {}
        self._next_position = self._head + 1

    def _trim(self) -> None:
        """Keep the tail within its budget. Caller holds ``self._lock``."""
        if len(self._tail) > 2 * self.tail_events:
            drop = len(self._tail) - self.tail_events
            del self._tail[:drop]
            self._tail_start += drop
