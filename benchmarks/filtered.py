"""Filtered replay vs unfiltered: a projection that handles one event type in ten, replayed by a
``ProjectionRunner`` that reads every event and by one that asks the store for its type only.

    python -m benchmarks.filtered                    # 100,000 events, one in ten matching
    python -m benchmarks.filtered --events 10000     # a quick look

Both runners must end with the same read model and a checkpoint at the head. Each store is loaded once;
the two replays run back to back, alternating, ``--repeats`` times; the table shows medians and ratios
(the machine is usually shared: read the ratios).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from eventcore_lab import Event, EventToWrite, MemoryStore, StoredEvent
from eventcore_lab.projections.base import Projection, handles
from eventcore_lab.projections.runner import ProjectionRunner
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.postgres import PostgresStore

from .environment import find_postgres, scratch_schema

REPO = Path(__file__).resolve().parent.parent


class BenchOpened(Event):
    registration = "on_first_use"
    owner: str


class BenchDeposited(Event):
    registration = "on_first_use"
    amount: int


class BenchViewed(Event):
    registration = "on_first_use"
    page: str


class DepositTotals(Projection):
    """Sums deposits per account: handles one type in ten."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}

    @handles(BenchDeposited)
    def _deposited(self, event: StoredEvent) -> None:
        self.totals[event.stream_id] = self.totals.get(event.stream_id, 0) + event.payload.amount


def load(store: Any, events: int, match_every: int) -> None:
    for start in range(0, events, 1000):
        writes = []
        for n in range(start, min(start + 1000, events)):
            account = f"account-{n % 500}"
            if n % match_every == 1:
                writes.append(EventToWrite(account, BenchDeposited(amount=n)))
            elif n % match_every == 2:
                writes.append(EventToWrite(account, BenchOpened(owner=str(n))))
            else:
                writes.append(EventToWrite(f"page-{n % 50}", BenchViewed(page=str(n))))
        store.append(writes)


def replay(store: Any, *, filtered: bool) -> tuple[float, dict[str, int]]:
    runner = ProjectionRunner(store, DepositTotals(), filtered=filtered, batch_size=1000)
    started = time.perf_counter()
    runner.run_until_caught_up(progress=False)
    elapsed = time.perf_counter() - started
    assert runner.position == store.head(), (runner.position, store.head())
    return elapsed, runner.projection.totals


def measure(
    name: str, store: Any, events: int, match_every: int, repeats: int, *, loaded: bool = False
) -> str:
    if not loaded:
        load(store, events, match_every)
    plain: list[float] = []
    only: list[float] = []
    for _ in range(repeats):
        seconds, everything = replay(store, filtered=False)
        plain.append(seconds)
        seconds, matched = replay(store, filtered=True)
        only.append(seconds)
        assert matched == everything, "the filtered replay built another read model"
    a, b = statistics.median(plain), statistics.median(only)
    return (
        f"| {name} | {events / a:,.0f} ev/s ({a:.2f} s) | {events / b:,.0f} ev/s ({b:.2f} s) | {a / b:.1f}x |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.filtered")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--match-every", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stores", default="memory,duckdb,postgres")
    args = parser.parse_args(argv)
    stores = args.stores.split(",")
    print(
        f"| store ({args.events:,} events, 1 in {args.match_every} handled) | unfiltered replay "
        "| filtered replay | speed-up |"
    )
    print("|---|---|---|---|")
    if "memory" in stores:
        with MemoryStore() as memory:
            print(measure("memory", memory, args.events, args.match_every, args.repeats), flush=True)
    if "duckdb" in stores:
        with TemporaryDirectory() as tmp:
            with DuckDBStore(Path(tmp) / "events.duckdb") as duck:
                load(duck, args.events, args.match_every)
            with DuckDBStore(Path(tmp) / "events.duckdb") as duck:  # reopened: the log is read from the file
                name = "DuckDB (file, reopened)"
                print(
                    measure(name, duck, args.events, args.match_every, args.repeats, loaded=True), flush=True
                )
    if "postgres" in stores:
        dsn, where = find_postgres(REPO)
        if dsn is None:
            print(f"| PostgreSQL | not measured: no server ({where}) | | |")
            return 0
        with scratch_schema(dsn) as schema, PostgresStore(dsn, schema=schema) as pg:
            print(measure("PostgreSQL", pg, args.events, args.match_every, args.repeats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
