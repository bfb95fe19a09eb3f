"""Reading a backup back with every check on, and verifying backups and stores against each other."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from ..core.errors import EventCoreError
from ..core.events import StoredEvent
from ..core.registry import EventRegistry, default_registry
from ..stores.bulk import iter_store
from ._format import (
    MANIFEST,
    BackupError,
    FileEntry,
    Manifest,
    content_bytes,
    describe_line,
    line_decoder,
    line_hash,
    manifest_decoder,
    split_line,
)


def load_manifest(directory: str | os.PathLike[str]) -> Manifest:
    """The manifest of the backup in ``directory``; BackupError if there is no valid one."""
    path = Path(directory) / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BackupError(
            f"{Path(directory)} is not a backup: it has no {MANIFEST} (an interrupted backup never has one)"
        ) from None
    try:
        manifest = manifest_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise BackupError(f"{path} is not a valid backup manifest: {exc}") from exc
    if manifest.format != "eventcore-backup" or manifest.format_version != 1:
        raise BackupError(f"{path}: unsupported backup format {manifest.format} v{manifest.format_version}")
    return manifest


@dataclass
class _Tally:
    content: Any = field(default_factory=hashlib.sha256)
    count: int = 0
    last_position: int = 0


def _file_lines(directory: Path, entry: FileEntry) -> Iterator[tuple[int, bytes, str]]:
    """(line number, line, recorded line hash) of one data file, checking both files' SHA-256 at the end."""
    data_path, lines_path = directory / entry.name, directory / entry.lines_file
    for path in (data_path, lines_path):
        if not path.exists():
            raise BackupError(f"{path.name} is missing from the backup in {directory}")
    data_sha, lines_sha = hashlib.sha256(), hashlib.sha256()
    number = 0
    with open(data_path, "rb") as data, open(lines_path, "rb") as hashes:
        for number, raw in enumerate(data, 1):
            recorded = hashes.readline()
            data_sha.update(raw)
            lines_sha.update(recorded)
            yield number, raw.rstrip(b"\n"), recorded.rstrip(b"\n").decode("ascii", "replace")
        extra = hashes.read()
        lines_sha.update(extra)
    if extra:
        raise BackupError(f"{lines_path.name} lists more line hashes than {entry.name} has lines ({number})")
    if number != entry.events:
        raise BackupError(f"{entry.name} has {number} events; the manifest says {entry.events}")
    if data_sha.hexdigest() != entry.sha256:
        raise BackupError(f"{entry.name}: SHA-256 does not match the manifest")
    if lines_sha.hexdigest() != entry.lines_sha256:
        raise BackupError(f"{lines_path.name}: SHA-256 does not match the manifest")


def read_backup(
    directory: str | os.PathLike[str],
    registry: EventRegistry | None = None,
    *,
    manifest: Manifest | None = None,
    until_position: int | None = None,
    until_time: Any = None,
) -> Iterator[StoredEvent]:
    """Yield a backup's events, checking each line against its hash and each file against the
    manifest as it goes; raise BackupError naming the file and the first bad event.

    ``until_position``/``until_time`` stop early (point in time): at the first event past either.
    """
    directory = Path(directory)
    manifest = manifest or load_manifest(directory)
    registry = registry or default_registry
    tally = _Tally(last_position=manifest.after)
    for entry in manifest.files:
        for number, line, recorded in _file_lines(directory, entry):
            where = f"{entry.name} line {number}"
            if line_hash(line) != recorded:
                sha = _sha_of(directory / entry.name)
                culprit = entry.name if sha != entry.sha256 else entry.lines_file
                raise BackupError(
                    f"{culprit} is damaged: {where} ({describe_line(line)}) does not match its recorded "
                    f"hash; this is the first bad event"
                )
            try:
                parsed = line_decoder.decode(line)
                position, content = split_line(line)
            except (msgspec.DecodeError, BackupError) as exc:
                raise BackupError(f"{where} is not an event record: {exc}") from exc
            if position <= tally.last_position:
                raise BackupError(
                    f"{where}: position {position} does not follow position {tally.last_position}"
                )
            if until_position is not None and position > until_position:
                return
            if until_time is not None and parsed.recorded_at > until_time:
                return
            try:
                payload = registry.decode(parsed.event_type, parsed.payload)
            except EventCoreError as exc:
                raise BackupError(f"{where} ({describe_line(line)}): {exc.message}") from exc
            tally.content.update(content + b"\n")
            tally.count += 1
            tally.last_position = position
            yield StoredEvent(
                event_id=parsed.event_id,
                stream_id=parsed.stream_id,
                version=parsed.version,
                position=position,
                event_type=parsed.event_type,
                payload=payload,
                metadata=parsed.metadata,
                recorded_at=parsed.recorded_at,
                tags=parsed.tags,
            )
    if tally.count != manifest.event_count:
        raise BackupError(
            f"{directory.name}: {tally.count} events read; the manifest says {manifest.event_count}"
        )
    if tally.content.hexdigest() != manifest.content_hash:
        raise BackupError(f"{directory.name}: the content hash of the events does not match the manifest")
    if tally.count and tally.last_position != manifest.last_position:
        raise BackupError(
            f"{directory.name}: last position {tally.last_position}; manifest says {manifest.last_position}"
        )


def _sha_of(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify`: ``ok``, and the first problem found (None when ok)."""

    directory: str
    ok: bool
    events: int
    streams: int
    problem: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "ok": self.ok,
            "events": self.events,
            "streams": self.streams,
            "problem": self.problem,
        }


def verify(
    directory: str | os.PathLike[str], registry: EventRegistry | None = None, *, previous: Sequence[str] = ()
) -> VerifyReport:
    """Recompute every checksum, hash and count of a backup and check the events themselves: versions
    gap-free per stream (from 1 in a full backup), positions increasing, ids unique, payloads decodable.

    Returns a report naming the first problem; never raises for a bad backup (only for a missing one).
    """
    directory = Path(directory)
    manifest = load_manifest(directory)
    versions: dict[str, int] = {}
    ids: set[int] = set()
    count = 0
    try:
        for event in read_backup(directory, registry, manifest=manifest):
            count += 1
            last = versions.get(event.stream_id)
            expected = (last + 1) if last is not None else (1 if manifest.kind == "full" else event.version)
            if event.version != expected:
                raise BackupError(
                    f"event {event.event_id} at position {event.position}: stream {event.stream_id!r} jumps "
                    f"to version {event.version}, expected {expected}"
                )
            versions[event.stream_id] = event.version
            key = event.event_id.int
            if key in ids:
                raise BackupError(
                    f"event id {event.event_id} appears twice (again at position {event.position})"
                )
            ids.add(key)
        if len(versions) != manifest.stream_count:
            raise BackupError(f"{len(versions)} streams found; the manifest says {manifest.stream_count}")
    except BackupError as problem:
        return VerifyReport(str(directory), False, count, len(versions), problem.message)
    return VerifyReport(str(directory), True, count, len(versions), None)


def store_content_hash(store: Any, *, after: int = 0) -> tuple[str, int]:
    """(content hash, event count) of a live store's log after ``after``, comparable to a backup's."""
    registry = getattr(store, "registry", None) or default_registry
    sha = hashlib.sha256()
    count = 0
    for event in iter_store(store, after=after):
        sha.update(content_bytes(event, registry.encode(event.payload)) + b"\n")
        count += 1
    return sha.hexdigest(), count


def chain_content_hash(directories: Sequence[str | os.PathLike[str]]) -> tuple[str, int]:
    """The content hash a store restored from this chain of backups must have (rehashing each event)."""
    sha = hashlib.sha256()
    count = 0
    for directory in directories:
        manifest = load_manifest(directory)
        for entry in manifest.files:
            for _number, line, _recorded in _file_lines(Path(directory), entry):
                sha.update(split_line(line)[1] + b"\n")
                count += 1
    return sha.hexdigest(), count
