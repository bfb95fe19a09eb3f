"""Processes advanced per second: the order-fulfilment process (and its carrier) on memory and PostgreSQL,
with 1 and 8 runners.

Every order is placed and paid before the clock starts; then ``runners`` process runners, each serving
one partition of the processes (``partition=(i, n)``), drive every order to completion: reserve stock,
dispatch, deliver (a carrier deadline), complete. A *step* is one atomic append of a runner: a process
reacting to an event, or an issued command running. On PostgreSQL each runner is an OS process; in
memory they are threads of one process (a MemoryStore cannot be shared between processes, and the GIL
serialises them, so 8 threads show the cost of contention, not parallel speed-up).

    python -m benchmarks.processes                 # 300 orders in memory, 200 on PostgreSQL
    python -m benchmarks.processes --orders 40     # smaller
    python -m benchmarks.processes --quick         # a few seconds (what the test suite runs)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eventcore_lab.core.executor import Executor
from eventcore_lab.examples import ecommerce as shop
from eventcore_lab.processes import ProcessRunner
from eventcore_lab.projections.checkpoints import MemoryCheckpoints
from eventcore_lab.stores.memory import MemoryStore

from .environment import describe_machine, find_postgres

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
LATER = EPOCH + timedelta(days=30)  # every carrier deadline is due by then
REPO = Path(__file__).resolve().parent.parent
ENDINGS = ("fulfilment.Completed", "fulfilment.Failed", "carrier.ParcelDelivered")


SKUS = 50


def seed_orders(store: Any, orders: int) -> None:
    """Stock of ``SKUS`` products and paid orders of two products each (so runners share stock streams
    now and then, as in a real shop, without all queuing on one hot stream)."""
    executor = Executor(store)
    for n in range(SKUS):
        executor.execute(shop.AddStock(shop.stock_stream(f"sku{n}"), f"sku{n}", 10 * orders))
    for i in range(orders):
        oid = f"o{i}"
        items = {f"sku{i % SKUS}": 1, f"sku{(i * 7 + 3) % SKUS}": 1 + i % 3}
        executor.execute(shop.PlaceOrder(shop.order_stream(oid), oid, f"c{i % 13}", items, 100 + i))
        executor.execute(shop.PayOrder(shop.payment_stream(oid), shop.order_stream(oid), oid, 100 + i))


def _runner(store: Any, index: int, count: int, checkpoints: Any = None) -> ProcessRunner:
    return ProcessRunner(
        store,
        [shop.OrderFulfilment(), shop.Carrier()],
        clock=lambda: EPOCH,
        partition=(index, count),
        checkpoints=checkpoints,
    )


def _drive(runner: ProcessRunner, stop: Any) -> int:
    steps = 0
    while not stop.is_set():
        runner.run_until_idle()
        runner.check_deadlines(LATER)
        done = runner.stats.advanced + runner.stats.dispatched
        if done == steps:
            runner.store.wait_for_events(runner.position, 0.02)
        steps = done
    return runner.stats.advanced + runner.stats.dispatched


def _ended(store: Any, after: int) -> tuple[int, int]:
    """Process endings in the log after ``after``, and the new position."""
    batch = store.read_all(after=after, limit=100_000)
    return sum(e.event_type in ENDINGS for e in batch), (batch[-1].position if batch else after)


def run_memory(orders: int, runners: int) -> dict[str, Any]:
    store = MemoryStore()
    seed_orders(store, orders)
    stop = threading.Event()
    pool = [_runner(store, i, runners, MemoryCheckpoints()) for i in range(runners)]
    steps = [0] * runners

    def work(i: int) -> None:
        steps[i] = _drive(pool[i], stop)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(runners)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    elapsed = _wait_for_endings(store, 2 * orders, started)
    stop.set()
    for thread in threads:
        thread.join()
    return _row("memory", orders, runners, sum(steps), elapsed)


def _pg_worker(
    dsn: str, schema: str, index: int, count: int, ready: Any, go: Any, stop: Any, out: Any
) -> None:
    from eventcore_lab.stores.postgres import PostgresStore

    with PostgresStore(dsn, schema=schema) as store:
        runner = _runner(store, index, count)
        ready.release()
        go.wait()
        out.put(_drive(runner, stop))


def run_postgres(dsn: str, orders: int, runners: int) -> dict[str, Any]:
    import psycopg

    from eventcore_lab.stores.postgres import PostgresStore

    schema = f"bench_proc_{uuid.uuid4().hex[:12]}"
    try:
        with PostgresStore(dsn, schema=schema) as store:
            seed_orders(store, orders)
            context = mp.get_context("spawn")
            ready, go, stop, out = context.Semaphore(0), context.Event(), context.Event(), context.Queue()
            workers = [
                context.Process(target=_pg_worker, args=(dsn, schema, i, runners, ready, go, stop, out))
                for i in range(runners)
            ]
            for worker in workers:
                worker.start()
            for _ in workers:
                ready.acquire(timeout=120)
            started = time.perf_counter()
            go.set()
            elapsed = _wait_for_endings(store, 2 * orders, started)
            stop.set()
            steps = sum(out.get(timeout=60) for _ in workers)
            for worker in workers:
                worker.join(30)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return _row("postgres", orders, runners, steps, elapsed)


def _wait_for_endings(store: Any, expected: int, started: float, timeout: float = 600.0) -> float:
    seen, position = 0, 0
    while seen < expected:
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"only {seen} of {expected} processes ended within {timeout} s")
        more, position = _ended(store, position)
        seen += more
        if not more:
            store.wait_for_events(position, 0.01)
    return time.perf_counter() - started


def _row(backend: str, orders: int, runners: int, steps: int, elapsed: float) -> dict[str, Any]:
    return {
        "backend": backend,
        "runners": runners,
        "orders": orders,
        "processes": 2 * orders,
        "steps": steps,
        "seconds": round(elapsed, 3),
        "steps_per_s": round(steps / elapsed, 1),
        "processes_per_s": round(2 * orders / elapsed, 1),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | runners | processes | steps | seconds | steps/s | processes completed/s | vs 1 runner |",
        "|---|---|---|---|---|---|---|---|",
    ]
    single = {r["backend"]: r["steps_per_s"] for r in rows if r["runners"] == 1}
    for r in rows:
        ratio = r["steps_per_s"] / single[r["backend"]] if single.get(r["backend"]) else float("nan")
        lines.append(
            f"| {r['backend']} | {r['runners']} | {r['processes']} | {r['steps']} | {r['seconds']} | "
            f"{r['steps_per_s']:,} | {r['processes_per_s']:,} | {ratio:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.processes", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--orders", type=int, default=None, help="orders per case (default: 300 memory, 200 PG)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--runners", default="1,8", help="runner counts, comma-separated (default 1,8)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.runners.split(",")]
    memory_orders = args.orders or (10 if args.quick else 300)
    pg_orders = args.orders or (10 if args.quick else 200)
    rows = [run_memory(memory_orders, n) for n in counts]
    if not args.no_postgres:
        dsn, how = find_postgres(REPO)
        if dsn is None:
            print(f"PostgreSQL: not measured ({how})", file=sys.stderr)
        else:
            rows += [run_postgres(dsn, pg_orders, n) for n in counts]
    machine = describe_machine()
    print(f"{machine.get('cpu')} | load at start {machine.get('load_average_at_start')}")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
