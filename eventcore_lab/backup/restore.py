"""Restoring a chain of backups (one full, then incrementals) into an empty store, up to a point in time."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core.events import StoredEvent
from ..core.registry import EventRegistry
from ..stores.bulk import progress_bar
from ._format import BackupError, Manifest
from .verify import load_manifest, read_backup


@dataclass(frozen=True)
class RestoreResult:
    """What a restore wrote: events and streams, and the last source position it reached."""

    events: int
    streams: int
    source_last_position: int
    backups: int

    def to_dict(self) -> dict[str, int]:
        return {
            "events": self.events,
            "streams": self.streams,
            "source_last_position": self.source_last_position,
            "backups": self.backups,
        }


def check_chain(directories: Sequence[str | os.PathLike[str]]) -> list[Manifest]:
    """The manifests of a restorable chain: a full backup, then incrementals each continuing the last."""
    if not directories:
        raise BackupError("no backup given to restore")
    manifests = [load_manifest(d) for d in directories]
    if manifests[0].after != 0:
        raise BackupError(
            f"{Path(directories[0]).name} is an incremental backup (after position {manifests[0].after}); "
            "a restore starts from a full backup"
        )
    pairs = list(zip(directories, manifests, strict=True))
    for (prev_dir, prev), (next_dir, nxt) in itertools.pairwise(pairs):
        if nxt.after != prev.last_position:
            raise BackupError(
                f"{Path(next_dir).name} continues after position {nxt.after}, but {Path(prev_dir).name} "
                f"ends at {prev.last_position}; pass the backups of one chain, oldest first"
            )
    return manifests


def restore(
    store: Any,
    directories: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    until_position: int | None = None,
    until_time: datetime | None = None,
    registry: EventRegistry | None = None,
    progress: bool | None = None,
) -> RestoreResult:
    """Import a chain of backups into the empty ``store`` in one all-or-nothing import.

    Every line is checked against its hash and every file against the manifest while reading; any
    mismatch aborts before anything is committed. ``until_position`` (a source position) or
    ``until_time`` (an aware datetime) restores the log as it was then: the prefix of the log up to the
    first event past either bound. Ids, versions, order, payloads, metadata and times are kept;
    positions are numbered anew by the target store.
    """
    chain = [directories] if isinstance(directories, str | os.PathLike) else list(directories)
    manifests = check_chain(chain)
    if until_time is not None and until_time.tzinfo is None:
        raise BackupError("until_time must be timezone-aware (e.g. datetime(..., tzinfo=UTC))")
    if int(store.head()) != 0:
        raise BackupError(
            f"the target store is not empty (head position {store.head()}); restore into an empty store"
        )
    registry = registry or getattr(store, "registry", None)
    total = sum(m.event_count for m in manifests)
    seen = {"last": 0, "streams": set()}  # type: dict[str, Any]

    def events() -> Iterator[StoredEvent]:
        with progress_bar(total=total, desc="restore", progress=progress) as bar:
            for directory, manifest in zip(chain, manifests, strict=True):
                for event in read_backup(
                    directory,
                    registry,
                    manifest=manifest,
                    until_position=until_position,
                    until_time=until_time,
                ):
                    seen["last"] = event.position
                    seen["streams"].add(event.stream_id)
                    bar.update(1)
                    yield event
                if until_position is not None and seen["last"] < manifest.last_position:
                    return  # stopped inside this backup: later ones are past the bound too
                if until_time is not None and seen["last"] < manifest.last_position:
                    return

    count = int(store.import_events(events()))
    return RestoreResult(count, len(seen["streams"]), seen["last"], len(chain))
