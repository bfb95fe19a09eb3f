"""An import's rows in PostgreSQL's binary COPY format, built a column at a time.

Formatting 100,000 rows one by one (a Python dumper per UUID and per tag list) costs the client more
CPU than validating them, on a machine it shares with the server. Here each row is the concatenation
of fixed-width parts (counts, lengths, integers, the UUID, the timestamp: one numpy record per row)
and the variable ones (stream id, type, payload, metadata, tags), joined row by row in C by Arrow.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from .._columns import shared, timestamp_micros, uuid_bytes

#: What a binary COPY stream starts and ends with.
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
TRAILER = b"\xff\xff"

#: 2000-01-01 (PostgreSQL's timestamp epoch) in microseconds since the Unix epoch.
_PG_EPOCH = 946_684_800_000_000

_TEXT_OID = 25
_EMPTY_TEXT_ARRAY = struct.pack(">iii", 0, 0, _TEXT_OID)  # no dimensions, no nulls, of text

# The fixed-width parts of a row, around its variable fields (big-endian, as COPY wants).
_HEAD = np.dtype([("fields", ">i2"), ("position_len", ">i4"), ("position", ">i8"), ("stream_len", ">i4")])
_MIDDLE = np.dtype(
    [
        ("version_len", ">i4"),
        ("version", ">i8"),
        ("id_len", ">i4"),
        ("id", "V16"),
        ("type_len", ">i4"),
    ]
)
_LENGTH = np.dtype([("len", ">i4")])
_TAIL = np.dtype(
    [
        ("recorded_len", ">i4"),
        ("recorded", ">i8"),
        ("schema_len", ">i4"),
        ("schema", ">i4"),
        ("tags_len", ">i4"),
    ]
)

#: Rows per block sent: the server parses one block while the next is built.
BLOCK = 25_000


class CopyColumns:
    """The columns of an import, as COPY needs them (positions come later, from the server)."""

    def __init__(
        self,
        streams: list[str],
        versions: list[int],
        event_ids: list[uuid.UUID],
        types: list[str],
        payloads: list[bytes],
        metadata: list[bytes],
        recorded: list[datetime],
        schema_versions: list[int],
        tags: list[tuple[str, ...]],
    ) -> None:
        self.streams, self.versions, self.event_ids, self.types = streams, versions, event_ids, types
        self.payloads, self.metadata, self.recorded = payloads, metadata, recorded
        self.schema_versions, self.tags = schema_versions, tags

    def __len__(self) -> int:
        return len(self.streams)

    def blocks(self, positions: Sequence[int]) -> Iterator[tuple[memoryview, int]]:
        """The COPY stream (signature, rows, trailer) in blocks of :data:`BLOCK` rows, with the number
        of rows in each."""
        yield memoryview(SIGNATURE), 0
        for start in range(0, len(self), BLOCK):
            stop = min(start + BLOCK, len(self))
            yield self._rows(positions, start, stop), stop - start
        yield memoryview(TRAILER), 0

    def _rows(self, positions: Sequence[int], start: int, stop: int) -> memoryview:
        count, cut = stop - start, slice(start, stop)
        streams = _binary(pa.array(self.streams[cut], pa.string()))
        types = _binary(pa.array(self.types[cut], pa.string()))
        payloads = pa.array(self.payloads[cut], pa.binary())
        distinct, codes = shared(self.metadata[cut])
        metadata = pa.array(distinct, pa.binary()).take(pa.array(codes))
        tags = _tag_arrays(self.tags[cut])

        head = np.empty(count, _HEAD)
        head["fields"], head["position_len"], head["stream_len"] = 10, 8, _lengths(streams)
        head["position"] = positions[cut]
        middle = np.empty(count, _MIDDLE)
        middle["version_len"], middle["version"] = 8, self.versions[cut]
        middle["id_len"], middle["id"] = 16, uuid_bytes(self.event_ids[cut]).view("V16")[:, 0]
        middle["type_len"] = _lengths(types)
        tail = np.empty(count, _TAIL)
        tail["recorded_len"], tail["recorded"] = 8, timestamp_micros(self.recorded[cut]) - _PG_EPOCH
        tail["schema_len"], tail["schema"] = 4, self.schema_versions[cut]
        tail["tags_len"] = _lengths(tags)
        parts = [
            _records(head),
            streams,
            _records(middle),
            types,
            _records(_with_length(payloads)),
            payloads,
            _records(_with_length(metadata)),
            metadata,
            _records(tail),
            tags,
        ]
        rows = pc.binary_join_element_wise(*parts, b"")
        offsets = np.frombuffer(rows.buffers()[1], np.int32, count + 1, rows.offset * 4)
        return memoryview(rows.buffers()[2])[offsets[0] : offsets[-1]]


def _binary(texts: pa.Array) -> pa.Array:
    return texts.cast(pa.binary())  # UTF-8 bytes as they are: no copy


def _lengths(values: pa.Array) -> npt.NDArray[np.int32]:
    return np.asarray(pc.binary_length(values).to_numpy(zero_copy_only=False), np.int32)


def _with_length(values: pa.Array) -> npt.NDArray[np.void]:
    lengths = np.empty(len(values), _LENGTH)
    lengths["len"] = _lengths(values)
    return lengths


def _records(records: npt.NDArray[np.void]) -> pa.Array:
    """Each numpy record's bytes as one binary value."""
    width = records.dtype.itemsize
    data = pa.py_buffer(records.tobytes())
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(records), [None, data])
    return fixed.cast(pa.binary())


def _tag_arrays(tags: list[tuple[str, ...]]) -> pa.Array:
    """Each row's tags as a binary text[]; untagged rows (most) share one empty array."""
    if not any(tags):
        return pa.array([_EMPTY_TEXT_ARRAY] * len(tags), pa.binary())
    return pa.array([_text_array(row) for row in tags], pa.binary())


def _text_array(tags: tuple[str, ...]) -> bytes:
    """One-dimensional text[] in binary: dimensions, null flag, element type, size and lower bound,
    then each element's length and UTF-8 bytes."""
    if not tags:
        return _EMPTY_TEXT_ARRAY
    parts = [struct.pack(">iiiii", 1, 0, _TEXT_OID, len(tags), 1)]
    for tag in tags:
        data = tag.encode()
        parts.append(struct.pack(">i", len(data)) + data)
    return b"".join(parts)
