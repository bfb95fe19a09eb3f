"""The micro-batching executor front: many small commands from many threads, plain vs batched.

    python -m benchmarks.batching                    # 8 threads x 150 deposits, DuckDB file and PostgreSQL
    python -m benchmarks.batching --threads 16 --commands 100

Every thread deposits into its own account (no conflicts), through one shared ``Executor`` and then
through one ``BatchingExecutor``, back to back on the same store; the table shows commands per second,
the number of commits, and the ratio (the machine is usually shared: read the ratios).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from eventcore_lab import Executor
from eventcore_lab.core.batching import BatchingExecutor
from eventcore_lab.examples.banking import Deposit, OpenAccount, account_stream
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.postgres import PostgresStore

from .environment import find_postgres, scratch_schema

REPO = Path(__file__).resolve().parent.parent


def run(executor: Any, prefix: str, threads: int, commands: int) -> float:
    for t in range(threads):
        executor.execute(OpenAccount(account_stream(f"{prefix}{t}"), owner="o"))

    def client(t: int) -> None:
        for _ in range(commands):
            executor.execute(Deposit(account_stream(f"{prefix}{t}"), amount=1))

    workers = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return threads * commands / (time.perf_counter() - started)


def measure(name: str, store: Any, threads: int, commands: int) -> str:
    plain = run(Executor(store), "plain", threads, commands)
    batching = BatchingExecutor(store)
    before = batching.group.commits
    batched = run(batching, "batched", threads, commands)
    commits = batching.group.commits - before - threads  # the opening commands ran one by one
    total = threads * commands
    return (
        f"| {name} | {plain:,.0f} cmd/s ({total:,} commits) | {batched:,.0f} cmd/s ({commits:,} commits) "
        f"| {batched / plain:.1f}x |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batching")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--commands", type=int, default=150)
    args = parser.parse_args(argv)
    print(
        f"| store ({args.threads} threads x {args.commands} deposits) | Executor | BatchingExecutor | ratio |"
    )
    print("|---|---|---|---|")
    with TemporaryDirectory() as tmp, DuckDBStore(Path(tmp) / "events.duckdb") as duck:
        print(measure("DuckDB (file)", duck, args.threads, args.commands), flush=True)
    dsn, where = find_postgres(REPO)
    if dsn is None:
        print(f"| PostgreSQL | not measured: no server ({where}) | | |")
        return 0
    with scratch_schema(dsn) as schema, PostgresStore(dsn, schema=schema, pool_max=args.threads + 2) as pg:
        print(measure("PostgreSQL", pg, args.threads, args.commands), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
