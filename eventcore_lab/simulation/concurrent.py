"""Real concurrency: the same workload on threads (any store) or processes (a store many processes can
open, e.g. PostgreSQL). Not repeatable like the simulator, but it exercises the store's own locking."""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from ..core.errors import EventCoreError, InvalidFormat
from ..core.events import Metadata
from ..core.executor import Executor, Phase
from ..core.retry import RetryConfig
from ._outcomes import finish_error, finish_ok, note_backoff
from .results import CommandRecord, SimulationResult, records_frame
from .workload import Workload


def _run_client(
    workload: Workload,
    client: int,
    store: Any,
    retry: RetryConfig,
    sleep: Callable[[float], None],
    t0: float,
    clock: Callable[[], float],
    on_done: Callable[[], None] | None = None,
) -> list[CommandRecord]:
    """Issue one client's commands one after another, blocking through backoff and think time."""
    executor = Executor(
        store, retry=retry, timeout=None, rng=random.Random(workload.seed * 31 + client), sleep=sleep
    )
    commands = workload.stream_for(client)
    quota = workload.quota(client)
    records: list[CommandRecord] = []
    index = 0
    while quota is None or index < quota:
        op, command, think = next(commands)
        if think:
            sleep(think)
        start = clock() - t0
        if workload.duration is not None and start >= workload.duration:
            break
        record = CommandRecord(
            client, index, op, type(command).__name__, tuple(command.read_streams()), start=start
        )
        steps = executor.steps(command, metadata=Metadata(correlation_id=f"c{client}-{index}"))
        try:
            while True:
                step = next(steps)
                if step.phase is Phase.BACKOFF:
                    note_backoff(record, step)
                    sleep(step.delay)
        except StopIteration as done:
            finish_ok(record, done.value, clock() - t0)
        except EventCoreError as error:
            finish_error(record, error, clock() - t0)
        records.append(record)
        index += 1
        if on_done:
            on_done()
    return records


def _setup(workload: Workload, store: Any, retry: RetryConfig) -> None:
    executor = Executor(store, retry=retry, timeout=None, rng=random.Random(workload.seed))
    for command in workload.setup:
        executor.execute(command, metadata=Metadata(correlation_id="setup"))


def run_threads(
    workload: Workload,
    store: Any,
    *,
    retry: RetryConfig | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: bool = False,
) -> SimulationResult:
    """Run each client of ``workload`` on its own thread against ``store``; times are wall-clock."""
    from tqdm.auto import tqdm

    retry = retry if retry is not None else RetryConfig()
    _setup(workload, store, retry)
    lock = threading.Lock()
    with tqdm(
        total=workload.commands, disable=not progress, desc="commands on threads", unit="command"
    ) as bar:

        def tick() -> None:
            with lock:
                bar.update(1)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workload.clients, thread_name_prefix="client") as pool:
            futures = [
                pool.submit(_run_client, workload, c, store, retry, sleep, t0, time.perf_counter, tick)
                for c in range(workload.clients)
            ]
            records = [r for f in futures for r in f.result()]
        elapsed = time.perf_counter() - t0
    return SimulationResult(records_frame(records), "threads", elapsed, store)


def _process_main(
    workload: Workload, clients: list[int], store_factory: Callable[[], Any], retry: RetryConfig, t0: float
) -> list[CommandRecord]:
    store = store_factory()
    try:
        with ThreadPoolExecutor(max_workers=max(1, len(clients))) as pool:
            futures = [
                pool.submit(_run_client, workload, c, store, retry, time.sleep, t0, time.time)
                for c in clients
            ]
            return [r for f in futures for r in f.result()]
    finally:
        store.close()


def run_processes(
    workload: Workload,
    store_factory: Callable[[], Any],
    *,
    processes: int = 2,
    retry: RetryConfig | None = None,
) -> SimulationResult:
    """Spread the clients over ``processes`` worker processes, each opening its own store with
    ``store_factory`` (picklable, e.g. ``functools.partial(PostgresStore, url)``); threads inside each.

    The workload's makers must be picklable too (module-level functions). Times are wall-clock.
    """
    if processes < 1:
        raise InvalidFormat(f"processes must be >= 1, got {processes}")
    retry = retry if retry is not None else RetryConfig()
    store = store_factory()
    try:
        _setup(workload, store, retry)
    finally:
        store.close()
    groups = [list(range(p, workload.clients, processes)) for p in range(processes)]
    t0 = time.time()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        futures = [pool.submit(_process_main, workload, g, store_factory, retry, t0) for g in groups if g]
        records = [r for f in futures for r in f.result()]
    elapsed = time.time() - t0
    return SimulationResult(records_frame(records), "processes", elapsed, None)
