"""Stored rows to StoredEvents a column at a time, for the read paths of the durable stores.

Per event, building a UUID, parsing a timestamp, decoding a metadata document and calling the registry
costs more than the database's whole fetch of the row. Here msgspec builds the ids and decodes the
payloads of one type in one call each, in C; values most events of a page share (the metadata and the
timestamp of one append) are decoded once and shared (Metadata is a frozen Struct, and the memory store
shares one per append too). The cyclic garbage collector is paused while the objects are made (callers
use :func:`gc_paused`): with a large heap, its passes cost more than the decoding (measured: 3x on a
100,000-event read). Payloads that need upcasting, and types not registered, go through
``registry.read_event`` one by one, so every read path keeps the same semantics.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime, timedelta
from itertools import compress
from typing import Any, TypeVar

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._gc import gc_paused
from ..core.events import Metadata, StoredEvent
from ..core.registry import EventRegistry
from ._columns import EPOCH

_metadata_decoder = msgspec.json.Decoder(Metadata)
_uuid_decoder = msgspec.msgpack.Decoder(list[uuid.UUID])
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def uuids(raw: bytes | memoryview, count: int) -> list[uuid.UUID]:
    """``count`` UUIDs from their 16 bytes each, back to back: framed as a MessagePack array of bin8
    values with numpy, then built by msgspec in C (about twice as fast as ``uuid.UUID(bytes=...)``)."""
    framed = np.empty((count, 18), np.uint8)
    framed[:, 0] = 0xC4  # bin8
    framed[:, 1] = 16
    framed[:, 2:] = np.frombuffer(raw, np.uint8, count * 16).reshape(count, 16)
    return _uuid_decoder.decode(b"\xdd" + count.to_bytes(4, "big") + framed.tobytes())


def datetimes(micros: Sequence[int]) -> list[datetime]:
    """UTC datetimes from microseconds since the Unix epoch, each distinct value converted once."""
    return _each_once(micros, lambda value: EPOCH + timedelta(microseconds=value))


def metadata(documents: Sequence[str | bytes]) -> list[Metadata]:
    """Metadata from JSON documents; equal documents (one append's events) share one decoded object."""
    return _each_once(documents, _metadata_decoder.decode)


def _each_once(values: Sequence[K], make: Callable[[K], V]) -> list[V]:
    """``make(value)`` for each of ``values``, made once per distinct value and shared by its repeats."""
    made: dict[K, V] = {}
    out = []
    for value in values:
        found = made.get(value)
        if found is None:
            found = made[value] = make(value)
        out.append(found)
    return out


def payloads(
    registry: EventRegistry, types: Sequence[str], data: Sequence[str | bytes], schemas: Sequence[int]
) -> tuple[list[str], list[Any]]:
    """The current type names and payloads of stored events, as ``registry.read_event`` returns them.

    Registered types stored at their current schema are decoded a type at a time, in one msgspec call;
    the rest (upcasts, unknown types, and every event of a batch that does not decode) one by one.
    """
    count = len(types)
    names: list[str] = list(types)
    decoded: list[Any] = [None] * count
    pending = [True] * count
    evolution = registry.evolution
    groups: dict[tuple[str, int], list[int]] = {}
    for index, key in enumerate(zip(types, schemas, strict=True)):
        groups.setdefault(key, []).append(index)
    for (name, schema), indexes in groups.items():
        if not registry.knows(name) or (evolution is not None and not evolution.is_current(name, schema)):
            continue
        texts = [data[i] for i in indexes]
        batch = _decode_batch(registry, name, texts)
        if batch is None:
            continue
        for i, value in zip(indexes, batch, strict=True):
            decoded[i] = value
            pending[i] = False
    if any(pending):
        read = registry.read_event
        for i in compress(range(count), pending):
            names[i], decoded[i] = read(types[i], data[i], schemas[i])
    return names, decoded


_list_decoders: dict[type, msgspec.json.Decoder[Any]] = {}


def _decode_batch(registry: EventRegistry, name: str, texts: list[Any]) -> list[Any] | None:
    """Payloads of one registered type decoded in one call, or None when any does not decode (the
    caller then decodes them one by one, to raise the same error as a single read)."""
    cls = registry.event_class(name)
    decoder = _list_decoders.get(cls)
    if decoder is None:
        if len(_list_decoders) > 256:  # classes redefined in a notebook: keep none alive for long
            _list_decoders.clear()
        decoder = _list_decoders[cls] = msgspec.json.Decoder(list[cls])  # type: ignore[valid-type]
    try:
        joined = "[" + ",".join(texts) + "]" if type(texts[0]) is str else b"[" + b",".join(texts) + b"]"
        values = decoder.decode(joined)
    except (msgspec.DecodeError, TypeError):  # TypeError: str and bytes mixed
        return None
    return values if len(values) == len(texts) else None


def stored_events(
    registry: EventRegistry,
    *,
    positions: Sequence[int],
    ids: Sequence[uuid.UUID],
    streams: Sequence[str],
    versions: Sequence[int],
    types: Sequence[str],
    data: Sequence[str | bytes],
    metadata_documents: Sequence[str | bytes],
    recorded: Sequence[datetime],
    schemas: Sequence[int],
    tags: Sequence[Sequence[str] | None],
) -> list[StoredEvent]:
    """StoredEvents from columns of stored fields (ids built, times tz-aware UTC, the rest as stored)."""
    names, decoded = payloads(registry, types, data, schemas)
    return list(
        map(
            _event,
            ids,
            streams,
            versions,
            positions,
            names,
            decoded,
            metadata(metadata_documents),
            recorded,
            tags,
        )
    )


def _event(
    event_id: uuid.UUID,
    stream_id: str,
    version: int,
    position: int,
    event_type: str,
    payload: Any,
    meta: Metadata,
    recorded_at: datetime,
    tags: Sequence[str] | None,
) -> StoredEvent:
    return StoredEvent(
        event_id=event_id,
        stream_id=stream_id,
        version=version,
        position=position,
        event_type=event_type,
        payload=payload,
        metadata=meta,
        recorded_at=recorded_at,
        tags=tuple(tags) if tags else (),
    )


def events_from_arrow(table: pa.Table, registry: EventRegistry) -> list[StoredEvent]:
    """StoredEvents from an Arrow table of the columns position, event_id (16 bytes), stream_id,
    version, event_type, payload, metadata (JSON text), recorded_at (epoch microseconds),
    schema_version, tags, in that order."""
    count = table.num_rows
    if not count:
        return []
    position, event_id, stream, version, event_type, payload, meta, recorded, schema, tags = table.columns
    has_tags = pc.sum(pc.list_value_length(tags)).as_py()
    with gc_paused():
        return stored_events(
            registry,
            positions=position.to_pylist(),
            ids=uuids(b"".join(event_id.to_pylist()), count),
            streams=stream.to_pylist(),
            versions=version.to_pylist(),
            types=event_type.to_pylist(),
            data=payload.to_pylist(),
            metadata_documents=meta.to_pylist(),
            recorded=datetimes(recorded.to_pylist()),
            schemas=schema.to_pylist(),
            tags=tags.to_pylist() if has_tags else [None] * count,
        )
