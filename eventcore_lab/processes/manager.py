"""What a process manager is: a pure reaction to events, with state kept in its own stream.

A process manager is plain Python, like a command: it names the events that concern it, says which
process each one belongs to (a correlation key), folds its own events into state, and decides. It does
no I/O: the :class:`~eventcore_lab.processes.runner.ProcessRunner` feeds it, stores its decisions and
runs the commands it issues.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

import msgspec

from ..core.command import Command
from ..core.errors import InvalidFormat
from ..core.events import StoredEvent
from ..core.ids import StreamId

S = TypeVar("S")


@dataclass(frozen=True)
class Issue:
    """Run ``command`` on behalf of the process; its outcome comes back tagged with ``tag``."""

    command: Command[Any]
    tag: str = ""


@dataclass(frozen=True)
class Deadline:
    """Wake the process at ``at`` with a :class:`DeadlineReached` named ``name``."""

    name: str
    at: datetime


@dataclass(frozen=True)
class Decision:
    """What a process decided in reaction to one trigger.

    ``record``: its own domain events (folded with ``evolve``); ``issue``: commands to run;
    ``schedule``: deadlines to set; ``cancel``: names of pending deadlines to drop.
    """

    record: Sequence[Any] = ()
    issue: Sequence[Issue] = ()
    schedule: Sequence[Deadline] = ()
    cancel: Sequence[str] = ()


@dataclass(frozen=True)
class CommandOutcome:
    """How an issued command ended, as the process sees it."""

    command_id: str
    tag: str
    ok: bool
    reason: str = ""
    code: str = ""


@dataclass(frozen=True)
class DeadlineReached:
    """The clock reached a deadline the process set."""

    deadline_id: str
    name: str
    due_at: datetime
    now: datetime


class ProcessManager(Generic[S]):
    """Base class of process managers; override the class attributes and the pure methods.

    ``name`` is the process type and the prefix of its streams (``"<name>-<key>"``); ``triggers`` are
    the event classes it reacts to and ``categories`` stream-id prefixes whose every event it sees;
    ``commands`` lists the command classes it may issue (they are stored by name in its stream).
    """

    name: ClassVar[str] = ""
    triggers: ClassVar[tuple[type, ...]] = ()
    categories: ClassVar[tuple[str, ...]] = ()
    commands: ClassVar[tuple[type[Command[Any]], ...]] = ()

    def correlate(self, event: StoredEvent) -> str | None:
        """The key of the process ``event`` belongs to, or None to ignore it. Must be deterministic."""
        raise NotImplementedError(f"{type(self).__name__} must implement correlate(event)")

    def initial_state(self) -> S:
        return None  # type: ignore[return-value]

    def evolve(self, state: S, event: Any) -> S:
        """Fold one of the process's own domain events (a payload) into its state."""
        return state

    def react(self, state: S, trigger: Any, now: datetime) -> Decision:
        """Decide what to do about ``trigger``: a domain event payload, a :class:`CommandOutcome` or a
        :class:`DeadlineReached`. Pure: the same state and trigger give the same decision."""
        raise NotImplementedError(f"{type(self).__name__} must implement react(state, trigger, now)")

    def is_terminal(self, state: S) -> bool:
        """Whether the process has ended; an ended process ignores deadlines and decides nothing new."""
        return False

    def status(self, state: S) -> str:
        """A short word for tables (``"waiting for payment"``, ``"completed"``, ...)."""
        return "ended" if self.is_terminal(state) else "running"

    # -- derived, not meant to be overridden --------------------------------------------------------

    def stream_for(self, key: str) -> str:
        """The process's stream id, validated (a plain ``str``, so that it encodes into metadata)."""
        return str(StreamId(f"{self.name}-{key}"))

    def key_of(self, stream_id: str) -> str | None:
        prefix = f"{self.name}-"
        return stream_id[len(prefix) :] if stream_id.startswith(prefix) else None

    def concerns(self, event: StoredEvent) -> bool:
        """Whether ``event`` may be a trigger (by type or stream category) before ``correlate`` decides."""
        return isinstance(event.payload, self.triggers) or event.stream_id.startswith(
            self.categories or ("\0",)
        )

    def check(self) -> None:
        """Refuse a manager that cannot work, with the reason."""
        kind = type(self).__name__
        if not isinstance(self.name, str) or not self.name.strip() or self.name != self.name.strip():
            raise InvalidFormat(f"{kind}.name must be a non-empty string without surrounding spaces")
        if not self.triggers and not self.categories:
            raise InvalidFormat(f"{kind} reacts to nothing: set triggers (event classes) or categories")
        for command in self.commands:
            if not (isinstance(command, type) and issubclass(command, Command)):
                raise InvalidFormat(f"{kind}.commands must hold Command classes, got {command!r}")


# -- the commands a process issues are stored in its stream by name and arguments ---------------------


def command_type_name(command: Command[Any]) -> str:
    return type(command).__name__


def encode_command(command: Command[Any]) -> dict[str, Any]:
    """The arguments of ``command`` as JSON-ready builtins."""
    try:
        value = msgspec.to_builtins({f.name: getattr(command, f.name) for f in dataclasses.fields(command)})  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidFormat(f"{type(command).__name__} cannot be stored as JSON: {exc}") from exc
    assert isinstance(value, dict)
    return value


def decode_command(
    classes: Sequence[type[Command[Any]]], type_name: str, arguments: dict[str, Any]
) -> Command[Any]:
    """Rebuild an issued command from its stored form, with the manager's list of command classes."""
    for cls in classes:
        if cls.__name__ == type_name:
            try:
                command: Command[Any] = msgspec.convert(arguments, cls, strict=False)
            except msgspec.ValidationError as exc:
                raise InvalidFormat(f"stored arguments do not fit {type_name}: {exc}") from exc
            return command
    known = ", ".join(c.__name__ for c in classes) or "(none)"
    raise InvalidFormat(f"command type {type_name!r} is not among the manager's commands: {known}")


@dataclass
class ProcessRecord(Generic[S]):
    """Everything known about one process, folded from its stream: the manager's state plus bookkeeping."""

    state: S
    version: int = 0
    handled: set[str] = field(default_factory=set)
    #: command id -> "pending" | "succeeded" | "rejected"
    commands: dict[str, str] = field(default_factory=dict)
    #: deadline id -> (name, due_at) for deadlines neither fired nor cancelled
    deadlines: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    scheduled: int = 0
    fired: int = 0
    started_at: datetime | None = None
    updated_at: datetime | None = None
