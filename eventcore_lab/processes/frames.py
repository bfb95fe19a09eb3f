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


def chain_events(store: Any, event_id: object) -> list[StoredEvent]:
    """The event ``event_id`` and everything it caused, transitively, in log order.

    Follows ``metadata.causation_id``: a trigger, the process decision it caused, the commands the
    process issued and the events they wrote, what the deadlines it set did later. Pass the result to
    :func:`eventcore_lab.modeling.timeline` to see the chain drawn, causation arrows included.
    """
    return [event for event, _ in _chain(store, event_id)]


def _chain(store: Any, event_id: object) -> list[tuple[StoredEvent, int]]:
    children: dict[str, list[StoredEvent]] = defaultdict(list)
    by_id: dict[str, StoredEvent] = {}
    for event in _events(store):
        by_id[str(event.event_id)] = event
        if event.metadata.causation_id:
            children[event.metadata.causation_id].append(event)
    root = by_id.get(str(event_id))
    if root is None:
        return []
    found = {str(root.event_id): (root, 0)}
    queue = [root]
    while queue:
        event = queue.pop()
        depth = found[str(event.event_id)][1]
        for child in children.get(str(event.event_id), ()):
            if str(child.event_id) not in found:
                found[str(child.event_id)] = (child, depth + 1)
                queue.append(child)
    return sorted(found.values(), key=lambda item: item[0].position)


def causation_chain(store: Any, event_id: object) -> Any:
    """:func:`chain_events` as a DataFrame; ``depth`` counts the causation hops from the first event."""
    import pandas as pd

    records = [
        {
            "position": e.position,
            "depth": depth,
            "stream_id": e.stream_id,
            "event_type": e.event_type,
            "event_id": str(e.event_id),
            "causation_id": e.metadata.causation_id,
            "correlation_id": e.metadata.correlation_id,
            "command": (e.metadata.custom or {}).get("command"),
        }
        for e, depth in _chain(store, event_id)
    ]
    columns = [
        "position",
        "depth",
        "stream_id",
        "event_type",
        "event_id",
        "causation_id",
        "correlation_id",
        "command",
    ]
    return pd.DataFrame(records, columns=columns)


def process_summary(frame: Any, *, now: Any = None, stuck_after: Any = None) -> Any:
    """Per process type: how many started, ended and are still in flight, how long ended ones took, and
    how many in-flight ones are older than ``stuck_after`` (a timedelta; needs ``now``).

    The manual's process metrics (started, completed, failed, duration, active) as one table, computed
    from :func:`processes_frame` rather than kept in counters.
    """
    import pandas as pd

    columns = ["started", "ended", "in_flight", "mean_duration", "oldest_in_flight", "stuck"]
    if frame.empty:
        return pd.DataFrame(columns=columns).rename_axis("process")
    data = frame.assign(
        duration=frame["updated_at"] - frame["started_at"],
        age=(now - frame["started_at"]) if now is not None else pd.NaT,
    )
    rows = {}
    for process, group in data.groupby("process"):
        ended = group[group["terminal"].astype(bool)]
        open_ = group[~group["terminal"].astype(bool)]
        stuck = 0
        if stuck_after is not None and now is not None:
            stuck = int((open_["age"] > stuck_after).sum())
        rows[process] = {
            "started": len(group),
            "ended": len(ended),
            "in_flight": len(open_),
            "mean_duration": ended["duration"].mean() if len(ended) else pd.NaT,
            "oldest_in_flight": open_["age"].max() if len(open_) and now is not None else pd.NaT,
            "stuck": stuck,
        }
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("process")
