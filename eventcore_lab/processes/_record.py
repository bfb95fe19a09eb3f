"""Folding a process stream into a :class:`ProcessRecord` (pure)."""

from __future__ import annotations

from typing import Any

from ..core.events import StoredEvent
from .events import (
    CommandIssued,
    CommandRejected,
    CommandSucceeded,
    DeadlineCancelled,
    DeadlineFired,
    DeadlineScheduled,
    TriggerHandled,
)
from .manager import ProcessManager, ProcessRecord


def new_record(manager: ProcessManager[Any]) -> ProcessRecord[Any]:
    return ProcessRecord(manager.initial_state())


def fold(manager: ProcessManager[Any], record: ProcessRecord[Any], event: StoredEvent) -> ProcessRecord[Any]:
    """Apply one event of the process's own stream."""
    record.version = event.version
    if record.started_at is None:
        record.started_at = event.recorded_at
    record.updated_at = event.recorded_at
    apply_payload(manager, record, event.payload)
    return record


def apply_payload(manager: ProcessManager[Any], record: ProcessRecord[Any], payload: Any) -> None:
    match payload:
        case TriggerHandled(event_id=event_id):
            record.handled.add(event_id)
        case CommandIssued(command_id=command_id):
            record.commands[command_id] = "pending"
        case CommandSucceeded(command_id=command_id):
            record.commands[command_id] = "succeeded"
        case CommandRejected(command_id=command_id):
            record.commands[command_id] = "rejected"
        case DeadlineScheduled(deadline_id=deadline_id, name=name, due_at=due_at):
            record.deadlines[deadline_id] = (name, due_at)
            record.scheduled += 1
        case DeadlineFired(deadline_id=deadline_id):
            record.deadlines.pop(deadline_id, None)
            record.handled.add(deadline_key(deadline_id))
            record.fired += 1
        case DeadlineCancelled(deadline_id=deadline_id):
            record.deadlines.pop(deadline_id, None)
        case _:
            record.state = manager.evolve(record.state, payload)


def deadline_key(deadline_id: str) -> str:
    return f"deadline:{deadline_id}"
