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
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ..core.errors import InvalidFormat, SerializationError
from ..core.events import Metadata, StoredEvent
from ..core.registry import EventRegistry, default_registry

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
    ]
)

#: Events per Arrow batch / Parquet row group when writing.
CHUNK_SIZE = 100_000

_metadata_encoder = msgspec.json.Encoder()
_metadata_decoder = msgspec.json.Decoder(Metadata)


class _Line(msgspec.Struct):
    """One JSON Lines record; ``payload`` stays raw JSON until the registry decodes it."""

    position: int
    event_id: uuid.UUID
    stream_id: str
    version: int
    event_type: str
    payload: msgspec.Raw
    metadata: Metadata
    recorded_at: datetime


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
        unit="ev",
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
    raise InvalidFormat(f"cannot tell the format of {path.name!r}: use .jsonl, .jsonl.gz or .parquet")


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
                event.stream_id,
                event.version,
                event.event_type,
                msgspec.Raw(registry.encode(event.payload)),
                event.metadata,
                event.recorded_at,
            )
            out.write(_line_encoder.encode(line))
            out.write(b"\n")
            count += 1
        out.flush()
    return count


def read_jsonl(
    path: str | Path, registry: EventRegistry | None = None, *, progress: bool | None = None
) -> Iterator[StoredEvent]:
    """Yield the events of a JSON Lines file (plain or gzipped), decoding payloads with ``registry``."""
    registry = registry or default_registry
    path = Path(path)
    with _open_text(path, "r") as handle:
        for number, raw in enumerate(
            progress_bar(handle, total=None, desc=f"read {path.name}", progress=progress), 1
        ):
            if not raw.strip():
                continue
            try:
                line = _line_decoder.decode(raw)
            except msgspec.DecodeError as exc:
                raise InvalidFormat(f"{path.name} line {number}: not an event record: {exc}") from exc
            try:
                payload = registry.decode(line.event_type, line.payload)
            except SerializationError as exc:
                raise type(exc)(f"{path.name} line {number}: {exc.message}") from exc
            yield StoredEvent(
                event_id=line.event_id,
                stream_id=line.stream_id,
                version=line.version,
                position=line.position,
                event_type=line.event_type,
                payload=payload,
                metadata=line.metadata,
                recorded_at=_utc(line.recorded_at),
            )


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise InvalidFormat(f"recorded_at {moment.isoformat()} has no time zone; event files use UTC")
    return moment.astimezone(UTC)


# -- Arrow and Parquet -----------------------------------------------------------------------------------


def events_to_arrow(events: Iterable[StoredEvent], registry: EventRegistry | None = None) -> pa.Table:
    """The events as an Arrow table with :data:`ARROW_SCHEMA` (payload and metadata as JSON text)."""
    registry = registry or default_registry
    columns: list[list[Any]] = [[] for _ in COLUMNS]
    position, event_id, stream, version, event_type, payload, metadata, recorded = columns
    for event in events:
        position.append(event.position)
        event_id.append(str(event.event_id))
        stream.append(event.stream_id)
        version.append(event.version)
        event_type.append(event.event_type)
        payload.append(registry.encode(event.payload))
        metadata.append(_metadata_encoder.encode(event.metadata))
        recorded.append(event.recorded_at)
    return pa.Table.from_arrays(
        [pa.array(column, type=field.type) for column, field in zip(columns, ARROW_SCHEMA, strict=True)],
        schema=ARROW_SCHEMA,
    )


def arrow_to_events(
    table: pa.Table | pa.RecordBatch, registry: EventRegistry | None = None
) -> Iterator[StoredEvent]:
    """Yield StoredEvents from an Arrow table or batch that has the :data:`COLUMNS`."""
    registry = registry or default_registry
    missing = [name for name in COLUMNS if name not in table.schema.names]
    if missing:
        raise InvalidFormat(f"event table lacks the columns {', '.join(missing)}")
    columns = [table.column(name).to_pylist() for name in COLUMNS]
    for position, event_id, stream, version, event_type, payload, metadata, recorded in zip(
        *columns, strict=True
    ):
        try:
            meta = _metadata_decoder.decode(metadata)
        except msgspec.DecodeError as exc:
            raise InvalidFormat(f"metadata of the event at position {position} is not valid: {exc}") from exc
        yield StoredEvent(
            event_id=event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(str(event_id)),
            stream_id=stream,
            version=version,
            position=position,
            event_type=event_type,
            payload=registry.decode(event_type, payload),
            metadata=meta,
            recorded_at=_utc(recorded),
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
    path = Path(path)
    try:
        source = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InvalidFormat(f"{path.name} is not a readable Parquet file: {exc}") from exc
    total = source.metadata.num_rows
    bar = progress_bar(total=total, desc=f"read {path.name}", progress=progress)
    try:
        for batch in source.iter_batches(batch_size=batch_size, columns=list(COLUMNS)):
            yield from arrow_to_events(batch, registry)
            bar.update(batch.num_rows)
    except (KeyError, pa.ArrowInvalid) as exc:
        raise InvalidFormat(f"{path.name} is not an event file: {exc}") from exc
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


def iter_store(store: Any, *, after: int = 0, page: int = 10_000) -> Iterator[StoredEvent]:
    """Every event of any store after ``after``, fetched page by page (constant memory)."""
    while True:
        events = store.read_all(after=after, limit=page)
        if not events:
            return
        yield from events
        after = events[-1].position


def export_store(store: Any, path: str | Path, *, after: int = 0, progress: bool | None = None) -> int:
    """Write a store's log (after ``after``) to ``path``; uses the store's own fast export when it has one."""
    exporter = getattr(store, "export_events", None)
    if exporter is not None:
        return int(exporter(path, after=after, progress=progress))
    registry = getattr(store, "registry", None)
    return write_events(iter_store(store, after=after), path, registry, progress=progress)
