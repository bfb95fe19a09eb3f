"""One error hierarchy for commands, stores, projections and validation.

Every error carries a stable ``code`` (the manual's error reference: CE for commands, ES for stores,
PR for projections, VE for validation), a message a person can act on, and ``retriable``: whether
running the same thing again may succeed. The executor's retry policy reads that flag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class EventCoreError(Exception):
    """Base of every error raised by eventcore-lab."""

    code: str = "EC000"
    retriable: bool = False

    def __init__(self, message: str, *, retriable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retriable is not None:
            self.retriable = retriable
        #: Number of attempts made when the executor gave up with this error (None outside the executor).
        self.attempts: int | None = None

    def __str__(self) -> str:
        suffix = f" (after {self.attempts} attempts)" if self.attempts and self.attempts > 1 else ""
        return f"[{self.code}] {self.message}{suffix}"


# -- commands (CE) ---------------------------------------------------------------------------------


class CommandError(EventCoreError):
    """A command could not be executed."""


class ValidationFailed(CommandError):
    """A ``require(...)`` check of the command failed; the input or the current state forbids it."""

    code = "CE001"


class BusinessRuleViolation(CommandError):
    """Domain code refused the command explicitly (raise it from ``handle``)."""

    code = "CE002"


class ConcurrencyConflict(CommandError):
    """Another writer changed a stream this command read; retried by default."""

    code = "CE003"
    retriable = True

    def __init__(self, streams: Iterable[str], message: str | None = None) -> None:
        self.streams: tuple[str, ...] = tuple(streams)
        super().__init__(
            message or f"streams changed since they were read: {', '.join(self.streams)}; re-read and retry"
        )


class StreamNotFound(CommandError):
    """A stream that must exist has no events."""

    code = "CE004"

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        super().__init__(f"stream {stream_id!r} does not exist (it has no events)")


class Unauthorized(CommandError):
    """The caller may not run this command."""

    code = "CE005"


class Timeout(CommandError):
    """The command did not finish within its time budget; nothing was written."""

    code = "CE006"


class StreamAccessDenied(CommandError):
    """``handle`` wrote to a stream it neither declared nor discovered; nothing was written."""

    code = "CE007"

    def __init__(self, stream_id: str, allowed: Iterable[str]) -> None:
        self.stream_id = stream_id
        self.allowed = tuple(allowed)
        super().__init__(
            f"command may not write to stream {stream_id!r}: it was neither declared nor added with "
            f"ctx.add_streams(); streams read: {', '.join(self.allowed) or '(none)'}"
        )


class MaxIterationsExceeded(CommandError):
    """Dynamic stream discovery kept adding streams beyond the allowed number of passes."""

    code = "CE008"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"stream discovery still added streams after {limit} passes of handle(); "
            "raise max_discovery_iterations or make discovery converge"
        )


# -- stores (ES) -----------------------------------------------------------------------------------


class StoreError(EventCoreError):
    """The event store failed."""


class VersionConflict(StoreError):
    """An append's expected versions did not hold; nothing was written."""

    code = "ES001"
    retriable = True

    def __init__(self, conflicts: Mapping[str, tuple[str, int]]) -> None:
        #: stream id -> (what was expected, the stream's actual version)
        self.conflicts = dict(conflicts)
        detail = "; ".join(f"{s}: expected {e}, actual version {a}" for s, (e, a) in conflicts.items())
        super().__init__(f"version conflict on {detail}")

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(self.conflicts)


class ConnectionFailed(StoreError):
    """The store's database could not be reached."""

    code = "ES002"
    retriable = True


class ConnectionPoolExhausted(StoreError):
    """No connection became free in time."""

    code = "ES003"
    retriable = True


class TransactionError(StoreError):
    """A store transaction failed; ``retriable`` tells whether it was transient."""

    code = "ES004"


class MigrationError(StoreError):
    """The store's schema could not be created or upgraded."""

    code = "ES005"


# -- projections (PR) ------------------------------------------------------------------------------


class ProjectionError(EventCoreError):
    """A projection failed."""


class ProcessingFailed(ProjectionError):
    code = "PR001"


class CheckpointFailed(ProjectionError):
    code = "PR002"


class RebuildFailed(ProjectionError):
    code = "PR003"


class StateCorruption(ProjectionError):
    code = "PR004"


# -- validation (VE) -------------------------------------------------------------------------------


class ValidationError(EventCoreError, ValueError):
    """A value given to eventcore-lab is not valid."""


class EmptyValue(ValidationError):
    code = "VE001"


class TooLong(ValidationError):
    code = "VE002"


class InvalidFormat(ValidationError):
    code = "VE003"


class SerializationError(InvalidFormat):
    """An event cannot be turned into JSON, or JSON back into its event class."""


class UnknownEventType(SerializationError):
    """An event class or type name is not in the registry."""
