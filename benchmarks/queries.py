"""Commands/s of a query-based command vs the equivalent stream-based one, DuckDB and PostgreSQL.

``python -m benchmarks.queries [--joins N] [--pg-joins N] [--repeats R] [--clients 1,8] [--stores ...]``.
The command is the course booking join of ``eventcore_lab.examples.courses``: ``JoinCourse`` reads
the course's and the student's facts by query and appends one event under an append condition;
``JoinCourseByStreams`` reads the course and the student stream and appends two events (the join and
the seat) under two version checks. Every join succeeds (places and limits are large), so both
variants do the same work apart from how they read and guard: the table shows medians of joins/s and
the ratio query / streams.

With several clients each client has its own students and walks the courses from its own offset, so
clients meet on a course now and then: those conflicts are retried by both variants alike (the table
counts the retries).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eventcore_lab import Executor, RetryConfig
from eventcore_lab.core.command import Command
from eventcore_lab.examples.courses import JoinCourse, JoinCourseByStreams, setup_commands

from .environment import find_postgres

COURSES = 64
RETRY = RetryConfig(max_attempts=50, initial_delay=0.001, max_delay=0.02)
StoreMaker = Callable[[], Any]


def joins(variant: str, clients: int, total: int) -> list[list[Command[Any]]]:
    """Per client, its joins: students ``s<client>-<k>`` each joining consecutive courses."""
    per_client = max(1, total // clients)
    plans: list[list[Command[Any]]] = []
    for client in range(clients):
        plan: list[Command[Any]] = []
        for i in range(per_client):
            student, course = f"s{client * per_client + i // 8}", f"c{(client * 8 + i) % COURSES}"
            if variant == "queries":
                plan.append(JoinCourse(student, course))
            else:
                plan.append(JoinCourseByStreams.of(student, course))
        plans.append(plan)
    return plans


def run_once(open_store: StoreMaker, variant: str, clients: int, total: int) -> tuple[float, int]:
    """(joins/s, retries) of one run on a fresh store."""
    with _opened(open_store) as store:
        plans = joins(variant, clients, total)
        students = 1 + max(int(c.student_id[1:]) for plan in plans for c in plan)  # type: ignore[attr-defined]
        executor = Executor(store, retry=RETRY, timeout=None)
        for command in setup_commands(COURSES, students, places=10_000, max_courses=10_000):
            executor.execute(command)
        retries = [0] * clients

        def client(k: int) -> None:
            mine = Executor(store, retry=RETRY, timeout=None)
            for command in plans[k]:
                retries[k] += mine.execute(command).attempts - 1

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        return sum(len(p) for p in plans) / elapsed, sum(retries)


@contextmanager
def _opened(open_store: StoreMaker) -> Iterator[Any]:
    store, cleanup = open_store()
    try:
        yield store
    finally:
        cleanup()


def duckdb_store() -> tuple[Any, Callable[[], None]]:
    from eventcore_lab.stores.duckdb import DuckDBStore

    folder = tempfile.TemporaryDirectory(prefix="bench-queries-")
    store = DuckDBStore(Path(folder.name) / "events.duckdb")

    def cleanup() -> None:
        store.close()
        folder.cleanup()

    return store, cleanup


def postgres_store(dsn: str) -> StoreMaker:
    def make() -> tuple[Any, Callable[[], None]]:
        import psycopg

        from eventcore_lab.stores.postgres import PostgresStore

        schema = f"bench_q_{uuid.uuid4().hex[:12]}"
        store = PostgresStore(dsn, schema=schema, pool_max=8)
        store.migrate()

        def cleanup() -> None:
            store.close()
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'drop schema if exists "{schema}" cascade')

        return store, cleanup

    return make


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=800, help="timed joins per run (DuckDB)")
    parser.add_argument("--pg-joins", type=int, default=400, help="timed joins per run (PostgreSQL)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", default="1,8", help="comma-separated client counts")
    parser.add_argument("--stores", default="duckdb,postgres", help="comma-separated: duckdb, postgres")
    args = parser.parse_args(argv)
    client_counts = [int(c) for c in args.clients.split(",")]
    stores = args.stores.split(",")
    backends: list[tuple[str, StoreMaker, int]] = []
    if "duckdb" in stores:
        backends.append(("duckdb", duckdb_store, args.joins))
    if "postgres" in stores:
        dsn, how = find_postgres(Path(__file__).resolve().parents[1])
        if dsn:
            backends.append(("postgres", postgres_store(dsn), args.pg_joins))
        else:
            print(f"PostgreSQL left out: {how}", file=sys.stderr)
    print("| store | clients | streams cmd/s | queries cmd/s | queries / streams | retries s, q |")
    print("|---|---|---|---|---|---|")
    for name, make, n in backends:
        for clients in client_counts:
            rates: dict[str, list[float]] = {"streams": [], "queries": []}
            retried: dict[str, int] = {"streams": 0, "queries": 0}
            for _ in range(args.repeats):
                for variant in rates:  # side by side: both variants share the machine's load
                    rate, retries = run_once(make, variant, clients, n)
                    rates[variant].append(rate)
                    retried[variant] += retries
            med = {v: statistics.median(r) for v, r in rates.items()}
            print(
                f"| {name} | {clients} | {med['streams']:,.0f} | {med['queries']:,.0f} | "
                f"{med['queries'] / med['streams']:.0%} | {retried['streams']}, {retried['queries']} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
