"""Who did what and when, read back from the events' metadata (the executor records ``user=``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pandas as pd

from ..core.events import StoredEvent
from ..stores.base import EventStore

AUDIT_COLUMNS = [
    "position",
    "recorded_at",
    "user_id",
    "stream_id",
    "version",
    "event_type",
    "correlation_id",
    "causation_id",
]


def _events(store: EventStore, stream: str | None, batch_size: int) -> Iterator[StoredEvent]:
    if stream is not None:
        yield from store.read_stream(stream)
        return
    position = 0
    while page := store.read_all(after=position, limit=batch_size):
        yield from page
        position = page[-1].position


def audit_frame(
    store: EventStore,
    *,
    stream: str | None = None,
    user: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_size: int = 5000,
) -> pd.DataFrame:
    """One row per event (no payloads, so no personal data): position, time, user, stream, type and
    correlation, filtered by stream, user id and ``since <= recorded_at < until``."""
    rows = []
    for e in _events(store, stream, batch_size):
        if user is not None and e.metadata.user_id != user:
            continue
        if since is not None and e.recorded_at < since:
            continue
        if until is not None and e.recorded_at >= until:
            continue
        m = e.metadata
        rows.append(
            (
                e.position,
                e.recorded_at,
                m.user_id,
                e.stream_id,
                e.version,
                e.event_type,
                m.correlation_id,
                m.causation_id,
            )
        )
    frame = pd.DataFrame(rows, columns=AUDIT_COLUMNS)
    frame["recorded_at"] = pd.to_datetime(frame["recorded_at"], utc=True)
    return frame
