"""eventcore-lab: multi-stream event sourcing with dynamic consistency boundaries.

>>> from eventcore_lab import Command, Event, Executor, MemoryStore, emit, require, stream
"""

from typing import TYPE_CHECKING, Any

from .core.command import Command, CommandContext, emit, require, stream
from .core.errors import (
    BusinessRuleViolation,
    CommandError,
    ConcurrencyConflict,
    ConnectionFailed,
    ConnectionPoolExhausted,
    EventCoreError,
    MaxIterationsExceeded,
    MigrationError,
    ProjectionError,
    SerializationError,
    StoreError,
    StreamAccessDenied,
    StreamNotFound,
    Timeout,
    TransactionError,
    Unauthorized,
    UnknownEventType,
    ValidationError,
    ValidationFailed,
    VersionConflict,
)
from .core.events import EventToWrite, ExpectedVersion, Metadata, StoredEvent
from .core.executor import ExecutionResult, Executor, Phase, Step
from .core.ids import RepeatableIds, StreamId, new_event_id
from .core.registry import Event, EventRegistry, default_registry
from .core.retry import RetryConfig
from .stores import EventStore, MemoryStore, Subscription, open_store

if TYPE_CHECKING:
    from .stores.duckdb import DuckDBStore
    from .stores.postgres import PostgresStore

__version__ = "0.1.0"

__all__ = [
    "BusinessRuleViolation",
    "Command",
    "CommandContext",
    "CommandError",
    "ConcurrencyConflict",
    "ConnectionFailed",
    "ConnectionPoolExhausted",
    "DuckDBStore",
    "Event",
    "EventCoreError",
    "EventRegistry",
    "EventStore",
    "EventToWrite",
    "ExecutionResult",
    "Executor",
    "ExpectedVersion",
    "MaxIterationsExceeded",
    "MemoryStore",
    "Metadata",
    "MigrationError",
    "Phase",
    "PostgresStore",
    "ProjectionError",
    "RepeatableIds",
    "RetryConfig",
    "SerializationError",
    "Step",
    "StoreError",
    "StoredEvent",
    "StreamAccessDenied",
    "StreamId",
    "StreamNotFound",
    "Subscription",
    "Timeout",
    "TransactionError",
    "Unauthorized",
    "UnknownEventType",
    "ValidationError",
    "ValidationFailed",
    "VersionConflict",
    "default_registry",
    "emit",
    "new_event_id",
    "open_store",
    "require",
    "stream",
]


def __getattr__(name: str) -> Any:
    """Import the durable stores on first use, so ``import eventcore_lab`` stays light."""
    if name in ("DuckDBStore", "PostgresStore"):
        from . import stores

        return getattr(stores, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
