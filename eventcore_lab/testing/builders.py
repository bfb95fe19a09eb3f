"""Builders for stored events, so tests of projections and folds need no store."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from ..core.errors import InvalidFormat
from ..core.events import Metadata, StoredEvent
from ..core.ids import StreamId, new_event_id
from ..core.registry import EventRegistry, default_registry

#: The ``recorded_at`` of built events unless given: fixed, so built histories compare equal across runs.
BUILT_AT = datetime(2024, 1, 1, tzinfo=UTC)


def stored_event(
    payload: object,
    stream_id: str = "test-stream",
    *,
    version: int = 1,
    position: int | None = None,
    event_id: uuid.UUID | None = None,
    metadata: Metadata | None = None,
    user_id: str | None = "test-user",
    recorded_at: datetime | None = None,
    registry: EventRegistry | None = None,
) -> StoredEvent:
    """A StoredEvent as a store would return it, with test defaults for everything but the payload.

    The payload's class must be registered (as a store would require); ``position`` defaults to
    ``version``, which is right for a one-stream history.
    """
    if not isinstance(version, int) or version < 1:
        raise InvalidFormat(f"a stored event's version is an int >= 1, got {version!r}")
    event_type = (registry or default_registry).type_name(payload)
    return StoredEvent(
        event_id=event_id or new_event_id(),
        stream_id=StreamId(stream_id),
        version=version,
        position=version if position is None else position,
        event_type=event_type,
        payload=payload,
        metadata=metadata or Metadata(user_id=user_id),
        recorded_at=recorded_at or BUILT_AT,
    )


def build_history(*writes: tuple[str, object], start_position: int = 1, **kwargs: Any) -> list[StoredEvent]:
    """Stored events for ``(stream_id, payload)`` pairs in this order, with consistent versions and
    positions, as if each had been appended in turn to an empty store."""
    versions: dict[str, int] = {}
    events = []
    for offset, item in enumerate(writes):
        if not (isinstance(item, tuple) and len(item) == 2):
            raise InvalidFormat(f"build_history takes (stream_id, payload) pairs, got {item!r}")
        sid, payload = item
        sid = StreamId(sid)
        versions[sid] = versions.get(sid, 0) + 1
        events.append(
            stored_event(payload, sid, version=versions[sid], position=start_position + offset, **kwargs)
        )
    return events


class StoredEventBuilder:
    """Fluent form of :func:`stored_event` for tests that vary one field at a time.

    >>> StoredEventBuilder().stream("account-1").version(2).user("ann").build(MoneyDeposited(amount=5))
    """

    def __init__(self) -> None:
        self._fields: dict[str, Any] = {}

    def stream(self, stream_id: str) -> StoredEventBuilder:
        return self._with(stream_id=stream_id)

    def version(self, version: int) -> StoredEventBuilder:
        return self._with(version=version)

    def position(self, position: int) -> StoredEventBuilder:
        return self._with(position=position)

    def event_id(self, event_id: uuid.UUID) -> StoredEventBuilder:
        return self._with(event_id=event_id)

    def user(self, user_id: str | None) -> StoredEventBuilder:
        return self._with(user_id=user_id)

    def metadata(self, metadata: Metadata) -> StoredEventBuilder:
        return self._with(metadata=metadata)

    def at(self, recorded_at: datetime) -> StoredEventBuilder:
        return self._with(recorded_at=recorded_at)

    def build(self, payload: object) -> StoredEvent:
        return stored_event(payload, **self._fields)

    def _with(self, **field: Any) -> StoredEventBuilder:
        copy = StoredEventBuilder()
        copy._fields = {**self._fields, **field}
        return copy


def restamp(events: Iterable[StoredEvent], **changes: Any) -> list[StoredEvent]:
    """Copies of ``events`` with some fields replaced (e.g. to fake a broken log in a test)."""
    return [msgspec.structs.replace(e, **changes) for e in events]
