"""Event fields converted a column at a time, for the bulk paths that hand a database whole columns.

Per event in Python, converting an id or a timestamp costs more than DuckDB's whole insert of it; here
msgspec and numpy do it in C, and values most events share (one metadata object, one timestamp) are
converted once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(at: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (naive times are taken as UTC, as DuckDB would)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (at - EPOCH) // _MICROSECOND


_uuid_encoder = msgspec.msgpack.Encoder(uuid_format="bytes")

#: A UUID in MessagePack with ``uuid_format="bytes"``: a 2-byte bin8 header, then its 16 bytes.
_PACKED_UUID = 18


def uuid_bytes(ids: list[uuid.UUID]) -> npt.NDArray[np.uint8]:
    """Each id's 16 bytes, one row each: msgspec packs them in C (after an array header), numpy cuts
    each one out of its MessagePack header."""
    packed = _uuid_encoder.encode(ids)
    count = len(ids)
    rows = np.frombuffer(packed, np.uint8, offset=len(packed) - _PACKED_UUID * count)
    return rows.reshape(count, _PACKED_UUID)[:, _PACKED_UUID - 16 :]


def shared(values: list[Any]) -> tuple[list[Any], npt.NDArray[np.int32]]:
    """The distinct objects of ``values`` (by identity) and each row's index into them: the rows of an
    append share one object (metadata, timestamp), an export's a few."""
    if values and values.count(values[0]) == len(values):  # all equal to the first: one C-level pass
        return values[:1], np.zeros(len(values), np.int32)
    distinct = dict(zip(map(id, values), values, strict=True))
    code = {key: i for i, key in enumerate(distinct)}
    return list(distinct.values()), np.fromiter(map(code.__getitem__, map(id, values)), np.int32, len(values))


def timestamp_micros(stamps: list[datetime]) -> npt.NDArray[np.int64]:
    """Each timestamp as microseconds since the Unix epoch, each distinct object converted once (equal
    aware times are the same instant)."""
    distinct, codes = shared(stamps)
    return np.array([micros(at) for at in distinct], np.int64)[codes]
