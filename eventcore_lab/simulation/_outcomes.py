"""Turning executor steps and errors into command records (shared by every runner)."""

from __future__ import annotations

from ..core.errors import (
    BusinessRuleViolation,
    ConcurrencyConflict,
    EventCoreError,
    StreamNotFound,
    Unauthorized,
    ValidationFailed,
)
from ..core.executor import ExecutionResult, Step
from .results import CommandRecord

_REJECTIONS = (ValidationFailed, BusinessRuleViolation, StreamNotFound, Unauthorized)


def note_backoff(record: CommandRecord, step: Step) -> None:
    """An attempt failed and will be retried."""
    _count(record, step.error)


def finish_ok(record: CommandRecord, result: ExecutionResult, end: float) -> None:
    record.attempts = result.attempts
    record.events = len(result.events_written)
    record.outcome = "ok"
    record.end = end


def finish_error(record: CommandRecord, error: EventCoreError, end: float) -> None:
    """The command gave up: classify why (the domain refused, conflicts, or another failure)."""
    record.attempts = error.attempts or record.conflicts + record.failures + 1
    record.error = f"{error.code} {type(error).__name__}"
    if isinstance(error, _REJECTIONS):
        record.outcome = "rejected"
    else:
        _count(record, error)
        record.outcome = "conflict" if isinstance(error, ConcurrencyConflict) else "failed"
    record.end = end


def _count(record: CommandRecord, error: EventCoreError | None) -> None:
    if isinstance(error, ConcurrencyConflict):
        record.conflicts += 1
        record.conflict_streams = record.conflict_streams + tuple(str(s) for s in error.streams)
    else:
        record.failures += 1
