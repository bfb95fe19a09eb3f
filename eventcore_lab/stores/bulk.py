"""Bulk event files: JSON Lines (optionally gzipped) and Parquet, for export, import and sample data.

Both formats hold one row per stored event with the same fields: ``position``, ``event_id`` (UUID text),
``stream_id``, ``version``, ``event_type``, ``payload``, ``metadata`` and ``recorded_at`` (UTC). JSON Lines
embeds payload and metadata as JSON objects, so a person can read and ``grep`` the file; Parquet keeps them
as JSON text columns, so one schema fits every event type and DuckDB/pandas can query the file directly.

Readers decode payloads back into event classes through an :class:`EventRegistry`, so the types named in
a file must be registered (import the domain module first). Long runs show a tqdm progress bar: pass
``progress=True`` to force it, ``False`` to hide it; by default it appears on a terminal after a second.

>>> from eventcore_lab.stores.bulk import read_events, write_events
>>> write_events(store.read_all(), "history.parquet")          # doctest: +SKIP
>>> other_store.import_events(read_events("history.parquet"))  # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import io
import uuid
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ..core.errors import (
    EventFileMissing,
    InvalidArgument,
    InvalidEventFile,
    SerializationError,
)
from ..core.events import Metadata, StoredEvent
from ..core.registry import EventRegistry, UnknownEvent, default_registry, schema_version_of

if TYPE_CHECKING:
    from .base import EventStore

#: Column names shared by every bulk format, in file order.
COLUMNS = ("position", "event_id", "stream_id", "version", "event_type", "payload", "metadata", "recorded_at")

#: The Arrow/Parquet schema of an event file (payload and metadata are JSON text).
ARROW_SCHEMA = pa.schema(
    [
        ("position", pa.int64()),
        ("event_id", pa.string()),
        ("stream_id", pa.string()),
        ("version", pa.int64()),
        ("event_type", pa.string()),
        ("payload", pa.string()),
        ("metadata", pa.string()),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
        ("schema_version", pa.int32()),
        ("tags", pa.list_(pa.string())),
    ]
)
#: An optional column: the payload's schema version (files written before it existed read as 1).
SCHEMA_VERSION_COLUMN = "schema_version"
#: An optional column: the event's tags (files written before tags existed read as no tags).
TAGS_COLUMN = "tags"

#: Events per Arrow batch / Parquet row group when writing.
CHUNK_SIZE = 100_000

_metadata_encoder = msgspec.json.Encoder()


class FileMetadata(msgspec.Struct, forbid_unknown_fields=True):
    """Metadata as an event file must hold it: a correlation id and no unknown keys.

    Stricter than :class:`Metadata`, which makes up a correlation id when there is none: a file read
    twice must give the same events, and a damaged key must not silently lose its value.
    """

    correlation_id: str
    causation_id: str | None = None
    user_id: str | None = None
    custom: dict[str, Any] = msgspec.field(default_factory=dict)

    def to_metadata(self) -> Metadata:
        return Metadata(
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
            user_id=self.user_id,
            custom=self.custom,
        )


_metadata_decoder = msgspec.json.Decoder(FileMetadata)


def decode_file_metadata(data: bytes | str) -> Metadata:
    """The metadata of one event file row; msgspec.DecodeError when it is not valid."""
    return _metadata_decoder.decode(data).to_metadata()


class _Line(msgspec.Struct):
    """One JSON Lines record; ``payload`` stays raw JSON until the registry decodes it."""

    position: int
    event_id: uuid.UUID
    stream_id: str
    version: int
    event_type: str
    payload: msgspec.Raw
    metadata: FileMetadata
    recorded_at: datetime
    schema_version: int = 1
    tags: tuple[str, ...] = ()


_line_encoder = msgspec.json.Encoder()
_line_decoder = msgspec.json.Decoder(_Line)


def progress_bar(
    iterable: Iterable[Any] | None = None, *, total: int | None, desc: str, progress: bool | None
) -> Any:
    """A tqdm bar: forced on or off by ``progress``; by default shown on a terminal after one second."""
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit="event",
        unit_scale=True,
        delay=0.0 if progress else 1.0,
        disable=None if progress is None else not progress,
        mininterval=0.5,
    )


def _is_gzip(path: Path) -> bool:
    return path.suffix == ".gz"


def _format_of(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        return "parquet"
    raise InvalidArgument(f"cannot tell the format of {path.name!r}: use .jsonl, .jsonl.gz or .parquet")


#: What reading a damaged file can raise below the library: truncated or corrupt gzip, Arrow and
#: Parquet decoding errors, I/O errors.
_FILE_ERRORS = (OSError, EOFError, zlib.error, pa.ArrowException, UnicodeDecodeError)


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise EventFileMissing(f"event file {path} does not exist")
    return path


# -- JSON Lines ------------------------------------------------------------------------------------------


def _open_text(path: Path, mode: str) -> IO[bytes]:
    if _is_gzip(path):
        return gzip.open(path, mode + "b", compresslevel=6)  # type: ignore[return-value]
    return open(path, mode + "b")


def write_jsonl(
    events: Iterable[StoredEvent],
    path: str | Path,
    registry: EventRegistry | None = None,
    *,
    progress: bool | None = None,
) -> int:
    """Write ``events`` as JSON Lines (gzip when the name ends in ``.gz``); return how many were written."""
    registry = registry or default_registry
    path = Path(path)
    count = 0
    total = len(events) if isinstance(events, list | tuple) else None
    with _open_text(path, "w") as raw:
        out = io.BufferedWriter(raw, buffer_size=1 << 20) if not _is_gzip(path) else raw
        for event in progress_bar(events, total=total, desc=f"write {path.name}", progress=progress):
            line = _Line(
                event.position,
                event.event_id,
                str(event.stream_id),  # a StreamId is a str subclass, which msgspec does not encode
                event.version,
                event.event_type,
                msgspec.Raw(registry.encode(event.payload)),
                event.metadata,  # encodes exactly as FileMetadata
                event.recorded_at,
                schema_version_of(event.payload),
                event.tags,
            )
            try:
                encoded = _line_encoder.encode(line)
            except (TypeError, ValueError) as exc:
                raise SerializationError(
                    f"cannot write the event at position {event.position}: {exc}"
                ) from exc
            out.write(encoded)
            out.write(b"\n")
            count += 1
        out.flush()
    return count


def read_jsonl(
    path: str | Path, registry: EventRegistry | None = None, *, progress: bool | None = None
) -> Iterator[StoredEvent]:
    """Yield the events of a JSON Lines file (plain or gzipped), decoding payloads with ``registry``.

    Types not in the registry come back as :class:`UnknownEvent` (their JSON kept byte for byte). A
    damaged file raises InvalidEventFile; a payload that does not fit its registered class raises
    SerializationError, as appending it would.
    """
    registry = registry or default_registry
    path = _existing(Path(path))
    number = 0
    try:
        with _open_text(path, "r") as handle:
            for number, raw in enumerate(
                progress_bar(handle, total=None, desc=f"read {path.name}", progress=progress), 1
            ):
                if raw.strip():
                    yield _line_event(raw, registry, f"{path.name} line {number}")
    except _FILE_ERRORS as exc:
        raise InvalidEventFile(f"{path.name} is damaged after line {number}: {exc!r}") from exc


def _line_event(raw: bytes, registry: EventRegistry, where: str) -> StoredEvent:
    try:
        line = _line_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidEventFile(f"{where}: not an event record: {exc}") from exc
    if bytes(line.payload).strip() == b"null":
        raise InvalidEventFile(f"{where}: the event has no payload")
    if type(line.schema_version) is not int or line.schema_version < 1:
        raise InvalidEventFile(f"{where}: schema_version {line.schema_version!r} is not an int >= 1")
    try:
        event_type, payload = registry.read_event(line.event_type, line.payload, line.schema_version)
    except SerializationError as exc:
        raise SerializationError(f"{where}: {exc.message}") from exc
    return StoredEvent(
        event_id=line.event_id,
        stream_id=line.stream_id,
        version=line.version,
        position=line.position,
        event_type=event_type,
        payload=payload,
        metadata=line.metadata.to_metadata(),
        recorded_at=_utc(line.recorded_at, where),
        tags=line.tags,
    )


def _utc(moment: object, where: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise InvalidEventFile(f"{where}: recorded_at {moment!r} has no time zone; event files use UTC")
    return moment.astimezone(UTC)


# -- Arrow and Parquet -----------------------------------------------------------------------------------


def schema_versions(payloads: list[object]) -> list[int]:
    """Each payload's schema version (see :func:`schema_version_of`), looked up once per class."""
    by_class: dict[type, int] = {}
    for kind in set(map(type, payloads)):
        if issubclass(kind, UnknownEvent):  # each keeps the version it was read at
            return [schema_version_of(payload) for payload in payloads]
        by_class[kind] = getattr(kind, "schema_version", 1)
    return list(map(by_class.__getitem__, map(type, payloads)))


def events_to_arrow(events: Iterable[StoredEvent], registry: EventRegistry | None = None) -> pa.Table:
    """The events as an Arrow table with :data:`ARROW_SCHEMA` (payload and metadata as JSON text)."""
    registry = registry or default_registry
    columns: list[list[Any]] = [[] for _ in ARROW_SCHEMA]
    position, event_id, stream, version, event_type, payload, metadata, recorded, schema, tags = columns
    for event in events:
        position.append(event.position)
        event_id.append(str(event.event_id))
        stream.append(str(event.stream_id))
        version.append(event.version)
        event_type.append(event.event_type)
        payload.append(registry.encode(event.payload))
        metadata.append(_metadata_encoder.encode(event.metadata))
        recorded.append(event.recorded_at)
        schema.append(schema_version_of(event.payload))
        tags.append(event.tags)
    try:
        arrays = [
            pa.array(column, type=field.type) for column, field in zip(columns, ARROW_SCHEMA, strict=True)
        ]
    except (pa.ArrowException, UnicodeEncodeError) as exc:
        raise SerializationError(f"cannot write these events as Arrow columns: {exc}") from exc
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


def arrow_to_events(
    table: pa.Table | pa.RecordBatch, registry: EventRegistry | None = None
) -> Iterator[StoredEvent]:
    """Yield StoredEvents from an Arrow table or batch that has the :data:`COLUMNS`.

    Missing values, ids that are not UUIDs, metadata that is not a Metadata object and naive times
    raise InvalidEventFile; a payload that does not fit its registered class raises SerializationError.
    """
    registry = registry or default_registry
    missing = [name for name in COLUMNS if name not in table.schema.names]
    if missing:
        raise InvalidEventFile(f"event table lacks the columns {', '.join(missing)}")
    columns = [table.column(name).to_pylist() for name in COLUMNS]
    if SCHEMA_VERSION_COLUMN in table.schema.names:
        schema_versions = [v or 1 for v in table.column(SCHEMA_VERSION_COLUMN).to_pylist()]
    else:
        schema_versions = [1] * table.num_rows
    if TAGS_COLUMN in table.schema.names:
        tag_lists = [tuple(t) if t else () for t in table.column(TAGS_COLUMN).to_pylist()]
    else:
        tag_lists = [()] * table.num_rows
    for row, schema_version, tags in zip(zip(*columns, strict=True), schema_versions, tag_lists, strict=True):
        position, event_id, stream, version, event_type, payload, metadata, recorded = row
        where = f"the event at position {position}"
        if any(value is None for value in row):
            absent = ", ".join(name for name, value in zip(COLUMNS, row, strict=True) if value is None)
            raise InvalidEventFile(f"{where} has no {absent}")
        try:
            meta = decode_file_metadata(metadata)
        except (msgspec.DecodeError, TypeError) as exc:
            raise InvalidEventFile(f"metadata of {where} is not valid: {exc}") from exc
        try:
            uid = event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(str(event_id))
        except ValueError as exc:
            raise InvalidEventFile(f"{where} has the event id {event_id!r}, which is not a UUID") from exc
        if not isinstance(payload, str | bytes):
            raise InvalidEventFile(f"the payload of {where} is not JSON text: {payload!r}")
        try:
            current_type, decoded = registry.read_event(event_type, payload, schema_version)
        except SerializationError as exc:
            raise SerializationError(f"{where}: {exc.message}") from exc
        yield StoredEvent(
            event_id=uid,
            stream_id=stream,
            version=version,
            position=position,
            event_type=current_type,
            payload=decoded,
            metadata=meta,
            recorded_at=_utc(recorded, where),
            tags=tags,
        )


def _chunks(events: Iterable[StoredEvent], size: int) -> Iterator[list[StoredEvent]]:
    chunk: list[StoredEvent] = []
    for event in events:
        chunk.append(event)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_parquet(
    events: Iterable[StoredEvent],
    path: str | Path,
    registry: EventRegistry | None = None,
    *,
    progress: bool | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> int:
    """Write ``events`` to a Parquet file (zstd), one row group per ``chunk_size`` events."""
    path = Path(path)
    total = len(events) if isinstance(events, list | tuple) else None
    count = 0
    bar = progress_bar(total=total, desc=f"write {path.name}", progress=progress)
    try:
        with pq.ParquetWriter(path, ARROW_SCHEMA, compression="zstd") as writer:
            for chunk in _chunks(events, chunk_size):
                writer.write_table(events_to_arrow(chunk, registry))
                count += len(chunk)
                bar.update(len(chunk))
    finally:
        bar.close()
    return count


def read_parquet(
    path: str | Path,
    registry: EventRegistry | None = None,
    *,
    progress: bool | None = None,
    batch_size: int = CHUNK_SIZE,
) -> Iterator[StoredEvent]:
    """Yield the events of a Parquet event file in file order, decoding payloads with ``registry``."""
    path = _existing(Path(path))
    try:
        source = pq.ParquetFile(path)
    except _FILE_ERRORS as exc:
        raise InvalidEventFile(f"{path.name} is not a readable Parquet file: {exc}") from exc
    total = source.metadata.num_rows
    bar = progress_bar(total=total, desc=f"read {path.name}", progress=progress)
    try:
        names = source.schema_arrow.names
        wanted = [*COLUMNS, *(c for c in (SCHEMA_VERSION_COLUMN, TAGS_COLUMN) if c in names)]
        for batch in source.iter_batches(batch_size=batch_size, columns=wanted):
            yield from arrow_to_events(batch, registry)
            bar.update(batch.num_rows)
    except (KeyError, *_FILE_ERRORS) as exc:
        raise InvalidEventFile(f"{path.name} is not an event file or is damaged: {exc!r}") from exc
    finally:
        bar.close()


# -- by file name ---------------------------------------------------------------------------------------


def write_events(
    events: Iterable[StoredEvent],
    path: str | Path,
    registry: EventRegistry | None = None,
    *,
    progress: bool | None = None,
) -> int:
    """Write ``events`` in the format the file name asks for (.jsonl, .jsonl.gz or .parquet)."""
    if _format_of(Path(path)) == "parquet":
        return write_parquet(events, path, registry, progress=progress)
    return write_jsonl(events, path, registry, progress=progress)


def read_events(
    path: str | Path, registry: EventRegistry | None = None, *, progress: bool | None = None
) -> Iterator[StoredEvent]:
    """Read an event file in the format its name says (.jsonl, .jsonl.gz or .parquet)."""
    if _format_of(Path(path)) == "parquet":
        return read_parquet(path, registry, progress=progress)
    return read_jsonl(path, registry, progress=progress)


def iter_store(store: EventStore, *, after: int = 0, page: int = 10_000) -> Iterator[StoredEvent]:
    """Every event of any store after ``after``, fetched page by page (constant memory)."""
    while True:
        events = store.read_all(after=after, limit=page)
        if not events:
            return
        yield from events
        after = events[-1].position


def export_store(store: EventStore, path: str | Path, *, after: int = 0, progress: bool | None = None) -> int:
    """Write a store's log (after ``after``) to ``path``; uses the store's own fast export when it has one."""
    from .base import BulkExport

    if isinstance(store, BulkExport):
        return store.export_events(path, after=after, progress=progress)
    return write_events(iter_store(store, after=after), path, store.registry, progress=progress)
