"""Pending deadlines, known only from the log.

A deadline is an event (``DeadlineScheduled``) in a process stream, and it stops being pending when a
``DeadlineFired`` or ``DeadlineCancelled`` for it follows. So the scheduler holds nothing that the log
does not: after a restart, :meth:`DeadlineScheduler.rebuild` reads the deadline events back and the
pending set is the same as before the crash. A deadline is removed only when the log says it fired or
was cancelled, never when firing was merely attempted: a firing that failed is tried again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core.events import StoredEvent
from .events import DeadlineCancelled, DeadlineFired, DeadlineScheduled


@dataclass(frozen=True, order=True)
class PendingDeadline:
    """A deadline waiting for its time; ordered by due time, then process stream and id."""

    due_at: datetime
    process: str
    deadline_id: str
    name: str
    #: The id of the ``DeadlineScheduled`` event: the cause of what the firing writes.
    scheduled_by: str = ""


class DeadlineScheduler:
    """The set of pending deadlines, fed with the log's deadline events in position order."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], PendingDeadline] = {}
        self._done: set[tuple[str, str]] = set()
        #: Firings that failed and will be tried again on the next check.
        self.failed_attempts = 0

    def __len__(self) -> int:
        return len(self._pending)

    def observe(self, event: StoredEvent) -> None:
        """Take note of one log event (anything that is not a deadline event is ignored)."""
        payload = event.payload
        if isinstance(payload, DeadlineScheduled):
            key = (event.stream_id, payload.deadline_id)
            if key not in self._done and key not in self._pending:
                item = PendingDeadline(
                    payload.due_at, event.stream_id, payload.deadline_id, payload.name, str(event.event_id)
                )
                self._pending[key] = item
        elif isinstance(payload, DeadlineFired | DeadlineCancelled):
            key = (event.stream_id, payload.deadline_id)
            self._done.add(key)
            self._pending.pop(key, None)

    def rebuild(self, events: Iterable[StoredEvent]) -> None:
        """Start over from ``events`` (the log up to the runner's checkpoint)."""
        self._pending.clear()
        self._done.clear()
        for event in events:
            self.observe(event)

    def due(self, now: datetime) -> list[PendingDeadline]:
        """Pending deadlines with ``due_at <= now``, earliest first (they stay pending until fired)."""
        return sorted(d for d in self._pending.values() if d.due_at <= now)

    def next_due(self) -> datetime | None:
        """When the earliest pending deadline is due (None when nothing is pending)."""
        items = [d.due_at for d in self._pending.values()]
        return min(items) if items else None

    def resolved(self, process: str, deadline_id: str) -> None:
        """Forget a deadline once its firing was appended (the log will say so too)."""
        self._done.add((process, deadline_id))
        self._pending.pop((process, deadline_id), None)

    def pending(self) -> list[PendingDeadline]:
        return sorted(self._pending.values())

    def frame(self) -> Any:
        """Pending deadlines as a DataFrame (one row each, earliest first)."""
        import pandas as pd

        rows = [
            {"due_at": d.due_at, "process": d.process, "deadline_id": d.deadline_id, "name": d.name}
            for d in self.pending()
        ]
        return pd.DataFrame(rows, columns=["due_at", "process", "deadline_id", "name"])
