"""Taking a logical backup of any store: full, or incremental from a position."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.events import StoredEvent
from ..core.registry import default_registry
from ..stores.bulk import iter_store, progress_bar
from ._format import (
    MANIFEST,
    BackupError,
    FileEntry,
    Manifest,
    content_bytes,
    encode_manifest,
    line_bytes,
    line_hash,
)

#: Events per data file: small enough that one file is quick to re-check, large enough to stay few.
EVENTS_PER_FILE = 250_000


def _events_of(store: Any, after: int) -> Iterator[StoredEvent]:
    """The log after ``after`` through ``read_all``, which never skips an event that commits late with a
    smaller position (so an incremental backup from ``last_position`` misses nothing)."""
    return iter_store(store, after=after)


class _FileWriter:
    def __init__(self, directory: Path, number: int) -> None:
        self.name = f"events-{number:06d}.jsonl"
        self.lines_name = f"events-{number:06d}.lines"
        self._data = open(directory / self.name, "wb", buffering=1 << 20)  # noqa: SIM115
        self._lines = open(directory / self.lines_name, "wb", buffering=1 << 16)  # noqa: SIM115
        self._sha = hashlib.sha256()
        self._lines_sha = hashlib.sha256()
        self.events = 0
        self.bytes = 0
        self.first = 0
        self.last = 0

    def write(self, position: int, line: bytes) -> None:
        data = line + b"\n"
        digest = line_hash(line).encode() + b"\n"
        self._data.write(data)
        self._lines.write(digest)
        self._sha.update(data)
        self._lines_sha.update(digest)
        self.bytes += len(data)
        self.events += 1
        self.first = self.first or position
        self.last = position

    def close(self) -> FileEntry:
        for handle in (self._data, self._lines):
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        return FileEntry(
            name=self.name,
            lines_file=self.lines_name,
            events=self.events,
            bytes=self.bytes,
            sha256=self._sha.hexdigest(),
            lines_sha256=self._lines_sha.hexdigest(),
            first_position=self.first,
            last_position=self.last,
        )


def backup(
    store: Any,
    directory: str | os.PathLike[str],
    *,
    after: int = 0,
    events_per_file: int = EVENTS_PER_FILE,
    progress: bool | None = None,
) -> Manifest:
    """Write every event of ``store`` with position > ``after`` to a new backup ``directory``.

    ``after=0`` makes a full backup; ``after=<last_position of the previous backup>`` an incremental
    one. The backup is assembled in a sibling temporary directory and renamed into place at the end, so
    ``directory`` either does not exist or holds a complete backup. Refuses an existing ``directory``.
    """
    target = Path(directory)
    if target.exists():
        raise BackupError(f"{target} already exists; choose a new directory for the backup")
    if not isinstance(after, int) or after < 0:
        raise BackupError(f"after must be a position >= 0, got {after!r}")
    if events_per_file < 1:
        raise BackupError(f"events_per_file must be >= 1, got {events_per_file}")
    registry = getattr(store, "registry", None) or default_registry
    work = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")
    work.mkdir(parents=True)
    try:
        manifest = _write(store, work, after, events_per_file, registry, progress)
        (work / MANIFEST).write_bytes(encode_manifest(manifest))
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def _write(
    store: Any, work: Path, after: int, events_per_file: int, registry: Any, progress: bool | None
) -> Manifest:
    content_hash = hashlib.sha256()
    files: list[FileEntry] = []
    writer: _FileWriter | None = None
    streams: set[str] = set()
    count = 0
    first_position = last_position = 0
    first_time: datetime | None = None
    last_time: datetime | None = None
    total = max(int(store.head()) - after, 0)
    with progress_bar(total=total, desc="backup", progress=progress) as bar:
        for event in _events_of(store, after):
            if writer is None or writer.events >= events_per_file:
                if writer is not None:
                    files.append(writer.close())
                writer = _FileWriter(work, len(files) + 1)
            content = content_bytes(event, registry.encode(event.payload))
            content_hash.update(content + b"\n")
            writer.write(event.position, line_bytes(event.position, content))
            streams.add(event.stream_id)
            count += 1
            first_position = first_position or event.position
            last_position = event.position
            first_time = first_time or event.recorded_at
            last_time = event.recorded_at
            if count % 10_000 == 0:
                bar.update(10_000)
        bar.update(count % 10_000)
    if writer is not None:
        files.append(writer.close())
    return Manifest(
        backup_id=str(uuid.uuid4()),
        kind="full" if after == 0 else "incremental",
        created_at=datetime.now(UTC),
        after=after,
        event_count=count,
        stream_count=len(streams),
        first_position=first_position,
        last_position=last_position or after,
        first_recorded_at=first_time,
        last_recorded_at=last_time,
        content_hash=content_hash.hexdigest(),
        files=files,
        source=repr(store),
    )
