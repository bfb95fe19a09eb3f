"""eventcore-lab: multi-stream event sourcing with dynamic consistency boundaries.

>>> from eventcore_lab import Command, Event, Executor, MemoryStore, emit, require, stream

The top level holds what a notebook needs: authoring commands and events, the envelopes a store keeps,
the executor, the stores, and the errors a notebook catches. Every error class is in
:mod:`eventcore_lab.errors`; internals (executor phases and steps, id generators, contexts, the registry
object) are imported from their modules, e.g. ``from eventcore_lab.core.executor import Phase``.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from . import errors
from .core.command import Command, emit, require, stream
from .core.errors import (
    BusinessRuleViolation,
    ConcurrencyConflict,
    DomainRefusal,
    EventCoreError,
    Timeout,
    ValidationFailed,
)
from .core.events import EventToWrite, ExpectedVersion, Metadata, StoredEvent
from .core.executor import ExecutionResult, Executor
from .core.registry import Event, EventRegistry, UnknownEvent
from .core.retry import RetryConfig
from .stores import EventStore, MemoryStore, open_store

if TYPE_CHECKING:
    from .stores.duckdb import DuckDBStore
    from .stores.postgres import PostgresStore

__version__ = "0.1.0"

__all__ = [
    "BusinessRuleViolation",
    "Command",
    "ConcurrencyConflict",
    "DomainRefusal",
    "DuckDBStore",
    "Event",
    "EventCoreError",
    "EventRegistry",
    "EventStore",
    "EventToWrite",
    "ExecutionResult",
    "Executor",
    "ExpectedVersion",
    "MemoryStore",
    "Metadata",
    "PostgresStore",
    "RetryConfig",
    "StoredEvent",
    "Timeout",
    "UnknownEvent",
    "ValidationFailed",
    "emit",
    "open_store",
    "require",
    "stream",
]

_LAZY = {"DuckDBStore": "eventcore_lab.stores.duckdb", "PostgresStore": "eventcore_lab.stores.postgres"}

#: Names that used to be at the top level, and the module to import them from now.
_MOVED = {
    "CommandContext": "eventcore_lab.core.command",
    "Phase": "eventcore_lab.core.executor",
    "Step": "eventcore_lab.core.executor",
    "RepeatableIds": "eventcore_lab.core.ids",
    "StreamId": "eventcore_lab.core.ids",
    "new_event_id": "eventcore_lab.core.ids",
    "default_registry": "eventcore_lab.core.registry",
    "Subscription": "eventcore_lab.stores.base",
    **{name: "eventcore_lab.errors" for name in errors.__all__ if name not in __all__},
}


def __getattr__(name: str) -> Any:
    """Import the durable stores on first use (so ``import eventcore_lab`` stays light), and point
    old top-level names to their module with a DeprecationWarning."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _MOVED:
        module = _MOVED[name]
        warnings.warn(
            f"eventcore_lab.{name} moved: import it with `from {module} import {name}`",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, including the lazily imported stores, and the ``errors`` module."""
    return sorted({*__all__, "errors", "__version__"})
