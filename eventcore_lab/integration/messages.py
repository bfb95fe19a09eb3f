"""The integration event envelope: what crosses the broker between services.

Its ``message_id`` is the source event's id, so a consumer (and a broker that deduplicates, like NATS
JetStream) can drop redelivered copies; ``stream_id`` and ``version`` let an inbox drop copies that
arrive again later and keep each source stream in order. The payload travels as plain JSON values: the
consumer decodes it into its *own* class, which need not be the producer's (see ``contracts``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from ..core.events import StoredEvent
from ..core.registry import EventRegistry, default_registry
from .errors import InvalidMessage


class IntegrationMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One source event as published to other services (the manual's ``DistributedEvent``)."""

    message_id: str
    event_type: str
    schema_version: int = 1
    service_id: str
    stream_id: str
    version: int
    position: int
    payload: dict[str, Any]
    correlation_id: str | None = None
    causation_id: str | None = None
    occurred_at: datetime
    published_at: datetime

    def decode(self, cls: type[Any]) -> Any:
        """The payload as an instance of the consumer's own class ``cls`` (unknown fields ignored)."""
        try:
            return msgspec.convert(self.payload, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise InvalidMessage(
                f"payload of {self.event_type} {self.message_id} does not fit {cls.__qualname__}: {exc}"
            ) from exc


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(IntegrationMessage)


def message_from_event(
    event: StoredEvent,
    service_id: str,
    *,
    registry: EventRegistry = default_registry,
    schema_version: int = 1,
    now: datetime | None = None,
) -> IntegrationMessage:
    """The envelope of a stored event of service ``service_id``."""
    return IntegrationMessage(
        message_id=str(event.event_id),
        event_type=event.event_type,
        schema_version=schema_version,
        service_id=service_id,
        stream_id=str(event.stream_id),
        version=event.version,
        position=event.position,
        payload=registry.to_dict(event.payload),
        correlation_id=event.metadata.correlation_id,
        causation_id=event.metadata.causation_id,
        occurred_at=event.recorded_at,
        published_at=now or datetime.now(UTC),
    )


def encode_message(message: IntegrationMessage) -> bytes:
    return _encoder.encode(message)


def decode_message(data: bytes) -> IntegrationMessage:
    """The envelope from broker bytes; InvalidMessage when they are not one."""
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidMessage(f"broker message is not an integration event envelope: {exc}") from exc
