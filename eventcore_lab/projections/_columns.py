"""Turning batches of stored events into DataFrame columns quickly.

Python objects become columns field by field (one ``getattr`` per cell), not row dicts: building a
dict per event and letting pandas sort the keys out is several times slower, and ``events_frame`` is
the entry to every vectorised replay.
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
                "event_id": obj(self.event_id),
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
