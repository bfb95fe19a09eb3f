"""The backup format: JSON Lines event files, a line-hash file beside each, and a manifest.

A backup is a directory::

    manifest.json            counts, first/last position and time, per-file SHA-256, content hash
    events-000001.jsonl      one stored event per line (the bulk JSON Lines format, position first)
    events-000001.lines      the first 128 bits of the SHA-256 of each event line, one hex per line

The **content hash** is the SHA-256 over every event's line *without* its position, in log order: a
restored store renumbers positions, so comparing a store with a backup compares ids, streams,
versions, types, payloads, metadata, times and order, not position numbers. The line hashes let
``verify`` name the first bad event when a file's checksum does not match.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

import msgspec

from ..core.errors import InvalidFormat
from ..core.events import Metadata, StoredEvent

FORMAT = "eventcore-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class BackupError(InvalidFormat):
    """A backup is missing, malformed, does not match its manifest, or cannot be restored here."""


class _Content(msgspec.Struct, omit_defaults=True):
    """An event line without its position: what the content hash covers. ``tags`` are left out when
    there are none, so an untagged event's line is what it was before tags existed."""

    event_id: uuid.UUID
    stream_id: str
    version: int
    event_type: str
    payload: msgspec.Raw
    metadata: Metadata
    recorded_at: datetime
    tags: tuple[str, ...] = ()


class Line(msgspec.Struct):
    """One event line as read back (same fields, position first)."""

    position: int
    event_id: uuid.UUID
    stream_id: str
    version: int
    event_type: str
    payload: msgspec.Raw
    metadata: Metadata
    recorded_at: datetime
    tags: tuple[str, ...] = ()


class FileEntry(msgspec.Struct, kw_only=True):
    name: str
    lines_file: str
    events: int
    bytes: int
    sha256: str
    lines_sha256: str
    first_position: int
    last_position: int


class Manifest(msgspec.Struct, kw_only=True):
    """What a backup holds; written last, so a directory without it is not a backup."""

    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    backup_id: str
    kind: str  # "full" or "incremental"
    created_at: datetime
    after: int
    event_count: int
    stream_count: int
    first_position: int
    last_position: int
    first_recorded_at: datetime | None
    last_recorded_at: datetime | None
    content_hash: str
    files: list[FileEntry]
    source: str = ""


_encoder = msgspec.json.Encoder()
line_decoder = msgspec.json.Decoder(Line)
manifest_decoder = msgspec.json.Decoder(Manifest)


def encode_manifest(manifest: Manifest) -> bytes:
    return msgspec.json.format(_encoder.encode(manifest), indent=2) + b"\n"


def content_bytes(event: StoredEvent, payload_json: bytes) -> bytes:
    """The canonical JSON of ``event`` without its position."""
    return _encoder.encode(
        _Content(
            event.event_id,
            str(event.stream_id),
            event.version,
            event.event_type,
            msgspec.Raw(payload_json),
            event.metadata,
            event.recorded_at,
            event.tags,
        )
    )


_PREFIX = b'{"position":'


def line_bytes(position: int, content: bytes) -> bytes:
    """The event line: the position spliced in front of the content object."""
    return b"%s%d,%s" % (_PREFIX, position, content[1:])


def split_line(line: bytes) -> tuple[int, bytes]:
    """(position, content bytes) of an event line; raises BackupError if it is not one."""
    if not line.startswith(_PREFIX):
        raise BackupError("line does not start with the position field")
    comma = line.find(b",", len(_PREFIX))
    try:
        position = int(line[len(_PREFIX) : comma])
    except ValueError:
        raise BackupError("position is not an integer") from None
    return position, b"{" + line[comma + 1 :]


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()[:32]


def describe_line(line: bytes) -> str:
    """What can be told of a (possibly damaged) line: position, event id, stream and version."""
    try:
        parsed: Any = line_decoder.decode(line)
    except msgspec.DecodeError:
        try:
            position, _ = split_line(line)
            return f"position {position} (the line no longer parses as an event)"
        except BackupError:
            return "an event whose line no longer parses"
    return (
        f"position {parsed.position}, event {parsed.event_id}, stream {parsed.stream_id!r} "
        f"version {parsed.version}"
    )
