"""Events between services: an outbox relay to a real broker, inboxes, routing, a circuit breaker and
integration event contracts (manual chapter 5.4).

The broker adapter for NATS JetStream is :class:`~eventcore_lab.integration.jetstream.JetStreamBroker`
(optional extra ``broker``); it is imported lazily so that the rest works without the client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .breaker import CircuitBreaker, CircuitSnapshot, CircuitState
from .broker import Broker, Delivery, MessageSource, Outgoing, Publisher
from .contracts import ContractCatalog, IntegrationContract, compatibility_problems
from .errors import (
    BrokerUnavailable,
    CallTimedOut,
    CircuitOpen,
    IncompatibleContract,
    IntegrationError,
    InvalidMessage,
    PublishFailed,
    UnknownTransformation,
)
from .inbox import CommandInbox, EventInbox, InboxConsumer, InboxResult, MessageHandled, inbox_stream
from .messages import IntegrationMessage, decode_message, encode_message, message_from_event
from .proxy import TcpProxy
from .relay import OutboxRelay, RelayStep
from .routing import TRANSFORMATIONS, Router, RoutingRule

if TYPE_CHECKING:
    from .jetstream import JetStreamBroker

__all__ = [
    "TRANSFORMATIONS",
    "Broker",
    "BrokerUnavailable",
    "CallTimedOut",
    "CircuitBreaker",
    "CircuitOpen",
    "CircuitSnapshot",
    "CircuitState",
    "CommandInbox",
    "ContractCatalog",
    "Delivery",
    "EventInbox",
    "InboxConsumer",
    "InboxResult",
    "IncompatibleContract",
    "IntegrationContract",
    "IntegrationError",
    "IntegrationMessage",
    "InvalidMessage",
    "JetStreamBroker",
    "MessageHandled",
    "MessageSource",
    "OutboxRelay",
    "Outgoing",
    "PublishFailed",
    "Publisher",
    "RelayStep",
    "Router",
    "RoutingRule",
    "TcpProxy",
    "UnknownTransformation",
    "compatibility_problems",
    "decode_message",
    "encode_message",
    "inbox_stream",
    "message_from_event",
]


def __getattr__(name: str) -> Any:
    if name == "JetStreamBroker":
        from .jetstream import JetStreamBroker

        return JetStreamBroker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
