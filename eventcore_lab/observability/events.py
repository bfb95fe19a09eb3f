"""What the executor, stores and projection runners report to observers.

These are plain frozen records (msgspec structs: cheap to build, which matters once per phase) with no
I/O, so the core can emit them without depending on Prometheus or OpenTelemetry. Times are
``time.time_ns()`` wall-clock nanoseconds (what tracing back-ends want) and durations are seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import msgspec


class CommandStarted(msgspec.Struct, frozen=True):
    """A command began; ``command_id`` (unique in this process) ties its observations together.

    ``carry`` is filled by observers with context to put in the events' metadata (a tracer's
    ``traceparent``), so that whoever handles those events can continue the trace."""

    command_type: str
    correlation_id: str
    causation_id: str | None
    metadata_custom: Mapping[str, Any]
    start_ns: int
    carry: dict[str, str] = msgspec.field(default_factory=dict)
    command_id: int = 0


class PhaseCompleted(msgspec.Struct, frozen=True):
    """One phase of one attempt finished: ``read``, ``decide`` or ``commit``."""

    command_type: str
    correlation_id: str
    phase: str
    attempt: int
    start_ns: int
    end_ns: int
    streams: tuple[str, ...]
    ok: bool = True
    command_id: int = 0


class CommandRetried(msgspec.Struct, frozen=True):
    """An attempt failed with a retriable error; the executor waits ``delay`` seconds, then retries."""

    command_type: str
    correlation_id: str
    attempt: int
    delay: float
    error_code: str
    conflict: bool
    streams: tuple[str, ...]
    at_ns: int
    command_id: int = 0


class CommandSucceeded(msgspec.Struct, frozen=True):
    command_type: str
    correlation_id: str
    attempts: int
    duration: float
    events_written: int
    streams: tuple[str, ...]
    end_ns: int
    command_id: int = 0


class CommandFailed(msgspec.Struct, frozen=True):
    """A command ended with an error (not retried, retries exhausted, timed out or abandoned)."""

    command_type: str
    correlation_id: str
    attempts: int
    duration: float
    error_code: str
    error_type: str
    message: str
    conflict: bool
    end_ns: int
    command_id: int = 0


class StoreOperation(msgspec.Struct, frozen=True):
    """One call on an observed store: ``operation`` is ``read`` or ``write``; ``method`` the call."""

    operation: str
    method: str
    duration: float
    events: int
    ok: bool
    new_streams: int = 0


class ProjectionProgress(msgspec.Struct, frozen=True):
    """A projection runner applied a batch, and how far it now trails the log."""

    projection: str
    events: int
    position: int
    lag_events: int
    lag_seconds: float


Observation = (
    CommandStarted
    | PhaseCompleted
    | CommandRetried
    | CommandSucceeded
    | CommandFailed
    | StoreOperation
    | ProjectionProgress
)


@runtime_checkable
class Observer(Protocol):
    """Anything with ``observe(observation)``. It is called synchronously on the caller's thread, so it
    must be quick and must not raise (errors from observers are logged and swallowed)."""

    def observe(self, observation: Observation) -> None: ...
