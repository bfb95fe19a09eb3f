"""Which partition a stream belongs to: a stable hash, the same in every process and on every machine.

Python's ``hash()`` is salted per process, so it cannot split work between processes; a CRC-32 of the
stream id's UTF-8 bytes is stable, fast and spreads stream ids evenly enough for a few hundred partitions.
"""

from __future__ import annotations

import zlib

from ..core.errors import InvalidFormat

MAX_PARTITIONS = 4096


def check_partitions(count: object) -> int:
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_PARTITIONS:
        raise InvalidFormat(f"partitions must be an int from 1 to {MAX_PARTITIONS}, got {count!r}")
    return count


def partition_of(stream_id: str, partitions: int) -> int:
    """The partition (0 .. partitions-1) of ``stream_id``; every event of a stream lands in one partition,
    which is what keeps per-stream order when partitions are spread over workers."""
    return zlib.crc32(stream_id.encode("utf-8")) % partitions
