"""Event envelopes: what a command writes, what a store keeps, and the expected-version guard."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

import msgspec

from .errors import InvalidArgument
from .ids import new_correlation_id


class Metadata(msgspec.Struct, frozen=True, kw_only=True):
    """Who and what caused an event. ``correlation_id`` ties together everything one request did."""

    correlation_id: str = msgspec.field(default_factory=new_correlation_id)
    causation_id: str | None = None
    user_id: str | None = None
    custom: dict[str, Any] = msgspec.field(default_factory=dict)


class EventToWrite(msgspec.Struct, frozen=True, repr_omit_defaults=True):
    """One event bound for one stream; ``metadata`` is filled in by the executor when left out.

    ``tags`` are given explicitly (``emit(..., tags=...)``); the store adds those the event's class
    derives from its fields (:attr:`~eventcore_lab.core.registry.Event.tags_from`).
    """

    stream_id: str
    event: Any
    metadata: Metadata | None = None
    tags: tuple[str, ...] = ()


class StoredEvent(msgspec.Struct, frozen=True, kw_only=True, repr_omit_defaults=True):
    """An event as the store keeps it.

    ``version`` counts events within the stream (first event 1, no gaps); ``position`` orders every event
    of the store in commit order, and is what projections checkpoint on. ``tags`` are what queries
    (:mod:`eventcore_lab.core.query`) select on: one event with two tags is stored once and found by both.
    """

    event_id: uuid.UUID
    stream_id: str
    version: int
    position: int
    event_type: str
    payload: Any
    metadata: Metadata
    recorded_at: datetime
    tags: tuple[str, ...] = ()


class VersionCheck(StrEnum):
    """The kinds of expectation an append can have of a stream."""

    EXACT = "exact"  #: the stream has exactly ``version`` events
    NO_STREAM = "no_stream"  #: the stream has no events
    ANY = "any"  #: the stream has at least one event
    NO_CHECK = "no_check"  #: anything goes


class ExpectedVersion(msgspec.Struct, frozen=True):
    """What an append expects of a stream before it writes.

    Use the constants and constructor: ``ExpectedVersion.NO_STREAM`` (the stream has no events),
    ``ExpectedVersion.exact(n)`` (exactly ``n`` events), ``ExpectedVersion.ANY`` (the stream exists),
    ``ExpectedVersion.NO_CHECK`` (anything goes). Construction is checked: an unknown kind (a typo would
    otherwise disable the check), a version on a kind that takes none, or a missing, negative or
    non-integer exact version raise InvalidArgument.
    """

    kind: VersionCheck
    version: int | None = None

    NO_STREAM: ClassVar[ExpectedVersion]  # assigned below the class
    ANY: ClassVar[ExpectedVersion]
    NO_CHECK: ClassVar[ExpectedVersion]

    def __post_init__(self) -> None:
        kind, version = self.kind, self.version
        if type(kind) is not VersionCheck:
            try:
                kind = VersionCheck(kind)
            except ValueError:
                known = ", ".join(k.value for k in VersionCheck)
                raise InvalidArgument(f"unknown expected-version kind {kind!r}; use one of {known}") from None
            msgspec.structs.force_setattr(self, "kind", kind)
        if kind is VersionCheck.EXACT:
            if type(version) is not int or version < 0:
                raise InvalidArgument(f"an exact expected version is an int >= 0, got {version!r}")
        elif version is not None:
            raise InvalidArgument(f"expected version {kind.value!r} takes no version number, got {version!r}")

    @staticmethod
    def exact(version: int) -> ExpectedVersion:
        """Exactly ``version`` events (an int >= 0). Small versions are shared instances: the executor
        makes one per stream read, and the check at construction need not run each time."""
        shared = _exact_versions.get(version) if type(version) is int else None
        if shared is None:
            shared = ExpectedVersion(VersionCheck.EXACT, version)
            if version < _SHARED_EXACT:
                _exact_versions[version] = shared
        return shared

    def holds_for(self, actual: int) -> bool:
        """Whether a stream whose current version is ``actual`` satisfies this expectation."""
        kind = self.kind
        if kind is VersionCheck.EXACT:
            return actual == self.version
        if kind is VersionCheck.NO_STREAM:
            return actual == 0
        if kind is VersionCheck.ANY:
            return actual > 0
        return True

    def __str__(self) -> str:
        return (
            f"version {self.version}"
            if self.kind is VersionCheck.EXACT
            else self.kind.value.replace("_", " ")
        )


_SHARED_EXACT = 1 << 16
_exact_versions: dict[int, ExpectedVersion] = {}
ExpectedVersion.NO_STREAM = ExpectedVersion(VersionCheck.NO_STREAM)
ExpectedVersion.ANY = ExpectedVersion(VersionCheck.ANY)
ExpectedVersion.NO_CHECK = ExpectedVersion(VersionCheck.NO_CHECK)
