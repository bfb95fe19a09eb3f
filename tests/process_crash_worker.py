"""A process-runner service in its own OS process, for the crash test (tests/test_processes_crash.py).

It drives the e-commerce processes in a store until nothing is left to do: ``PARTITIONS`` runner threads,
each serving one partition of the processes (so that their appends commit together), and a virtual clock
that jumps to the next deadline whenever a runner has nothing else to do. The test kills the whole
process with SIGKILL at random moments and starts it again; everything needed to continue is in the store
(events and checkpoints).

    python tests/process_crash_worker.py duckdb PATH
    python tests/process_crash_worker.py postgres URL SCHEMA
"""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from typing import Any

from eventcore_lab.examples.ecommerce import Carrier, OrderFulfilment
from eventcore_lab.processes import ProcessRunner

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
PARTITIONS = 4


def open_target(argv: list[str]) -> Any:
    kind = argv[0]
    if kind == "duckdb":
        from eventcore_lab.stores.duckdb import DuckDBStore

        return DuckDBStore(argv[1])
    from eventcore_lab.stores.postgres import PostgresStore

    return PostgresStore(argv[1], schema=argv[2])


class VirtualClock:
    """Shared by the runner threads; only ever moves forward."""

    def __init__(self) -> None:
        self.now = EPOCH
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        return self.now

    def advance_to(self, moment: datetime) -> None:
        with self._lock:
            self.now = max(self.now, moment)


def settle(store: Any, partitions: int = PARTITIONS) -> list[ProcessRunner]:
    """Run until every runner is idle with no deadline pending, all at once."""
    clock = VirtualClock()
    runners = [
        ProcessRunner(
            store, [OrderFulfilment(), Carrier()], clock=clock, batch_size=50, partition=(i, partitions)
        )
        for i in range(partitions)
    ]
    stop = threading.Event()
    errors: list[BaseException] = []

    def work(runner: ProcessRunner) -> None:
        try:
            while not stop.is_set():
                if runner.run_until_idle():
                    continue
                due = runner.next_deadline()
                if due is not None:
                    clock.advance_to(due)
                    runner.check_deadlines()
                else:
                    store.wait_for_events(runner.position, 0.02)
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=work, args=(r,), daemon=True) for r in runners]
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    quiet = 0
    while not stop.is_set() and quiet < 3:  # three looks in a row at a finished log
        stop.wait(0.05)
        head = store.head()
        done = all(r.position >= head and r.next_deadline() is None for r in runners)
        quiet = quiet + 1 if done else 0
    stop.set()
    for thread in threads:
        thread.join(30)
    if errors:
        raise errors[0]
    return runners


if __name__ == "__main__":
    target = open_target(sys.argv[1:])
    try:
        finished = settle(target)
        print(f"done {[r.stats for r in finished]}", flush=True)
    finally:
        target.close()
