"""eventcore-lab workloads: commands through the :class:`Executor`, clients in threads, bulk import.

Every function takes an open store and sizes, does its own untimed set-up (accounts to work on), and
returns the timed :class:`Sample`. Stream names carry a ``tag`` so that repeats can share a store.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventcore_lab import EventToWrite, Executor, Metadata, StoredEvent
from eventcore_lab.core.ids import new_event_id

from .domain import BenchCredited, BenchOpened, BenchRateSet, Credit, CreditAtRate, Open, Transfer
from .harness import Sample, time_loop, time_once, time_threads

HOT_STREAM_EVENTS = 50


def open_accounts(executor: Executor, tag: str, count: int) -> list[str]:
    """``count`` accounts, each opened with a large balance so transfers never run dry."""
    names = [f"acct-{tag}-{k}" for k in range(count)]
    for name in names:
        executor.execute(Open(name, amount=1_000_000))
    return names


def single_stream_create(store: Any, tag: str, count: int, warmup: int) -> Sample:
    executor = Executor(store)
    return time_loop(lambda i: executor.execute(Open(f"new-{tag}-{i}")), count, warmup=warmup)


def single_stream_update(store: Any, tag: str, count: int, warmup: int, accounts: int) -> Sample:
    executor = Executor(store)
    names = open_accounts(executor, tag, accounts)
    return time_loop(lambda i: executor.execute(Credit(names[i % accounts])), count, warmup=warmup)


def _transfer_op(executor: Executor, names: list[str]) -> Callable[[int], Any]:
    n = len(names)

    def op(i: int) -> Any:
        k = (2 * i + 1) % n
        return executor.execute(Transfer(names[k], names[k - 1]))

    return op


def two_stream_transfer(store: Any, tag: str, count: int, warmup: int, accounts: int) -> Sample:
    executor = Executor(store)
    names = open_accounts(executor, tag, accounts)
    return time_loop(_transfer_op(executor, names), count, warmup=warmup)


def hot_read(store: Any, tag: str, count: int, warmup: int, accounts: int) -> Sample:
    executor = Executor(store)
    names = open_accounts(executor, tag, accounts)
    rates = f"rates-{tag}"
    metadata = Metadata()
    store.append([EventToWrite(rates, BenchRateSet(r % 5 + 1), metadata) for r in range(HOT_STREAM_EVENTS)])
    return time_loop(
        lambda i: executor.execute(CreditAtRate(names[i % accounts], rates)), count, warmup=warmup
    )


def clients(store: Any, tag: str, kind: str, clients: int, count: int, accounts: int) -> Sample:
    """``clients`` threads, each with its own executor and accounts (no conflicts: throughput only)."""

    def make_op(client: int) -> Callable[[int], Any]:
        executor = Executor(store)
        names = open_accounts(executor, f"{tag}-c{client}", accounts)
        if kind == "transfer":
            return _transfer_op(executor, names)
        return lambda i: executor.execute(Credit(names[i % accounts]))

    return time_threads(make_op, clients, count)


def make_history(count: int, streams: int) -> list[StoredEvent]:
    """``count`` stored events over ``streams`` account streams: an opening, then credits."""
    metadata = Metadata(correlation_id=str(uuid.uuid4()))
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:8]
    versions = [0] * streams
    events = []
    for i in range(count):
        k = i % streams
        versions[k] += 1
        version = versions[k]
        payload = BenchOpened(owner="bench") if version == 1 else BenchCredited(amount=i % 100 + 1)
        events.append(
            StoredEvent(
                event_id=new_event_id(),
                stream_id=f"hist-{tag}-{k}",
                version=version,
                position=i + 1,
                event_type=type(payload).__name__,
                payload=payload,
                metadata=metadata,
                recorded_at=now,
            )
        )
    return events


def bulk_import(store: Any, events: list[StoredEvent]) -> Sample:
    return time_once(lambda: store.import_events(events))


def bulk_import_file(store: Any, path: Path) -> Sample:
    """Import an exported Parquet file: the bulk path a user takes to load a history."""
    return time_once(lambda: store.import_file(path, progress=False))
