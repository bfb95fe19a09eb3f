"""Event envelopes: what a command writes, what a store keeps, and the expected-version guard."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

import msgspec

from .ids import new_correlation_id


class Metadata(msgspec.Struct, frozen=True, kw_only=True):
    """Who and what caused an event. ``correlation_id`` ties together everything one request did."""

    correlation_id: str = msgspec.field(default_factory=new_correlation_id)
    causation_id: str | None = None
    user_id: str | None = None
    custom: dict[str, Any] = msgspec.field(default_factory=dict)


class EventToWrite(msgspec.Struct, frozen=True):
    """One event bound for one stream; ``metadata`` is filled in by the executor when left out."""

    stream_id: str
    event: Any
    metadata: Metadata | None = None


class StoredEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as the store keeps it.

    ``version`` counts events within the stream (first event 1, no gaps); ``position`` orders every event
    of the store in commit order, and is what projections checkpoint on.
    """

    event_id: uuid.UUID
    stream_id: str
    version: int
    position: int
    event_type: str
    payload: Any
    metadata: Metadata
    recorded_at: datetime


class ExpectedVersion(msgspec.Struct, frozen=True):
    """What an append expects of a stream before it writes.

    Use the constants and constructor: ``ExpectedVersion.NO_STREAM`` (the stream has no events),
    ``ExpectedVersion.exact(n)`` (exactly ``n`` events), ``ExpectedVersion.ANY`` (the stream exists),
    ``ExpectedVersion.NO_CHECK`` (anything goes).
    """

    kind: str
    version: int | None = None

    NO_STREAM: ClassVar[ExpectedVersion]  # assigned below the class
    ANY: ClassVar[ExpectedVersion]
    NO_CHECK: ClassVar[ExpectedVersion]

    @staticmethod
    def exact(version: int) -> ExpectedVersion:
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise ValueError(f"an exact expected version is an int >= 0, got {version!r}")
        return ExpectedVersion("exact", version)

    def holds_for(self, actual: int) -> bool:
        """Whether a stream whose current version is ``actual`` satisfies this expectation."""
        kind = self.kind
        if kind == "exact":
            return actual == self.version
        if kind == "no_stream":
            return actual == 0
        if kind == "any":
            return actual > 0
        return True

    def __str__(self) -> str:
        return f"version {self.version}" if self.kind == "exact" else self.kind.replace("_", " ")


ExpectedVersion.NO_STREAM = ExpectedVersion("no_stream")
ExpectedVersion.ANY = ExpectedVersion("any")
ExpectedVersion.NO_CHECK = ExpectedVersion("no_check")
