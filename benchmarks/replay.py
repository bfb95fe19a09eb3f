"""Replays: rebuilding a read model (balance per account) from a long log, three ways.

- per event: a :class:`Projection` with one handler per event type, driven by the ProjectionRunner;
- vectorised (pandas): ``events_frame`` of the log, then one ``groupby``;
- vectorised (DuckDB SQL): one aggregate query over the DuckDB store's ``events`` table.

All compute the same read model; the runner checks they agree so a fast but wrong path cannot win.
"""

from __future__ import annotations

from typing import Any

from eventcore_lab import StoredEvent
from eventcore_lab.projections import Projection, ProjectionRunner, events_frame, handles

from .domain import BenchCredited, BenchOpened
from .harness import Sample, time_once


class Balances(Projection):
    """Balance per account stream: the read model every replay path must reproduce."""

    name = "bench_balances"

    def __init__(self) -> None:
        self.balances: dict[str, int] = {}

    @handles(BenchOpened)
    def opened(self, event: StoredEvent) -> None:
        self.balances[event.stream_id] = 0

    @handles(BenchCredited)
    def credited(self, event: StoredEvent) -> None:
        balances = self.balances
        balances[event.stream_id] = balances.get(event.stream_id, 0) + event.payload.amount


def per_event(store: Any) -> tuple[Sample, dict[str, int]]:
    projection = Balances()
    runner = ProjectionRunner(store, projection, batch_size=10_000)
    sample = time_once(lambda: runner.run_until_caught_up(progress=False))
    return sample, projection.balances


def vectorised_pandas(store: Any) -> tuple[Sample, dict[str, int]]:
    result: dict[str, int] = {}

    def op() -> int:
        frame = events_frame(store, progress=False)
        totals = frame.groupby("stream_id", sort=False)["amount"].sum()
        result.update(totals.astype("int64").to_dict())
        return len(frame)

    return time_once(op), result


def vectorised_duckdb(store: Any) -> tuple[Sample, dict[str, int]]:
    result: dict[str, int] = {}

    def op() -> int:
        frame = store.sql(
            "select stream_id, count(*) as n, "
            "coalesce(sum(try_cast(json_extract_string(payload, '$.amount') as bigint)), 0) as balance "
            "from events group by stream_id"
        )
        result.update(zip(frame["stream_id"], frame["balance"].astype("int64"), strict=True))
        return int(frame["n"].sum())

    return time_once(op), result
