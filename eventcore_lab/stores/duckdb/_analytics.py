"""The DuckDB store's analytics and bulk paths: read-only SQL, frames, checkpoints, file import/export.

``sql()`` is read-only by construction: DuckDB's parser must classify the statement as a query, and it
runs in a read-only transaction that is always rolled back. Parquet files are checked and loaded by
DuckDB itself, straight from the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import duckdb
import msgspec
import pandas as pd
import pyarrow as pa

from ..._gc import gc_paused
from ...core.errors import (
    EventFileMissing,
    InvalidEventFile,
    InvalidFormat,
    SerializationError,
    VersionConflict,
)
from ...core.events import StoredEvent
from ...core.ids import StreamId
from ...core.registry import schema_version_of
from ...core.tags import MAX_TAGS_PER_EVENT, check_tag
from .. import bulk
from ..base import EventStore
from ..rules import (
    check_checkpoint_name,
    check_event_type,
    check_follows,
    check_position,
    prepare_import,
)
from ._batches import (
    _ParquetImport,
    _Rows,
    _sql_string,
)
from ._columnar import expand_events
from ._reading import _ReadingMixin
from ._writer import _WriterMixin

#: What store.sql runs: queries. Everything else (SET, PRAGMA, CALL, ATTACH, COPY, LOAD, ...) may
#: act outside a transaction, where a rollback could not undo it.
_READ_ONLY_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


class _AnalyticsMixin(_WriterMixin, _ReadingMixin):
    """SQL, frames, checkpoints and bulk files."""

    def sql(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run one read-only query (SELECT, WITH, FROM, DESCRIBE, SUMMARIZE, EXPLAIN) into a DataFrame.

        Tables: ``events`` (the log; payload and metadata are JSON text) and ``checkpoints``. Read-only
        by construction, not by reading the text: DuckDB's parser must classify the statement as a
        query (SELECT or EXPLAIN; so no SET, PRAGMA, ATTACH, COPY, INSTALL, LOAD or CALL), and it runs
        in a read-only transaction that is always rolled back, where DuckDB itself refuses any write,
        however nested (``EXPLAIN ANALYZE DELETE``, a CTE with ``DELETE ... RETURNING``). Use
        ``pragma_table_info('events')`` and friends as table functions instead of PRAGMA statements.
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
            with self._parallel() as con:
                con.execute("begin transaction read only")
                try:
                    return con.execute(query, params).df()
                except duckdb.TransactionException as exc:
                    raise InvalidFormat(f"store.sql is read-only; the query tried to write: {exc}") from exc
                except duckdb.Error as exc:
                    raise InvalidFormat(f"the SQL query failed: {exc}") from exc
                finally:
                    con.execute("rollback")

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
        correlation_id, causation_id, user_id, then the payload fields; rows in position order. With
        upcasters installed, rows stored at an older schema come out current: upcast in SQL, in the same
        scan, where their chain allows, else in Python for those rows only (see ``_upcast``).
        """
        head = self.head()
        with self._parallel() as con:
            return expand_events(con, self.registry, head, after, until, stream_ids, event_types, fields)

    def events_frame(
        self,
        *,
        after: int = 0,
        until: int | None = None,
        stream_ids: Iterable[str] | None = None,
        event_types: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """The log (or a slice of it) as a DataFrame, one row per event, filtered inside DuckDB.

        With upcasters installed on the registry, rows stored at an older schema show their current
        type, payload JSON and schema version (converted in Python, only those rows)."""
        where: list[str] = ["position > ?"]
        params: list[Any] = [after]
        if until is not None:
            where.append("position <= ?")
            params.append(until)
        if stream_ids is not None:
            where.append("stream_id in (select unnest(?))")
            params.append([StreamId(s) for s in stream_ids])
        evolution = self.registry.evolution
        if event_types is not None and evolution is None:  # otherwise after upcasting (renamed types)
            where.append("event_type in (select unnest(?))")
            params.append(list(event_types))
        query = (
            "select position, event_id, stream_id, version, event_type, payload::varchar as payload, "
            "metadata::varchar as metadata, recorded_at, schema_version from events "
            f"where {' and '.join(where)} order by position"
        )
        with self._parallel() as con:
            frame = con.execute(query, params).df()
        if evolution is None:
            return frame
        pairs = list(zip(frame["event_type"].tolist(), frame["schema_version"].tolist(), strict=True))
        current = {pair: evolution.is_current(pair[0], int(pair[1])) for pair in set(pairs)}
        stale = [i for i, pair in enumerate(pairs) if not current[pair]]
        if stale:  # only those rows, converted in one pass and written back column by column
            payloads = frame["payload"].tolist()
            upcast = [self.registry.read_event(pairs[i][0], payloads[i], int(pairs[i][1])) for i in stale]
            columns = {
                "event_type": [event_type for event_type, _ in upcast],
                "payload": [self.registry.encode(payload).decode() for _, payload in upcast],
                "schema_version": [schema_version_of(payload) for _, payload in upcast],
            }
            for name, values in columns.items():
                column = frame[name]
                frame.loc[stale, name] = pd.Series(values, index=stale, dtype=column.dtype)
        if event_types is not None:
            frame = frame[frame["event_type"].isin(list(event_types))].reset_index(drop=True)
        return frame

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
            if not batch.events:
                return 0
            rows = _Rows.of_import(batch)  # Arrow columns built here: the writer only inserts them
            bar.update(len(items))
        with self._lock:
            self._check_writable()
            check_follows(batch.first_versions, self._version_with_pending)
            start = self._next_position
            rows.positions = list(range(start, start + len(rows.streams)))
            queued = self._enqueue(rows, None, batch.last_versions, start + len(rows.streams))
        self._wait_durable(queued)
        return len(rows)

    def export_events(
        self, path: str | os.PathLike[str], *, after: int = 0, progress: bool | None = None
    ) -> int:
        """Write the log after ``after`` to a .parquet (by DuckDB itself), .jsonl or .jsonl.gz file."""
        target = Path(path)
        if bulk._format_of(target) != "parquet":
            show = self.show_progress if progress is None else progress
            events = bulk.iter_store(cast(EventStore, self), after=after)  # the assembled store is one
            return bulk.write_events(events, target, self.registry, progress=show)
        with self._parallel() as con:
            head = self._head
            con.execute(
                "copy (select position, event_id::varchar as event_id, stream_id, version, event_type, "
                "payload::varchar as payload, metadata::varchar as metadata, recorded_at, schema_version, "
                "tags from events "
                f"where position > {int(after)} and position <= {int(head)} order by position) "
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
        _check_parquet_tags(con, parquet)
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


def _check_parquet_tags(con: duckdb.DuckDBPyConnection, parquet: _ParquetImport) -> None:
    """Hold a Parquet import's tags to the rules of :mod:`eventcore_lab.core.tags`: at most 32 distinct
    tags per row, each distinct tag checked once (in Python, so the rule is the same as everywhere)."""
    tags = parquet.tags_column(con)
    if tags == parquet.NO_TAGS:
        return
    [(bad_rows, distinct)] = con.execute(
        f"select count(*) filter (where len({tags}) > {MAX_TAGS_PER_EVENT} "
        f"or len(list_distinct({tags})) != len({tags}) or list_contains({tags}, null)), "
        f"(select list(distinct t) from (select unnest({tags}) as t from {parquet.source()})) "
        f"from {parquet.source()}"
    ).fetchall()
    if bad_rows:
        raise InvalidEventFile(
            f"{parquet.path.name}: {bad_rows} rows carry more than {MAX_TAGS_PER_EVENT} tags, a tag "
            "twice or a missing tag"
        )
    for tag in distinct or ():
        check_tag(tag, f"in {parquet.path.name}")
