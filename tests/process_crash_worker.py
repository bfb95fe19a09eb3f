"""A process runner in its own OS process, for the crash test (tests/test_processes_crash.py).

It drives the e-commerce processes in a store until nothing is left to do, with a virtual clock that
jumps to the next deadline whenever the log is idle. The test kills it with SIGKILL at random moments
and starts it again; everything it needs to continue is in the store (events and checkpoint).

    python tests/process_crash_worker.py duckdb PATH
    python tests/process_crash_worker.py postgres URL SCHEMA
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from eventcore_lab.examples.ecommerce import Carrier, OrderFulfilment
from eventcore_lab.processes import ProcessRunner
from eventcore_lab.simulation import EPOCH


def open_target(argv: list[str]) -> Any:
    kind = argv[0]
    if kind == "duckdb":
        from eventcore_lab.stores.duckdb import DuckDBStore

        return DuckDBStore(argv[1])
    from eventcore_lab.stores.postgres import PostgresStore

    return PostgresStore(argv[1], schema=argv[2])


def settle(store: Any) -> None:
    now = [EPOCH]

    def clock() -> datetime:
        return now[0]

    runner = ProcessRunner(store, [OrderFulfilment(), Carrier()], clock=clock, batch_size=50)
    print("ready", flush=True)
    while True:
        if runner.run_until_idle():
            continue
        due = runner.next_deadline()
        if due is None:
            break
        now[0] = max(now[0], due)
        runner.check_deadlines()
    print(f"done {runner.stats}", flush=True)


if __name__ == "__main__":
    target = open_target(sys.argv[1:])
    try:
        settle(target)
    finally:
        target.close()
