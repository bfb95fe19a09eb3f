"""The events and helpers the store contract suite writes.

They register on first use (``registration = "on_first_use"``), so that importing the suite takes no
type name from a user's own classes.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec

from ..core.events import EventToWrite, Metadata
from ..core.registry import Event
from ..stores.base import EventStore


class ContractNote(Event):
    """The event type the contract suite writes; it exercises the JSON types that must round-trip."""

    registration = "on_first_use"
    event_type = "eventcore.contract.Note"
    text: str
    number: int = 0
    amount: Decimal | None = None
    when: datetime | None = None
    tags: list[str] = msgspec.field(default_factory=list)


class NotRegistered(msgspec.Struct, frozen=True):
    text: str


class Unserializable(Event):
    """A field of any type: holds values JSON cannot keep (an object, bytes, a tuple...)."""

    registration = "on_first_use"
    event_type = "eventcore.contract.Unserializable"
    value: Any = None


class Constrained(Event):
    """A class constraint msgspec checks only when decoding: constructing ``amount=-5`` works."""

    registration = "on_first_use"
    event_type = "eventcore.contract.Constrained"
    amount: Annotated[int, msgspec.Meta(gt=0)]


class Measured(Event):
    """Float fields, which JSON cannot hold when they are NaN or infinite."""

    registration = "on_first_use"
    event_type = "eventcore.contract.Measured"
    value: float
    maybe: float | None = None


def note(text: str, **fields: Any) -> ContractNote:
    return ContractNote(text=text, **fields)


def write(stream_id: str, text: str, metadata: Metadata | None = None) -> EventToWrite:
    return EventToWrite(stream_id, note(text), metadata)


def snapshot(store: EventStore) -> list[tuple[str, int, int, str]]:
    """Everything a store holds, to show that a failed call changed nothing."""
    return [(e.stream_id, e.version, e.position, e.payload.text) for e in store.read_all()]


class ContractJoined(Event):
    """A tagged event of the query contract: tags derived from its fields (``tags_from``)."""

    registration = "on_first_use"
    event_type = "eventcore.contract.Joined"
    tags_from = ("student:{student}", "course:{course}")
    student: str
    course: str | None = None


class ContractClaimed(Event):
    """A second tagged type (a username claim, an invoice number) for the query contract."""

    registration = "on_first_use"
    event_type = "eventcore.contract.Claimed"
    tags_from = ("claim:{name}",)
    name: str
    number: int = 0


def tagged(stream_id: str, text: str, *tags: str) -> EventToWrite:
    """A ContractNote carrying explicit ``tags``."""
    return EventToWrite(stream_id, note(text), tags=tags)
