"""Operations benchmarks: what observers cost per command, and how fast backups and restores run.

``python -m benchmarks.ops [--commands N] [--events N] [--repeats R] [--no-postgres] [--no-backup]``

Commands/s of ``Deposit`` round robin over 100 accounts, on a MemoryStore and on PostgreSQL, with:
no observers; Prometheus metrics (executor and an ObservedStore wrapper); OpenTelemetry tracing (an SDK
provider with a no-op span processor, so span creation is measured and export is not). The variants run
back to back in each repeat, so they share the machine's load; medians over repeats, and the ratio to
"no observers", both by the wall clock and in this process's CPU time per command. Then backup and
restore rates (events/s) of a store of ``--events`` events (``--no-backup`` skips them).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eventcore_lab.backup import backup, restore, verify
from eventcore_lab.core.events import EventToWrite, Metadata
from eventcore_lab.core.executor import Executor
from eventcore_lab.examples.banking import Deposit, MoneyDeposited, OpenAccount
from eventcore_lab.observability import ObservedStore
from eventcore_lab.stores import MemoryStore

from .environment import find_postgres

REPO = Path(__file__).resolve().parents[1]
ACCOUNTS = 100


def _metrics(store: Any) -> tuple[Any, list[Any]]:
    from eventcore_lab.observability.metrics import MetricsObserver

    metrics = MetricsObserver()
    return ObservedStore(store, [metrics]), [metrics]


def _tracing(store: Any) -> tuple[Any, list[Any]]:
    from opentelemetry.sdk.trace import TracerProvider

    from eventcore_lab.observability.tracing import TracingObserver

    return store, [TracingObserver(tracer_provider=TracerProvider())]


VARIANTS: dict[str, Callable[[Any], tuple[Any, list[Any]]]] = {
    "observers off": lambda store: (store, []),
    "metrics": _metrics,
    "tracing": _tracing,
}


def commands_per_second(store: Any, variant: str, commands: int) -> tuple[float, float]:
    """Commands/s by the wall clock, and this process's CPU time per command in microseconds (which
    other processes on a loaded machine disturb less; for PostgreSQL it leaves out the server)."""
    wrapped, observers = VARIANTS[variant](store)
    executor = Executor(wrapped, observers=observers)
    for i in range(ACCOUNTS):
        if store.stream_version(f"account-{i}") == 0:
            executor.execute(OpenAccount(f"account-{i}", owner="bench"))
    started, cpu = time.perf_counter(), time.process_time()
    for n in range(commands):
        executor.execute(Deposit(f"account-{n % ACCOUNTS}", amount=1))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return commands / wall, cpu / commands * 1e6


def fill(store: Any, events: int) -> None:
    done = 0
    while done < events:
        n = min(10_000, events - done)
        store.append(
            [
                EventToWrite(
                    f"account-{(done + i) % 1000}", MoneyDeposited(amount=i), Metadata(correlation_id="b")
                )
                for i in range(n)
            ]
        )
        done += n


def overhead(stores: dict[str, Callable[[], Any]], commands: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for name, make in stores.items():
        rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
        cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for _ in range(repeats):
            for variant in VARIANTS:
                store = make()
                try:
                    rate, us = commands_per_second(store, variant, commands)
                finally:
                    store.close()
                rates[variant].append(rate)
                cpu[variant].append(us)
        base, base_cpu = statistics.median(rates["observers off"]), statistics.median(cpu["observers off"])
        for variant in VARIANTS:
            median, median_cpu = statistics.median(rates[variant]), statistics.median(cpu[variant])
            rows.append(
                {
                    "store": name,
                    "variant": variant,
                    "commands/s": median,
                    "vs off": median / base,
                    "cpu us": median_cpu,
                    "cpu vs off": median_cpu / base_cpu,
                }
            )
    return rows


def backup_rates(stores: dict[str, Callable[[], Any]], events: int) -> list[dict[str, Any]]:
    rows = []
    work = Path(tempfile.mkdtemp())
    source = MemoryStore()
    fill(source, events)
    started = time.perf_counter()
    backup(source, work / "full", events_per_file=250_000)
    rows.append({"step": "backup (memory source)", "events/s": events / (time.perf_counter() - started)})
    started = time.perf_counter()
    assert verify(work / "full").ok
    rows.append({"step": "verify", "events/s": events / (time.perf_counter() - started)})
    for name, make in stores.items():
        target = make()
        try:
            started = time.perf_counter()
            restore(target, work / "full")
            rows.append(
                {"step": f"restore into {name}", "events/s": events / (time.perf_counter() - started)}
            )
            if name == "postgres":
                started = time.perf_counter()
                backup(target, work / "from-postgres")
                rows.append(
                    {"step": "backup (postgres source)", "events/s": events / (time.perf_counter() - started)}
                )
        finally:
            target.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-backup", action="store_true", help="only the observer overhead")
    args = parser.parse_args(argv)
    dsn = None if args.no_postgres else find_postgres(REPO)[0]
    schemas: list[str] = []

    def pg() -> Any:
        from eventcore_lab.stores.postgres import PostgresStore

        schema = f"bench_ops_{uuid.uuid4().hex[:10]}"
        schemas.append(schema)
        return PostgresStore(dsn, schema=schema)

    def duck() -> Any:
        from eventcore_lab.stores.duckdb import DuckDBStore

        return DuckDBStore(Path(tempfile.mkdtemp()) / "restore.duckdb")

    command_stores: dict[str, Callable[[], Any]] = {"memory": MemoryStore}
    restore_stores: dict[str, Callable[[], Any]] = {"memory": MemoryStore, "duckdb": duck}
    if dsn:
        command_stores["postgres"] = pg
        restore_stores["postgres"] = pg
    try:
        print("| store | observers | commands/s | vs off (wall) | CPU us/command | CPU cost vs off |")
        print("|---|---|---:|---:|---:|---:|")
        for row in overhead(command_stores, args.commands, args.repeats):
            print(
                f"| {row['store']} | {row['variant']} | {row['commands/s']:,.0f} | {row['vs off']:.2f} "
                f"| {row['cpu us']:,.1f} | {row['cpu vs off'] - 1:+.0%} |"
            )
        if args.no_backup:
            return
        print()
        print("| step | events/s |")
        print("|---|---:|")
        for row in backup_rates(restore_stores, args.events):
            print(f"| {row['step']} | {row['events/s']:,.0f} |")
    finally:
        if dsn and schemas:
            import psycopg

            with psycopg.connect(dsn, autocommit=True) as conn:
                for schema in schemas:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
