"""Past one process: projection throughput with 1, 2 and 4 worker processes on PostgreSQL, and a command on
a long stream with and without snapshots (DuckDB and PostgreSQL).

    python -m benchmarks.scaleout                      # 20,000 events for the workers, 100,000-event stream
    python -m benchmarks.scaleout --events 2000 --stream 5000   # a quick look

Results are printed as a Markdown table with ratios (the machine is usually shared: compare ratios).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from eventcore_lab import Command, Event, EventToWrite, Executor, StoredEvent, emit, stream
from eventcore_lab.distributed import DurableReadModel
from eventcore_lab.distributed.demo import ApplicationCounts, write
from eventcore_lab.snapshots import DuckDBSnapshots, PostgresSnapshots, Snapshots
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.postgres import PostgresStore

from .environment import find_postgres

REPO = Path(__file__).resolve().parent.parent


class BenchTally(Event):
    registration = "on_first_use"
    amount: int


class Tally(Command):
    """A command whose fold reads every event of its stream: the cost snapshots remove."""

    account: str = stream()
    amount: int

    def initial_state(self) -> int:
        return 0

    def apply(self, state: int, event: StoredEvent) -> int:
        return state + event.payload.amount

    def handle(self, state: int, ctx: Any) -> list[EventToWrite]:
        return [emit(self.account, BenchTally(amount=self.amount))]


def workers_case(dsn: str, events: int, counts: list[int], partitions: int) -> list[tuple[int, float]]:
    store_schema = f"bench_{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "EVENTCORE_DATABASE_URL": dsn, "PYTHONPATH": str(REPO)}
    store = PostgresStore(dsn, schema=store_schema)
    rates = []
    try:
        write(store, events=events, streams=1000, batch=500)
        head = store.head()
        for count in counts:
            schema = f"{store_schema}_w{count}"
            model = DurableReadModel(dsn, ApplicationCounts(), schema=schema, partitions=partitions)
            args = ["--store-schema", store_schema, "--schema", schema, "--partitions", str(partitions)]
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "eventcore_lab.distributed.demo",
                        "work",
                        *args,
                        "--batch-size",
                        "1000",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
                for _ in range(count)
            ]
            share = -(-partitions // count)
            with psycopg.connect(dsn, autocommit=True) as watch:
                while True:  # until every worker holds its fair share: process start-up is not timed
                    held = watch.execute(
                        f"SELECT count(*) FROM {schema}.ec_leases WHERE owner IS NOT NULL "
                        "AND expires_at > now() GROUP BY owner"
                    ).fetchall()
                    if len(held) == count and all(n <= share for (n,) in held):
                        break
                    time.sleep(0.02)
                started = time.perf_counter()
                (before,) = watch.execute(
                    f"SELECT count(*) FROM {schema}.application_counts__applications"
                ).fetchone()
            while model.position() < head:
                time.sleep(0.01)
            seconds = time.perf_counter() - started
            for proc in procs:
                proc.terminate()
                proc.wait()
            applied = len(model.frame("applications"))
            assert applied == events, f"{applied} applied, {events} expected"
            model.close()
            rates.append((count, (events - before) / seconds))
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        store.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {store_schema} CASCADE")
    return rates


def snapshot_case(store: Any, snapshots: Snapshots, length: int, repeats: int = 5) -> tuple[float, float]:
    """Median seconds per command on a ``length``-event stream: without, then with snapshots."""
    for start in range(0, length, 10_000):
        store.append([EventToWrite("long", BenchTally(amount=1)) for _ in range(min(10_000, length - start))])
    plain, snapped = Executor(store), Executor(store, snapshots=snapshots)
    snapped.execute(Tally("long", 1))  # the first run folds everything and saves the snapshot

    def timed(executor: Executor) -> float:
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            executor.execute(Tally("long", 1))
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    return timed(plain), timed(snapped)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaleout")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--stream", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--partitions", type=int, default=16)
    args = parser.parse_args(argv)
    dsn, where = find_postgres(REPO)
    if dsn is None:
        print(f"no PostgreSQL ({where}): nothing measured")
        return 1
    counts = [int(c) for c in args.workers.split(",")]
    rates = workers_case(dsn, args.events, counts, args.partitions)
    print(
        f"\n| workers on PostgreSQL ({args.events:,} events, {args.partitions} partitions) "
        "| events/s | vs 1 |"
    )
    print("|---|---|---|")
    for count, rate in rates:
        print(f"| {count} | {rate:,.0f} | {rate / rates[0][1]:.2f}x |")

    print(
        f"\n| command on a {args.stream:,}-event stream | without snapshots | with (every=100) | speed-up |"
    )
    print("|---|---|---|---|")
    with DuckDBStore() as duck:
        plain, snapped = snapshot_case(duck, Snapshots(DuckDBSnapshots(duck), every=100), args.stream)
        print(
            f"| DuckDB (in memory) | {plain * 1000:.1f} ms | {snapped * 1000:.2f} ms "
            f"| {plain / snapped:.0f}x |"
        )
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        with PostgresStore(dsn, schema=schema) as pg:
            kept = PostgresSnapshots(dsn, schema=schema)
            plain, snapped = snapshot_case(pg, Snapshots(kept, every=100), args.stream)
            kept.close()
            print(
                f"| PostgreSQL | {plain * 1000:.1f} ms | {snapped * 1000:.2f} ms | {plain / snapped:.0f}x |"
            )
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
