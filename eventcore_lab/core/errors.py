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

    def with_attempts(self, attempts: int) -> EventCoreError:
        """A copy of this error that records ``attempts``, chained to this one.

        The executor reports attempts on a copy because the same exception object may be shared: a
        store that commits appends in groups hands one error to every caller of a failed group, and
        writing on it would change what the other callers see.
        """
        copy = type(self).__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.args = self.args
        copy.attempts = attempts
        copy.__cause__ = self
        copy.__traceback__ = self.__traceback__
        return copy


# -- commands (CE) ---------------------------------------------------------------------------------


class CommandError(EventCoreError):
    """A command could not be executed."""


class DomainRefusal(CommandError):
    """The domain refused the command: its input or the current state forbids it. Never retried.

    Catch this one class instead of listing ValidationFailed and BusinessRuleViolation.
    """


class ValidationFailed(DomainRefusal):
    """A ``require(...)`` check of the command failed; the input or the current state forbids it."""

    code = "CE001"


class BusinessRuleViolation(DomainRefusal):
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
    """A stream that must exist has no events (``read_stream(..., must_exist=True)``)."""

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


class StoreClosed(StoreError):
    """The store was closed; open a new one. Every store raises this for every call after ``close()``."""

    code = "ES006"

    def __init__(self, store: str) -> None:
        self.store = store
        super().__init__(f"{store} is closed; open the store again to use it")


class AppendConditionFailed(StoreError):
    """An append's condition failed: an event matching its query was committed after the position the
    decision was read at. Nothing was written; like a version conflict, reading again and retrying helps."""

    code = "ES007"
    retriable = True

    def __init__(self, query: object, after: int | None, position: int) -> None:
        #: The condition's query, the position it was read at, and the first matching position above it.
        self.query = query
        self.after = after
        self.position = position
        since = "at all" if after is None else f"after position {after}"
        super().__init__(
            f"append condition failed: an event matching {query!r} exists {since} (position {position})"
        )


class UnknownEventFolded(CommandError):
    """A command's state would be built from an event whose type is not registered.

    Deciding on state that cannot be read is unsafe, so the executor refuses by default; register the
    event class (import its module), or let the command handle :class:`UnknownEvent` payloads itself.
    """

    code = "CE009"


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
    """A value has the wrong form. The subclasses below say more precisely what is wrong."""

    code = "VE003"


class InvalidArgument(InvalidFormat):
    """An argument of a call is out of range or of the wrong type (a negative limit, a bool version)."""

    code = "VE004"


class EventFileMissing(InvalidFormat):
    """An event file to import does not exist."""

    code = "VE005"


class InvalidEventFile(InvalidFormat):
    """An event file cannot be read as events: damaged, truncated, wrong columns or bad rows."""

    code = "VE006"


class EventFileChanged(InvalidFormat):
    """An event file changed while it was being imported; nothing was imported."""

    code = "VE007"


class SerializationError(InvalidFormat):
    """An event cannot be turned into JSON, or JSON back into its event class."""


class UnknownEventType(SerializationError):
    """An event class or type name is not in the registry."""


class EventTypeMismatch(SerializationError):
    """An imported event's ``event_type`` is not the registered name of its payload's class."""


class RegistryConflict(SerializationError):
    """Two different classes claim the same event type name."""
