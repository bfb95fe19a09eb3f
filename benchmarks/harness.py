"""Timing primitives: sequential and threaded loops with per-operation latencies, and their summaries.

Each loop returns a :class:`Sample` (one repeat). The runner collects samples of the same case over
several repeats and reports medians, because the benchmark machine is usually shared and noisy.
"""

from __future__ import annotations

import gc
import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sample:
    """One timed repeat: ``ops`` operations (commands, events, rows) in ``seconds`` of wall time."""

    ops: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds per operation, when measured

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def time_loop(op: Callable[[int], Any], count: int, *, warmup: int = 0) -> Sample:
    """Call ``op(i)`` for ``warmup`` then ``count`` indices, timing each call (GC left on, like real use)."""
    for i in range(warmup):
        op(i)
    clock = time.perf_counter
    latencies = [0.0] * count
    gc.collect()
    started = clock()
    for i in range(warmup, warmup + count):
        t0 = clock()
        op(i)
        latencies[i - warmup] = clock() - t0
    return Sample(count, clock() - started, latencies)


def time_threads(make_op: Callable[[int], Callable[[int], Any]], clients: int, count: int) -> Sample:
    """Run ``count`` operations per client in ``clients`` threads started together; ops/s over all.

    ``make_op(client)`` builds each client's operation before the clock starts (connections, executors).
    The first error of any client is re-raised after all threads finish.
    """
    ops = [make_op(c) for c in range(clients)]
    barrier = threading.Barrier(clients + 1)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []

    def client(index: int) -> None:
        op, mine, clock = ops[index], latencies[index], time.perf_counter
        barrier.wait()
        try:
            for i in range(count):
                t0 = clock()
                op(i)
                mine.append(clock() - t0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for thread in threads:
        thread.start()
    gc.collect()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    return Sample(clients * count, seconds, [x for per in latencies for x in per])


def time_once(op: Callable[[], int]) -> Sample:
    """Time one bulk call that returns how many items it handled."""
    gc.collect()
    started = time.perf_counter()
    ops = op()
    return Sample(ops, time.perf_counter() - started)


def summarize(samples: Sequence[Sample]) -> dict[str, Any]:
    """Median rate over repeats, the spread, and median latency percentiles (milliseconds)."""
    rates = [s.rate for s in samples]
    out: dict[str, Any] = {
        "rate": statistics.median(rates),
        "rates": rates,
        "ops": samples[0].ops if samples else 0,
    }
    timed = [s for s in samples if s.latencies]
    if timed:
        for q in (50, 95, 99):
            out[f"p{q}_ms"] = statistics.median(percentile(s.latencies, q) for s in timed) * 1000
    return out
