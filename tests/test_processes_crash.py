"""A process runner killed with SIGKILL at random points, restarted, still applies every command once.

200 order-fulfilment processes (plus their carrier processes) on DuckDB and on PostgreSQL: the runner
service is a subprocess with four partitioned runner threads (tests/process_crash_worker.py), killed
several times mid-run and restarted; at the end every process must be in the same terminal state as in
an uncrashed run on the memory store, and the log must show no effect applied twice.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from eventcore_lab.core.executor import Executor
from eventcore_lab.examples import ecommerce as shop
from eventcore_lab.processes import CommandIssued, CommandRejected, CommandSucceeded, processes_frame
from eventcore_lab.stores.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "process_crash_worker.py"
ORDERS = int(os.environ.get("EVENTCORE_CRASH_ORDERS", "200"))
KILLS = 3


def seed_orders(store: Any, orders: int = ORDERS) -> None:
    """Stock, orders and payments: every 7th order wants more than there is, every 11th is never paid."""
    executor = Executor(store)
    executor.execute(shop.AddStock(shop.stock_stream("apple"), "apple", 10 * orders))
    executor.execute(shop.AddStock(shop.stock_stream("pear"), "pear", 10 * orders))
    for i in range(orders):
        oid = f"o{i}"
        items = {"apple": 1_000_000 if i % 7 == 3 else 1, "pear": 1 + i % 3}
        executor.execute(shop.PlaceOrder(shop.order_stream(oid), oid, f"c{i % 13}", items, 100 + i))
        if i % 11 != 5:
            executor.execute(shop.PayOrder(shop.payment_stream(oid), shop.order_stream(oid), oid, 100 + i))


def final_states(store: Any) -> dict[str, str]:
    frame = processes_frame(store, [shop.OrderFulfilment(), shop.Carrier()])
    assert frame["terminal"].all(), frame[~frame["terminal"]]
    # the outcome and its reason, without the stock figures a refusal quotes (they depend on the order
    # in which concurrent runner threads reserved)
    outcome = frame["status"].map(lambda status: ":".join(status.split(":")[:2]))
    return dict(zip(frame["stream"], outcome, strict=True))


def effects_applied_twice(store: Any) -> list[Any]:
    """Counted from the log: any domain effect or command outcome that appears more than once."""
    events = store.read_all()
    effects = Counter(
        (e.event_type, e.stream_id, getattr(e.payload, "order_id", None), getattr(e.payload, "attempt", None))
        for e in events
        if e.event_type.startswith("shop.") and e.event_type != "shop.StockAdded"
    )
    outcomes = Counter(
        (e.stream_id, e.payload.command_id)
        for e in events
        if isinstance(e.payload, CommandSucceeded | CommandRejected)
    )
    issued = {(e.stream_id, e.payload.command_id) for e in events if isinstance(e.payload, CommandIssued)}
    assert set(outcomes) == issued, "every issued command has an outcome"
    return [k for k, n in effects.items() if n > 1] + [k for k, n in outcomes.items() if n > 1]


@pytest.fixture(scope="module")
def reference() -> dict[str, str]:
    """Terminal states of an uncrashed run, on the memory store, in this process."""
    sys.path.insert(0, str(WORKER.parent))
    try:
        from process_crash_worker import settle
    finally:
        sys.path.remove(str(WORKER.parent))
    store = MemoryStore()
    seed_orders(store)
    settle(store)
    states = final_states(store)
    assert effects_applied_twice(store) == []
    return states


def run_with_kills(args: list[str], seed: int) -> int:
    """Start the worker, SIGKILL it ``KILLS`` times at random moments, then let it finish. Returns the
    number of kills that hit a running worker."""
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(WORKER), *args]
    hits = 0
    for _ in range(KILLS):
        worker = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read() if worker.stderr else ""
        time.sleep(rng.uniform(0.05, 0.6))
        if worker.poll() is None:
            hits += 1
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("done")
    return hits


def check_after_crashes(store: Any, reference: dict[str, str], hits: int) -> None:
    assert hits >= 1, "no kill landed while the runner was working"
    assert final_states(store) == reference
    assert effects_applied_twice(store) == []


def test_sigkilled_runner_on_duckdb_ends_like_an_uncrashed_run(
    tmp_path: Path, reference: dict[str, str]
) -> None:
    from eventcore_lab.stores.duckdb import DuckDBStore

    path = tmp_path / "shop.duckdb"
    with DuckDBStore(path) as store:
        seed_orders(store)
    hits = run_with_kills(["duckdb", str(path)], seed=1)
    with DuckDBStore(path) as store:
        check_after_crashes(store, reference, hits)


def test_sigkilled_runner_on_postgres_ends_like_an_uncrashed_run(
    pg_url: str, pg_schema: str, reference: dict[str, str]
) -> None:
    from eventcore_lab.stores.postgres import PostgresStore

    with PostgresStore(pg_url, schema=pg_schema) as store:
        seed_orders(store)
    hits = run_with_kills(["postgres", pg_url, pg_schema], seed=2)
    with PostgresStore(pg_url, schema=pg_schema) as store:
        check_after_crashes(store, reference, hits)
