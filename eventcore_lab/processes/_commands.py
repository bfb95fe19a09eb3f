"""The two internal commands through which a runner changes a process, each one atomic append.

``AdvanceProcess`` reads the process stream, and unless the trigger is already marked as handled there,
appends the decision together with that marker. ``DispatchCommand`` reads the process stream and the
issued command's streams, and unless the command already has an outcome there, appends the command's
events together with ``CommandSucceeded`` (or only ``CommandRejected`` when its rules refuse). Both are
guarded by the version of every stream read, so two runners racing on the same process cannot both win,
and a redelivered trigger or command finds its marker and writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field
from datetime import datetime
from typing import Any

from ..core.command import Command, CommandContext, emit, stream
from ..core.errors import BusinessRuleViolation, InvalidFormat, StreamNotFound, Unauthorized, ValidationFailed
from ..core.events import EventToWrite, Metadata, StoredEvent
from ..core.ids import StreamId
from ._record import apply_payload, deadline_key, fold, new_record
from .events import (
    CommandIssued,
    CommandRejected,
    CommandSucceeded,
    DeadlineCancelled,
    DeadlineFired,
    DeadlineScheduled,
    TriggerHandled,
)
from .manager import (
    Deadline,
    DeadlineReached,
    Decision,
    ProcessManager,
    ProcessRecord,
    command_type_name,
    encode_command,
)

#: Errors by which a command refuses to run: the process hears about them; anything else is a fault.
REFUSALS = (ValidationFailed, BusinessRuleViolation, StreamNotFound, Unauthorized)


class AdvanceProcess(Command[ProcessRecord[Any]]):
    """Let ``manager`` react to ``trigger`` in the process stream ``process``."""

    process: str = stream()
    manager: Any = field(compare=False)
    trigger: Any
    trigger_key: str

    def initial_state(self) -> ProcessRecord[Any]:
        return new_record(self.manager)

    def apply(self, state: ProcessRecord[Any], event: StoredEvent) -> ProcessRecord[Any]:
        return fold(self.manager, state, event)

    def handle(self, state: ProcessRecord[Any], ctx: CommandContext) -> Sequence[EventToWrite]:
        manager: ProcessManager[Any] = self.manager
        trigger = self.trigger
        if self.trigger_key in state.handled:
            return []  # a redelivery: the first delivery's decision is already in the stream
        writes: list[Any] = []
        now = ctx.now
        if isinstance(trigger, DeadlineReached):
            if trigger.deadline_id not in state.deadlines:
                return []  # cancelled (or fired) since it was picked up
            ended = manager.is_terminal(state.state)
            writes.append(
                DeadlineFired(
                    deadline_id=trigger.deadline_id, name=trigger.name, fired_at=trigger.now, ignored=ended
                )
            )
            apply_payload(manager, state, writes[-1])
            if ended:  # a finished process ignores its clock: checked before any timeout logic
                return [emit(self.process, e) for e in writes]
            now = trigger.now
        else:
            writes.append(TriggerHandled(event_id=self.trigger_key))
        decision = manager.react(state.state, trigger, now)
        if not isinstance(decision, Decision):
            raise TypeError(f"{type(manager).__name__}.react must return a Decision, got {decision!r}")
        for event in decision.record:
            apply_payload(manager, state, event)
            writes.append(event)
        result = [emit(self.process, e) for e in writes]
        result += _issues(manager, decision, self.trigger_key, self.process)
        ended = manager.is_terminal(state.state)
        cancel = set(decision.cancel)
        for deadline_id, (name, _) in state.deadlines.items():  # pending before this decision
            if ended or name in cancel:
                result.append(emit(self.process, DeadlineCancelled(deadline_id=deadline_id, name=name)))
        if not ended:  # an ended process sets no new deadlines
            for number, deadline in enumerate(decision.schedule, start=state.scheduled + 1):
                _check_deadline(manager, deadline)
                scheduled = DeadlineScheduled(
                    deadline_id=f"{deadline.name}#{number}", name=deadline.name, due_at=deadline.at
                )
                result.append(emit(self.process, scheduled))
        return result


def _check_deadline(manager: ProcessManager[Any], deadline: Any) -> None:
    if not isinstance(deadline, Deadline) or not isinstance(deadline.name, str) or not deadline.name.strip():
        raise InvalidFormat(f"{type(manager).__name__} scheduled {deadline!r}; use Deadline(name, at)")
    if not isinstance(deadline.at, datetime) or deadline.at.tzinfo is None:
        raise InvalidFormat(
            f"{type(manager).__name__} scheduled deadline {deadline.name!r} at {deadline.at!r}; "
            "the time must be a timezone-aware datetime"
        )


def _issues(
    manager: ProcessManager[Any], decision: Decision, trigger_key: str, process: str
) -> list[EventToWrite]:
    writes = []
    for index, issue in enumerate(decision.issue):
        if type(issue.command) not in manager.commands:
            declared = ", ".join(c.__name__ for c in manager.commands) or "(none)"
            raise InvalidFormat(
                f"{type(manager).__name__} issued {type(issue.command).__name__}, which is not among its "
                f"commands ({declared}); add it to {type(manager).__name__}.commands"
            )
        command_id = f"{trigger_key}/{index}"
        issued = CommandIssued(
            command_id=command_id,
            tag=issue.tag,
            command_type=command_type_name(issue.command),
            arguments=encode_command(issue.command),
            caused_by=trigger_key,
        )
        writes.append(emit(process, issued))
    return writes


class DispatchCommand(Command[tuple[ProcessRecord[Any], Any]]):
    """Run ``command`` (issued by the process ``process`` as ``command_id``) at most once."""

    process: str = stream()
    manager: Any = field(compare=False)
    command: Any
    command_id: str
    tag: str
    caused_by: str

    def read_streams(self) -> tuple[StreamId, ...]:
        inner: Command[Any] = self.command
        return tuple(dict.fromkeys((StreamId(self.process), *inner.read_streams())))

    def initial_state(self) -> tuple[ProcessRecord[Any], Any]:
        return new_record(self.manager), self.command.initial_state()

    def apply(
        self, state: tuple[ProcessRecord[Any], Any], event: StoredEvent
    ) -> tuple[ProcessRecord[Any], Any]:
        record, inner = state
        if event.stream_id == self.process:
            return fold(self.manager, record, event), inner
        return record, self.command.apply(inner, event)

    def handle(self, state: tuple[ProcessRecord[Any], Any], ctx: CommandContext) -> Sequence[EventToWrite]:
        record, inner = state
        if record.commands.get(self.command_id) != "pending":
            return []  # done before (or never issued here): nothing to run
        try:
            writes = list(self.command.handle(inner, ctx))
        except REFUSALS as refusal:
            rejected = CommandRejected(
                command_id=self.command_id, tag=self.tag, code=refusal.code, reason=refusal.message
            )
            return [emit(self.process, rejected)]
        metadata = Metadata(
            correlation_id=ctx.metadata.correlation_id,
            causation_id=self.caused_by,
            user_id=ctx.metadata.user_id,
            custom={
                "command": type(self.command).__name__,  # the timeline's commit label
                "process": str(self.process),
                "command_id": self.command_id,
            },
        )
        stamped = [
            w if w.metadata is not None else EventToWrite(w.stream_id, w.event, metadata) for w in writes
        ]
        done = CommandSucceeded(command_id=self.command_id, tag=self.tag, events=len(stamped))
        return [*stamped, emit(self.process, done)]


__all__ = ["REFUSALS", "AdvanceProcess", "DeadlineReached", "DispatchCommand", "deadline_key"]
