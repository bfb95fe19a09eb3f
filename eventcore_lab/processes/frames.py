"""Processes and causation chains as DataFrames, read from the log (no runner needed)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from ..core.events import StoredEvent
from ._record import fold, new_record
from .manager import ProcessManager, ProcessRecord

PROCESS_COLUMNS = [
    "process",
    "key",
    "stream",
    "status",
    "terminal",
    "version",
    "handled",
    "commands_issued",
    "commands_pending",
    "commands_rejected",
    "deadlines_pending",
    "next_deadline",
    "started_at",
    "updated_at",
]


def _events(store: Any, page: int = 5000) -> Iterator[StoredEvent]:
    position = 0
    while True:
        batch = store.read_all(after=position, limit=page)
        if not batch:
            return
        yield from batch
        position = batch[-1].position


def process_records(store: Any, manager: ProcessManager[Any]) -> dict[str, ProcessRecord[Any]]:
    """Every process of ``manager`` in ``store``, by stream id, folded from the log."""
    records: dict[str, ProcessRecord[Any]] = {}
    for event in _events(store):
        if manager.key_of(event.stream_id) is not None:
            record = records.get(event.stream_id)
            if record is None:
                record = records[event.stream_id] = new_record(manager)
            fold(manager, record, event)
    return records


def processes_frame(
    store: Any, managers: ProcessManager[Any] | Sequence[ProcessManager[Any]], *, in_flight: bool = False
) -> Any:
    """One row per process: its status, whether it ended, its commands and its pending deadlines.

    ``in_flight=True`` keeps only processes that have not ended.
    """
    import pandas as pd

    rows = []
    for manager in [managers] if isinstance(managers, ProcessManager) else managers:
        for stream, record in process_records(store, manager).items():
            states = list(record.commands.values())
            due = [at for _, at in record.deadlines.values()]
            rows.append(
                {
                    "process": manager.name,
                    "key": manager.key_of(stream),
                    "stream": stream,
                    "status": manager.status(record.state),
                    "terminal": manager.is_terminal(record.state),
                    "version": record.version,
                    "handled": len(record.handled),
                    "commands_issued": len(states),
                    "commands_pending": states.count("pending"),
                    "commands_rejected": states.count("rejected"),
                    "deadlines_pending": len(record.deadlines),
                    "next_deadline": min(due) if due else None,
                    "started_at": record.started_at,
                    "updated_at": record.updated_at,
                }
            )
    frame = pd.DataFrame(rows, columns=PROCESS_COLUMNS)
    if in_flight:
        frame = frame[~frame["terminal"].astype(bool)].reset_index(drop=True)
    return frame


def causation_chain(store: Any, event_id: object) -> Any:
    """The event ``event_id`` and everything it caused, transitively, as a DataFrame in log order.

    Follows ``metadata.causation_id``: a trigger, the process decision it caused, the commands the
    process issued and the events they wrote. ``depth`` counts the hops from the first event.
    """
    import pandas as pd

    children: dict[str, list[StoredEvent]] = defaultdict(list)
    by_id: dict[str, StoredEvent] = {}
    for event in _events(store):
        by_id[str(event.event_id)] = event
        if event.metadata.causation_id:
            children[event.metadata.causation_id].append(event)
    root = str(event_id)
    rows = []
    if root in by_id:
        depth = {root: 0}
        queue = [by_id[root]]
        seen = {root}
        while queue:
            event = queue.pop()
            rows.append(event)
            for child in children.get(str(event.event_id), ()):
                key = str(child.event_id)
                if key not in seen:
                    seen.add(key)
                    depth[key] = depth[str(event.event_id)] + 1
                    queue.append(child)
        rows.sort(key=lambda e: e.position)
        records = [
            {
                "position": e.position,
                "depth": depth[str(e.event_id)],
                "stream_id": e.stream_id,
                "event_type": e.event_type,
                "event_id": str(e.event_id),
                "causation_id": e.metadata.causation_id,
                "correlation_id": e.metadata.correlation_id,
            }
            for e in rows
        ]
    else:
        records = []
    columns = ["position", "depth", "stream_id", "event_type", "event_id", "causation_id", "correlation_id"]
    return pd.DataFrame(records, columns=columns)
