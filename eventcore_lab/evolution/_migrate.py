"""Copy-and-transform migration: a whole history rewritten into a new store at the current versions.

The source is only read. The target receives the events in position order, in batches, each batch one
``import_events`` (all-or-nothing), so an interrupted migration leaves a prefix of the history in the
target; running it again continues after the target's last event id. :func:`verify` compares counts and
a content hash per stream.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec
import pandas as pd

from ..core.events import StoredEvent
from ..core.registry import EventRegistry, RetiredEvent, UnknownEvent, schema_version_of
from ..projections._progress import progress_bar
from ..stores.base import EventStore
from ._errors import MigrationVerificationFailed
from ._scan import scan
from ._upcasters import Upcasters

_metadata = msgspec.json.Encoder(order="sorted")


@dataclass(frozen=True)
class MigrationResult:
    """What one :func:`migrate` call did: events copied now, already there before, and the check."""

    copied: int
    resumed_after: int
    verification: pd.DataFrame


def migrate(
    source: EventStore,
    target: EventStore,
    *,
    upcasters: Upcasters | None = None,
    batch_size: int = 5_000,
    progress: bool | None = None,
    verify_after: bool = True,
) -> MigrationResult:
    """Rewrite ``source`` into ``target`` with every event at its current schema version.

    Event ids, streams, versions, order, metadata and times are kept; positions are the target's own.
    ``upcasters`` (default: those installed on the target's registry) bring payloads up to date;
    retired events are copied as they are stored. When the target already holds a prefix of the source
    (an interrupted run), copying continues after it; a target holding anything else is refused.
    ``verify_after`` runs :func:`verify` at the end (MigrationVerificationFailed on a difference).
    """
    registry = target.registry
    if upcasters is None and isinstance(registry.evolution, Upcasters):
        upcasters = registry.evolution
    done = target.head()
    after = _resume_point(source, target, done)
    total = max(source.head() - after, 0)
    copied = 0
    with progress_bar(total, "migrate", progress) as bar:
        for batch in scan(source, after=after, batch_size=batch_size):
            events = [
                _current(raw.event, raw.event_type, raw.schema_version, raw.raw, registry, upcasters)
                for raw in batch
            ]
            copied += target.import_events(events)
            bar.update(batch[-1].event.position - after)
            after = batch[-1].event.position
    frame = verify(source, target, upcasters=upcasters) if verify_after else pd.DataFrame()
    return MigrationResult(copied, done, frame)


def _resume_point(source: EventStore, target: EventStore, done: int) -> int:
    """The source position after which copying continues: after the event the target holds last.

    A target holding anything but a prefix of the source is refused (its next import would not follow
    the versions anyway, and :func:`verify` would fail).
    """
    if done == 0:
        return 0
    last = target.read_all(after=done - 1, limit=1)
    if not last:
        return 0
    wanted: uuid.UUID = last[0].event_id
    for batch in scan(source):
        for raw in batch:
            if raw.event.event_id == wanted:
                return raw.event.position
    raise MigrationVerificationFailed(
        f"the target already holds events (up to position {done}) that are not in the source; migrate "
        "into an empty store, or into the target of an interrupted migration of the same source"
    )


def _current(
    event: StoredEvent,
    event_type: str,
    schema_version: int,
    raw: bytes,
    registry: EventRegistry,
    upcasters: Upcasters | None,
) -> StoredEvent:
    if upcasters is not None and not upcasters.is_current(event_type, schema_version):
        new_type, payload = upcasters.upcast_payload(event_type, schema_version, raw)
    else:
        new_type, payload = event_type, registry.read(event_type, raw, schema_version)
    if type(payload) is RetiredEvent:  # no current class: keep the stored payload and version
        new_type, payload = event_type, UnknownEvent(event_type, raw, schema_version)
    return msgspec.structs.replace(event, event_type=new_type, payload=payload)


def content_hashes(store: EventStore, *, upcasters: Upcasters | None = None) -> pd.DataFrame:
    """Per stream: event count and a SHA-256 over every event as the current code reads it (id,
    version, type, schema version, payload JSON, metadata, time); positions are left out."""
    registry = store.registry
    hashes: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for batch in scan(store):
        for raw in batch:
            event = _current(raw.event, raw.event_type, raw.schema_version, raw.raw, registry, upcasters)
            payload = event.payload
            version = schema_version_of(payload)
            digest = hashes.get(event.stream_id)
            if digest is None:
                digest = hashes[event.stream_id] = hashlib.sha256()
                counts[event.stream_id] = 0
            counts[event.stream_id] += 1
            digest.update(
                b"\x1e".join(
                    [
                        event.event_id.bytes,
                        str(event.version).encode(),
                        event.event_type.encode(),
                        str(version).encode(),
                        _canonical(registry.encode(payload)),
                        _metadata.encode(event.metadata),
                        event.recorded_at.isoformat().encode(),
                    ]
                )
            )
    return pd.DataFrame(
        {
            "stream_id": list(hashes),
            "events": [counts[s] for s in hashes],
            "sha256": [hashes[s].hexdigest() for s in hashes],
        }
    )


def verify(source: EventStore, target: EventStore, *, upcasters: Upcasters | None = None) -> pd.DataFrame:
    """Compare ``source`` (read through ``upcasters``) with ``target`` stream by stream: counts and
    content hashes. Returns the comparison; raises MigrationVerificationFailed naming the streams that
    differ."""
    if upcasters is None and isinstance(target.registry.evolution, Upcasters):
        upcasters = target.registry.evolution
    left = content_hashes(source, upcasters=upcasters).set_index("stream_id")
    right = content_hashes(target, upcasters=upcasters).set_index("stream_id")
    both = left.merge(right, how="outer", left_index=True, right_index=True, suffixes=("_source", "_target"))
    both["same"] = (both["events_source"] == both["events_target"]) & (
        both["sha256_source"] == both["sha256_target"]
    )
    bad = both.index[~both["same"]].tolist()
    if bad:
        shown = ", ".join(map(repr, bad[:10])) + (" ..." if len(bad) > 10 else "")
        raise MigrationVerificationFailed(
            f"the migrated store differs from its source in {len(bad)} streams: {shown}"
        )
    return both.reset_index()


def _canonical(data: bytes) -> bytes:
    """JSON with sorted keys, so that equal payloads hash equally whatever their key order."""
    return _metadata.encode(msgspec.json.decode(data))
