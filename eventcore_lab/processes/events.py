"""The bookkeeping events a process writes to its own stream, next to its domain events.

They make a process's life visible on its stream (what it handled, which commands it issued and how they
ended, which deadlines it set) and they are what makes it idempotent: every decision is appended together
with the marker of the event that caused it, in one atomic write guarded by the stream's version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..core.registry import Event


class TriggerHandled(Event):
    """The process has reacted to the event ``event_id``; a redelivery of it is a no-op."""

    registration = "on_first_use"

    event_type = "process.TriggerHandled"
    event_id: str


class CommandIssued(Event):
    """The process decided to run a command; ``command_id`` is unique within the process stream.

    The command itself is stored (type name and arguments), so that it survives a crash between the
    decision and its execution; ``caused_by`` is the id of the event the process reacted to.
    """

    registration = "on_first_use"

    event_type = "process.CommandIssued"
    command_id: str
    tag: str
    command_type: str
    arguments: dict[str, Any]
    caused_by: str


class CommandSucceeded(Event):
    """An issued command ran; its events were appended in the same write as this one."""

    registration = "on_first_use"

    event_type = "process.CommandSucceeded"
    command_id: str
    tag: str
    events: int


class CommandRejected(Event):
    """An issued command refused to run (a failed rule); nothing but this was written."""

    registration = "on_first_use"

    event_type = "process.CommandRejected"
    command_id: str
    tag: str
    code: str
    reason: str


class DeadlineScheduled(Event):
    """The process wants to hear from the clock at ``due_at`` unless it cancels first."""

    registration = "on_first_use"

    event_type = "process.DeadlineScheduled"
    deadline_id: str
    name: str
    due_at: datetime


class DeadlineFired(Event):
    """The deadline came and the process reacted (``ignored``: it had already ended)."""

    registration = "on_first_use"

    event_type = "process.DeadlineFired"
    deadline_id: str
    name: str
    fired_at: datetime
    ignored: bool = False


class DeadlineCancelled(Event):
    """The deadline is no longer wanted (the awaited event came, or the process ended)."""

    registration = "on_first_use"

    event_type = "process.DeadlineCancelled"
    deadline_id: str
    name: str


BOOKKEEPING = (
    TriggerHandled,
    CommandIssued,
    CommandSucceeded,
    CommandRejected,
    DeadlineScheduled,
    DeadlineFired,
    DeadlineCancelled,
)
DEADLINE_EVENTS = (DeadlineScheduled, DeadlineFired, DeadlineCancelled)
