"""A store wrapper that injects faults, so retry policies and invariants can be tested under stress.

Faults come from a seeded RNG, so a failing run can be replayed. Every injected fault happens *before*
the inner store is touched: an injected failure or conflict never leaves anything written.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ..core.errors import (
    AppendConditionFailed,
    ConnectionFailed,
    InvalidArgument,
    TransactionError,
    VersionConflict,
)
from ..core.events import EventToWrite, ExpectedVersion, StoredEvent
from ..core.query import AppendCondition, Query
from .base import EventStore, Queries, QueryRead, StreamsRead, Subscription
from .filters import FilteredRead, given_options
from .health import StoreHealth, health_of


@dataclass
class ChaosStats:
    """What the chaos store has injected so far (for reports and assertions)."""

    calls: int = 0
    failures: int = 0
    conflicts: int = 0
    latency: float = 0.0


class ChaosStore:
    """Wraps ``inner`` and makes ``append``/``read_streams``/``read_query`` (the executor's calls) misbehave.

    Each call first waits a latency drawn uniformly from ``latency`` (seconds, via ``sleep``, which a
    simulation replaces with virtual time), then fails with probability ``failure_probability``
    (ConnectionFailed or a retriable TransactionError); an append that got this far conflicts with
    probability ``conflict_probability`` (VersionConflict on the streams it checks; AppendConditionFailed
    when it checks only a query). The defaults are the
    manual's: 10 % failures, 20 % conflicts, 50-200 ms latency. Other calls pass straight through.
    """

    def __init__(
        self,
        inner: EventStore,
        *,
        failure_probability: float = 0.1,
        conflict_probability: float = 0.2,
        latency: tuple[float, float] | None = (0.05, 0.2),
        seed: int | None = None,
        fail_reads: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for name, p in (
            ("failure_probability", failure_probability),
            ("conflict_probability", conflict_probability),
        ):
            if not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
                raise InvalidArgument(f"{name} must be a probability between 0 and 1, got {p!r}")
        if latency is not None and (len(latency) != 2 or not 0 <= latency[0] <= latency[1]):
            raise InvalidArgument(
                f"latency must be (low, high) seconds with 0 <= low <= high, got {latency!r}"
            )
        self.inner = inner
        self.failure_probability = float(failure_probability)
        self.conflict_probability = float(conflict_probability)
        self.latency = latency
        self.fail_reads = fail_reads
        self.sleep = sleep
        self.stats = ChaosStats()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"<ChaosStore failure={self.failure_probability} conflict={self.conflict_probability} "
            f"latency={self.latency} around {self.inner!r}>"
        )

    # -- the faulty calls ---------------------------------------------------------------------------

    def append(
        self,
        events: Sequence[EventToWrite],
        expected: Mapping[str, ExpectedVersion] | None = None,
        *,
        condition: AppendCondition | None = None,
    ) -> list[StoredEvent]:
        fail, conflict = self._draw(can_conflict=bool(expected) or condition is not None)
        if fail is not None:
            raise fail
        if conflict:
            if not expected and condition is not None:  # a query-only decision conflicts on its query
                head = self.inner.head()
                raise AppendConditionFailed(condition.fail_if_events_match, condition.after, head)
            checked = expected or {}
            raise VersionConflict(
                {
                    sid: (f"{exp} (injected conflict)", self.inner.stream_version(sid))
                    for sid, exp in checked.items()
                }
            )
        if condition is None:
            return self.inner.append(events, expected)
        return cast(Queries, self.inner).append(events, expected, condition=condition)

    def read_streams(self, stream_ids: Iterable[str]) -> StreamsRead:
        fail, _ = self._draw(can_conflict=False, can_fail=self.fail_reads)
        if fail is not None:
            raise fail
        return self.inner.read_streams(stream_ids)

    def read_query(self, query: Query, *, after: int = 0, limit: int | None = None) -> QueryRead:
        fail, _ = self._draw(can_conflict=False, can_fail=self.fail_reads)
        if fail is not None:
            raise fail
        return cast(Queries, self.inner).read_query(query, after=after, limit=limit)

    def _draw(self, *, can_conflict: bool, can_fail: bool = True) -> tuple[Exception | None, bool]:
        """Draw this call's latency and fault; always the same number of draws, so runs replay exactly."""
        with self._lock:
            draw = self._rng.random
            latency = self.latency
            # what rng.uniform(low, high) computes, without its call (this runs on every store call)
            delay = latency[0] + (latency[1] - latency[0]) * draw() if latency else 0.0
            fail_roll, kind_roll, conflict_roll = draw(), draw(), draw()
            stats = self.stats
            stats.calls += 1
            stats.latency += delay
            error: Exception | None = None
            if can_fail and fail_roll < self.failure_probability:
                stats.failures += 1
                if kind_roll < 0.5:
                    error = ConnectionFailed("injected by ChaosStore: the connection dropped")
                else:
                    error = TransactionError(
                        "injected by ChaosStore: the transaction aborted", retriable=True
                    )
            conflict = error is None and can_conflict and conflict_roll < self.conflict_probability
            if conflict:
                stats.conflicts += 1
        if delay:
            self.sleep(delay)
        return error, conflict

    # -- everything else passes through -------------------------------------------------------------

    def read_stream(
        self,
        stream_id: str,
        *,
        after_version: int = 0,
        event_types: Iterable[str | type] | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        return self.inner.read_stream(
            stream_id,
            after_version=after_version,
            **given_options(event_types=event_types, backwards=backwards, limit=limit),
        )

    def read_all(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
        backwards: bool = False,
    ) -> list[StoredEvent]:
        return self.inner.read_all(
            after=after,
            limit=limit,
            **given_options(event_types=event_types, categories=categories, backwards=backwards),
        )

    def read_filtered(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
    ) -> FilteredRead:
        return self.inner.read_filtered(
            after=after, limit=limit, event_types=event_types, categories=categories
        )

    def stream_version(self, stream_id: str) -> int:
        return self.inner.stream_version(stream_id)

    def head(self) -> int:
        return self.inner.head()

    def wait_for_events(self, after: int, timeout: float) -> bool:
        return self.inner.wait_for_events(after, timeout)

    def subscribe(
        self,
        *,
        after: int = 0,
        batch_size: int = 500,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
    ) -> Subscription:
        return self.inner.subscribe(
            after=after,
            batch_size=batch_size,
            **given_options(event_types=event_types, categories=categories),
        )

    def import_events(self, events: Iterable[StoredEvent]) -> int:
        return self.inner.import_events(events)

    def health(self) -> StoreHealth:
        """The inner store's health: no fault is injected into it."""
        return health_of(self.inner)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # store-specific extras (e.g. MemoryStore.stream_ids) stay reachable through the wrapper
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __enter__(self) -> ChaosStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
