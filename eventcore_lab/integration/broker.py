"""What the relay and the inboxes need from a broker: small protocols, so that an adapter is a small module.

A :class:`Publisher` publishes a batch of messages in order and returns only when the broker has
confirmed (stored) each one, or raises :class:`~.errors.PublishFailed` saying how many leading messages
were confirmed. A :class:`MessageSource` reads one target's messages in broker order from a sequence
number the consumer remembers itself (so a restarted consumer resumes exactly where its store says it
got to). See ``nats`` for the NATS JetStream adapter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import msgspec

from .messages import IntegrationMessage


class Outgoing(msgspec.Struct, frozen=True):
    """One message bound for one target (a service's channel on the broker)."""

    target: str
    message: IntegrationMessage


class Delivery(msgspec.Struct, frozen=True):
    """One message read from a target, with its broker sequence (increasing, the consumer's cursor)."""

    sequence: int
    message: IntegrationMessage


@runtime_checkable
class Publisher(Protocol):
    def ensure_targets(self, targets: Iterable[str]) -> None:
        """Create the broker side of these targets if missing (idempotent)."""
        ...

    def publish(self, messages: Sequence[Outgoing]) -> None:
        """Publish in order, each with its message id; return when all are confirmed, else raise
        PublishFailed(confirmed=k) where the first ``k`` are known to be confirmed."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class MessageSource(Protocol):
    def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        """The next messages after the last one returned, in broker order; [] when none came in time."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Broker(Publisher, Protocol):
    def open_source(self, target: str, *, after: int = 0) -> MessageSource:
        """Read ``target``'s messages with sequence > ``after``."""
        ...
