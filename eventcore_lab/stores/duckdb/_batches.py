"""What waits in DuckDB's group-commit queue: rows as column lists, and the batches appenders wait on.

Column lists, because converting a group to Arrow (or handing it to DuckDB's appender) column by column
costs far less than row objects; a batch also knows how to move down when a batch queued before it
failed, so that positions stay without holes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from datetime import datetime
from operator import attrgetter
from pathlib import Path

import duckdb
import msgspec
import numpy as np
import pyarrow as pa

from ...core.errors import EventFileChanged
from ...core.events import StoredEvent
from .. import bulk
from .._columns import shared, timestamp_micros, uuid_bytes
from ..rules import ImportColumns, PreparedImport


def _sql_string(text: str) -> str:
    """``text`` as an SQL string literal (COPY takes no parameter for its file name)."""
    return "'" + text.replace("'", "''") + "'"


_COLUMNS = ", ".join(bulk.COLUMNS)
#: The events table's columns in order: the bulk columns, the payload's schema version, the tags.
_TABLE_COLUMNS = f"{_COLUMNS}, schema_version, tags"
#: The events table's columns as the read path fetches them: ids as 16 bytes and times as epoch
#: microseconds, which Arrow hands over as buffers (see ``stores._decoding.events_from_arrow``).
_READ_COLUMNS = (
    "position, event_id::blob, stream_id, version, event_type, payload, metadata, epoch_us(recorded_at), "
    "schema_version, tags"
)


# The bulk file schema, except that event ids go into DuckDB as native UUIDs rather than text.
_ARROW_SCHEMA = bulk.ARROW_SCHEMA.set(
    bulk.ARROW_SCHEMA.get_field_index("event_id"), pa.field("event_id", pa.uuid())
)


_metadata_encoder = msgspec.json.Encoder()

#: The StoredEvent fields of :class:`ImportColumns`, in its order.
_IMPORT_FIELDS = ("event_id", "stream_id", "version", "event_type", "payload", "recorded_at", "tags")


class _Rows:
    """Column lists of events bound for the ``events`` table, and for an import its Arrow columns."""

    __slots__ = (
        "arrow",
        "event_ids",
        "metadata",
        "payloads",
        "positions",
        "recorded",
        "schema_versions",
        "streams",
        "tags",
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
        self.tags: list[tuple[str, ...]] = []
        #: Every column but the positions as Arrow arrays, built before the rows are queued (an import's,
        #: by the importing thread) so that the writer only adds positions; None: built when inserted.
        self.arrow: pa.Table | None = None

    def __len__(self) -> int:
        return len(self.streams)

    @classmethod
    def of_import(cls, prepared: PreparedImport) -> _Rows:
        """The columns of a validated import (positions left to the writer): those validation built,
        else one C-level pass over the events per field; and their Arrow arrays."""
        rows = cls()
        columns = prepared.columns
        if columns is None:
            events = prepared.events
            columns = ImportColumns(*(list(map(attrgetter(name), events)) for name in _IMPORT_FIELDS))
        rows.event_ids = columns.event_ids
        rows.streams = columns.streams
        rows.versions = columns.versions
        rows.types = columns.types
        rows.payloads = prepared.payloads
        rows.metadata = prepared.metadata
        rows.recorded = columns.recorded
        rows.schema_versions = bulk.schema_versions(columns.payloads)
        rows.tags = columns.tags
        rows.arrow = rows._arrow_columns()
        return rows

    def extend(self, other: _Rows) -> None:
        for name in self.__slots__:
            if name != "arrow":
                getattr(self, name).extend(getattr(other, name))
        self.arrow = None

    def table(self, start: int = 0, stop: int | None = None) -> pa.Table:
        """Rows ``start`` to ``stop`` as an Arrow table with :data:`_ARROW_SCHEMA`."""
        stop = len(self) if stop is None else min(stop, len(self))
        columns = (
            self._arrow_columns(start, stop) if self.arrow is None else self.arrow.slice(start, stop - start)
        )
        positions = pa.array(self.positions[start:stop], pa.int64())
        return columns.add_column(0, _ARROW_SCHEMA.field("position"), positions)

    def _arrow_columns(self, start: int = 0, stop: int | None = None) -> pa.Table:
        """Every column but the positions, converted in bulk: per row, ids, timestamps, metadata and
        tags cost more than DuckDB's whole insert."""
        cut = slice(start, stop)
        return pa.Table.from_arrays(
            [
                _uuids(self.event_ids[cut]),
                pa.array(self.streams[cut], pa.string()),
                pa.array(self.versions[cut], pa.int64()),
                pa.array(self.types[cut], pa.string()),
                pa.array(self.payloads[cut], pa.string()),
                _shared_text(self.metadata[cut]),
                _timestamps(self.recorded[cut]),
                pa.array(self.schema_versions[cut], pa.int32()),
                _tag_lists(self.tags[cut]),
            ],
            names=_ARROW_SCHEMA.names[1:],
        )


def _uuids(ids: list[uuid.UUID]) -> pa.Array:
    """UUIDs as an Arrow uuid array."""
    data = pa.py_buffer(uuid_bytes(ids).tobytes())
    return pa.ExtensionArray.from_storage(
        pa.uuid(), pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(ids), [None, data])
    )


def _shared_text(values: list[bytes]) -> pa.Array:
    """Text of which most rows share a few objects (metadata) as a dictionary array: each distinct
    object converted once."""
    distinct, codes = shared(values)
    return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(distinct, pa.string()))


def _timestamps(stamps: list[datetime]) -> pa.Array:
    """UTC timestamps, each distinct object converted once."""
    return pa.array(timestamp_micros(stamps)).view(_ARROW_SCHEMA.field("recorded_at").type)


def _tag_lists(tags: list[tuple[str, ...]]) -> pa.Array:
    """Each row's tags; rows without any (most) as a list array of empty lists, built without a loop."""
    if any(tags):
        return pa.array(tags, pa.list_(pa.string()))
    return pa.ListArray.from_arrays(pa.array(np.zeros(len(tags) + 1, np.int32)), pa.array([], pa.string()))


class _ParquetImport:
    """A Parquet file that DuckDB reads twice, to check it and then to insert it, and the file's
    signature (size, modification time) so that a file changed in between is noticed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self.signature = self._signature()
        self._schema_version: str | None = None
        self._tags: str | None = None

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

    #: The SQL for the tags of a file written before tags existed.
    NO_TAGS = "[]::varchar[]"

    def tags_column(self, con: duckdb.DuckDBPyConnection) -> str:
        """The SQL for each row's tags: the file's column, or none for files written before it."""
        if self._tags is None:
            empty = con.execute(f"select * from {self.source()} limit 0")
            found = bulk.TAGS_COLUMN in [column[0] for column in empty.description]
            self._tags = f"coalesce({bulk.TAGS_COLUMN}, [])::varchar[]" if found else self.NO_TAGS
        return self._tags

    def check_unchanged(self) -> None:
        try:
            unchanged = self._signature() == self.signature
        except OSError:
            unchanged = False
        if not unchanged:
            raise EventFileChanged(f"{self.path.name} changed while it was being imported")


class _Batch:
    """One append (or import) waiting in the group-commit queue; it ends at position ``end``."""

    __slots__ = ("checked", "done", "end", "error", "events", "rows", "staged", "streams", "waiter")

    def __init__(
        self,
        rows: _Rows,
        events: list[StoredEvent] | None,
        streams: dict[str, int],
        end: int,
        staged: tuple[_ParquetImport, int] | None = None,
        checked: Iterable[str] = (),
    ) -> None:
        self.rows = rows
        self.events = events  # None for imports: their streams are dropped from the cache instead
        self.streams = streams  # stream id -> version after this batch
        self.end = end
        self.staged = staged  # (Parquet file, first position) of a file import done in SQL
        self.checked = frozenset(checked)  # streams whose version the append checked, written or not
        self.done = False
        self.error: BaseException | None = None
        # Held until the group commits: the appender sleeps on it, so a commit wakes only its own
        # appenders instead of every thread waiting on a shared condition.
        self.waiter = threading.Lock()
        self.waiter.acquire()

    def shift(self, by: int) -> None:
        """Move this batch ``by`` positions down: a batch before it in the queue failed."""
        self.end -= by
        self.rows.positions = [p - by for p in self.rows.positions]
        if self.events is not None:
            self.events = [msgspec.structs.replace(e, position=e.position - by) for e in self.events]
        if self.staged is not None:
            self.staged = (self.staged[0], self.staged[1] - by)

    @property
    def size(self) -> int:
        return len(self.rows) + (self.staged[0].count if self.staged is not None else 0)

    def finish(self, error: BaseException | None = None) -> None:
        if not self.done:
            self.error = error
            self.done = True
            self.waiter.release()
