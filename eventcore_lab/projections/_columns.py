"""Turning batches of stored events into DataFrame columns quickly.

Python objects become columns field by field (one ``getattr`` per cell), not row dicts: building a
dict per event and letting pandas sort the keys out is several times slower, and ``events_frame`` is
the entry to every vectorised replay. Event ids become their canonical text by array operations on
their 16 bytes (:func:`id_strings`): a ``uuid.UUID`` object per event cost ~2 s per million events.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..stores._columns import uuid_bytes

_PLAIN = (int, float, str, bool, type(None), datetime, date, time, uuid.UUID, Decimal)
_KEEP = (datetime, date, time, uuid.UUID, Decimal)


class EnvelopeColumns:
    """Envelope values collected batch by batch (strings kept as Python objects: no conversion cost)."""

    def __init__(self) -> None:
        self.position: list[int] = []
        self.stream_id: list[str] = []
        self.version: list[int] = []
        self.event_type: list[str] = []
        self.recorded_us: list[int] = []
        self.event_id: list[uuid.UUID] = []
        self.correlation_id: list[str] = []
        self.causation_id: list[str | None] = []
        self.user_id: list[str | None] = []

    def extend(self, batch: list[Any]) -> None:
        self.position.extend([e.position for e in batch])
        self.stream_id.extend([e.stream_id for e in batch])
        self.version.extend([e.version for e in batch])
        self.event_type.extend([e.event_type for e in batch])
        self.event_id.extend([e.event_id for e in batch])
        metas = [e.metadata for e in batch]
        self.correlation_id.extend([m.correlation_id for m in metas])
        self.causation_id.extend([m.causation_id for m in metas])
        self.user_id.extend([m.user_id for m in metas])
        # events of one append share a timestamp: convert each distinct one only once
        stamps = [e.recorded_at for e in batch]
        micros = {at: round(at.timestamp() * 1_000_000) for at in dict.fromkeys(stamps)}
        self.recorded_us.extend(map(micros.__getitem__, stamps))

    def frame(self) -> pd.DataFrame:
        def obj(values: list[Any]) -> pd.Series:
            return pd.Series(values, dtype=object)

        recorded = pd.to_datetime(np.asarray(self.recorded_us, dtype="int64"), unit="us", utc=True)
        return pd.DataFrame(
            {
                "position": np.asarray(self.position, dtype="int64"),
                "stream_id": obj(self.stream_id),
                "version": np.asarray(self.version, dtype="int64"),
                "event_type": obj(self.event_type),
                "recorded_at": recorded,
                "event_id": pd.Series(uuid_strings(self.event_id), dtype=object, copy=False),
                "correlation_id": obj(self.correlation_id),
                "causation_id": obj(self.causation_id),
                "user_id": obj(self.user_id),
            }
        )


def _cells(values: list[Any]) -> list[Any]:
    """Cells as plain values: enums by value, nested structures as builtins, times and ids kept."""
    kinds = set(map(type, values))
    if all(k in _PLAIN for k in kinds):
        return values
    if all(issubclass(k, enum.Enum) or k in _PLAIN for k in kinds):
        return [v.value if isinstance(v, enum.Enum) else v for v in values]
    converted: list[Any] = msgspec.to_builtins(values, builtin_types=_KEEP)
    return converted


class PayloadColumns:
    """Payload fields as columns; an event without a field has None there."""

    def __init__(self, registry: Any) -> None:
        self._registry = registry
        #: field -> pieces (rows, values): a slice of rows for a one-type batch, else an index array
        self._columns: dict[str, list[tuple[Any, list[Any]]]] = {}
        self._rows = 0

    def extend(self, payloads: list[Any]) -> None:
        start = self._rows
        self._rows += len(payloads)
        kinds = set(map(type, payloads))
        groups: dict[type, list[int]] = {kinds.pop(): []} if len(kinds) == 1 else {}
        if not groups:
            for i, payload in enumerate(payloads):
                kind = type(payload)
                group = groups.get(kind)
                if group is None:
                    groups[kind] = [i]
                else:
                    group.append(i)
        for kind, indexes in groups.items():
            members = payloads if len(groups) == 1 else [payloads[i] for i in indexes]
            fields = getattr(kind, "__struct_fields__", None)
            if fields is None:  # dataclasses, attrs, ...: let the registry say what the fields are
                rows = [self._registry.to_dict(p) for p in members]
                fields = tuple(dict.fromkeys(k for row in rows for k in row))
                columns = {f: [row.get(f) for row in rows] for f in fields}
            else:
                columns = {f: [getattr(p, f) for p in members] for f in fields}
            where: slice | np.ndarray[Any, Any] = (
                slice(start, start + len(payloads))
                if len(groups) == 1
                else np.asarray(indexes, dtype="int64") + start
            )
            for name, values in columns.items():
                self._columns.setdefault(name, []).append((where, _cells(values)))

    def frame(self, reserved: tuple[str, ...]) -> pd.DataFrame:
        data = {}
        for name, pieces in self._columns.items():
            column = np.full(self._rows, None, dtype=object)
            for where, cells in pieces:
                column[where] = _object_array(cells)
            label = f"payload_{name}" if name in reserved else name
            data[label] = pd.Series(column, dtype=object).infer_objects()
        return pd.DataFrame(data, index=pd.RangeIndex(self._rows))


def _object_array(values: list[Any]) -> np.ndarray[Any, Any]:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


# -- columns from an Arrow table (a store's native path) --------------------------------------------


def _objects(column: Any) -> np.ndarray[Any, Any]:
    """A string column as an object array sharing one Python string per distinct value (cheap for
    stream ids and type names, which repeat a lot)."""
    encoded = pc.dictionary_encode(column.combine_chunks())
    values = np.empty(len(encoded.dictionary) + 1, dtype=object)
    values[:-1] = encoded.dictionary.to_pylist()  # the last slot stays None, for nulls
    return values[encoded.indices.fill_null(len(encoded.dictionary)).to_numpy()]


#: the ``8-4-4-4-12`` groups of a UUID's text: (first byte, end byte, first character)
_GROUPS = ((0, 4, 0), (4, 6, 9), (6, 8, 14), (8, 10, 19), (10, 16, 24))


def id_strings(column: Any) -> np.ndarray[Any, Any]:
    """16-byte big-endian ids (an Arrow binary column) as ``str(uuid.UUID(bytes=...))`` gives them,
    in an object array: numpy writes the hex digits and dashes of all ids at once, and Arrow makes
    the Python strings, with no Python call per id."""
    fixed = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    fixed = fixed.cast(pa.binary(16))
    count = len(fixed)
    raw = np.frombuffer(fixed.buffers()[1], dtype=np.uint8, count=16 * (fixed.offset + count))
    raw = raw[16 * fixed.offset :].reshape(count, 16)
    text = np.full((count, 36), ord("-"), dtype=np.uint8)
    for half, nibbles in ((0, raw >> 4), (1, raw & 15)):
        nibbles += ord("0") + (nibbles > 9) * np.uint8(ord("a") - ord("0") - 10)  # 0-9a-f
        for first, end, at in _GROUPS:
            text[:, at + half : at + 2 * (end - first) : 2] = nibbles[:, first:end]
    offsets = np.arange(0, 36 * count + 1, 36, dtype=np.int32)
    strings = pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(text))
    return strings.to_numpy(zero_copy_only=False)


def uuid_strings(ids: list[uuid.UUID]) -> np.ndarray[Any, Any]:
    """``uuid.UUID`` objects as :func:`id_strings` makes them (their bytes gathered by msgspec, in C)."""
    packed = uuid_bytes(ids).tobytes()
    return id_strings(
        pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(ids), [None, pa.py_buffer(packed)])
    )


def _payload_column(column: Any) -> pd.Series:
    """A payload column as :meth:`PayloadColumns.frame` makes it (object cells, then
    ``infer_objects``), but converted by Arrow where that gives the same dtype and values."""
    if column.null_count == len(column):
        return pd.Series(np.full(len(column), None, dtype=object), dtype=object, copy=False)
    if pa.types.is_string(column.type):
        series = column.to_pandas()
        if series.dtype == _inferred_string_dtype():
            return series
        return pd.Series(_objects(column), dtype=object, copy=False).infer_objects()
    # numbers: float64 with NaN for missing cells, as infer_objects makes of ints and None
    return pd.Series(_object_array(column.to_pylist()), dtype=object, copy=False).infer_objects()


def _inferred_string_dtype() -> Any:
    """What ``infer_objects`` makes of strings (depends on the pandas version and options)."""
    return pd.Series(np.array(["x"], dtype=object), dtype=object).infer_objects().dtype


def arrow_frame(
    table: Any,
    payload_fields: list[str],
    reserved: tuple[str, ...],
    defaults: dict[str, dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """The events frame from a store's Arrow table (see ``DuckDBStore.events_table``), with the same
    columns, dtypes and values as :class:`EnvelopeColumns` and :class:`PayloadColumns` give.

    ``defaults`` (field -> event type -> value) fill the cells of events whose JSON lacks a field
    their class declares with a default, as decoding them would. Raises ``pa.ArrowInvalid`` when an
    int column does not fit int64."""
    micros = table.column("recorded_at").combine_chunks().cast(pa.int64()).to_numpy()
    data: dict[str, Any] = {
        "position": table.column("position").to_numpy().astype("int64", copy=False),
        "stream_id": pd.Series(_objects(table.column("stream_id")), dtype=object, copy=False),
        "version": table.column("version").to_numpy().astype("int64", copy=False),
        "event_type": pd.Series(_objects(table.column("event_type")), dtype=object, copy=False),
        "recorded_at": pd.to_datetime(micros, unit="us", utc=True),
        "event_id": pd.Series(id_strings(table.column("event_id")), dtype=object, copy=False),
    }
    for name in ("correlation_id", "causation_id", "user_id"):
        data[name] = pd.Series(_objects(table.column(name)), dtype=object, copy=False)
    for name in payload_fields:
        label = f"payload_{name}" if name in reserved else name
        column = table.column(name)
        if pa.types.is_decimal(column.type):
            column = column.cast(pa.int64())  # checked: raises when a value does not fit
        for event_type, value in (defaults or {}).get(name, {}).items():
            missing = pc.and_(pc.equal(table.column("event_type"), event_type), pc.is_null(column))
            column = pc.if_else(missing, pa.scalar(value, column.type), column)
        data[label] = _payload_column(column)
    return pd.DataFrame(data, index=pd.RangeIndex(table.num_rows), copy=False)
