"""A store wrapper that reports the latency of every read and write to observers.

Wrapping keeps the stores themselves free of observability code: any store (memory, DuckDB,
PostgreSQL, a chaos store, a user's own) can be observed the same way.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..core.events import EventToWrite, ExpectedVersion, StoredEvent
from ..core.query import AppendCondition, Query
from ..stores.filters import given_options
from ..stores.health import StoreHealth, health_of
from ._hook import notify
from .events import Observer, StoreOperation


class ObservedStore:
    """Delegates to ``inner`` and reports each ``append``, ``import_events`` and read as a
    :class:`StoreOperation`. Everything else (head, subscribe, checkpoints, close, ...) passes through."""

    def __init__(self, inner: Any, observers: Sequence[Observer]) -> None:
        self.inner = inner
        self.observers = tuple(observers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"<ObservedStore of {self.inner!r}>"

    def _report(
        self, operation: str, method: str, started: float, events: int, ok: bool, new: int = 0
    ) -> None:
        notify(
            self.observers,
            StoreOperation(operation, method, time.perf_counter() - started, events, ok, new),
        )

    def append(
        self,
        events: Sequence[EventToWrite],
        expected: Mapping[str, ExpectedVersion] | None = None,
        *,
        condition: AppendCondition | None = None,
    ) -> list[StoredEvent]:
        started = time.perf_counter()
        try:
            if condition is None:
                written = self.inner.append(events, expected)
            else:
                written = self.inner.append(events, expected, condition=condition)
        except BaseException:
            self._report("write", "append", started, 0, False)
            raise
        new = [event.version for event in written].count(1)
        self._report("write", "append", started, len(written), True, new)
        return written

    def import_events(self, events: Iterable[StoredEvent], **kwargs: Any) -> int:
        started = time.perf_counter()
        try:
            count = int(self.inner.import_events(events, **kwargs))
        except BaseException:
            self._report("write", "import_events", started, 0, False)
            raise
        self._report("write", "import_events", started, count, True)
        return count

    def _read(self, method: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = getattr(self.inner, method)(*args, **kwargs)
        except BaseException:
            self._report("read", method, started, 0, False)
            raise
        count = len(result.events) if hasattr(result, "events") else len(result)
        self._report("read", method, started, count, True)
        return result

    def read_stream(
        self,
        stream_id: str,
        *,
        after_version: int = 0,
        event_types: Iterable[str | type] | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        result: list[StoredEvent] = self._read(
            "read_stream",
            stream_id,
            after_version=after_version,
            **given_options(event_types=event_types, backwards=backwards, limit=limit),
        )
        return result

    def read_streams(self, stream_ids: Iterable[str]) -> Any:
        # the executor's read, once per attempt: called directly rather than through _read
        started = time.perf_counter()
        try:
            result = self.inner.read_streams(stream_ids)
        except BaseException:
            self._report("read", "read_streams", started, 0, False)
            raise
        self._report("read", "read_streams", started, len(result.events), True)
        return result

    def read_all(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
        backwards: bool = False,
    ) -> list[StoredEvent]:
        result: list[StoredEvent] = self._read(
            "read_all",
            after=after,
            limit=limit,
            **given_options(event_types=event_types, categories=categories, backwards=backwards),
        )
        return result

    def read_query(self, query: Query, *, after: int = 0, limit: int | None = None) -> Any:
        return self._read("read_query", query, after=after, limit=limit)

    def read_filtered(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
    ) -> Any:
        return self._read(
            "read_filtered", after=after, limit=limit, event_types=event_types, categories=categories
        )

    def stream_version(self, stream_id: str) -> int:
        return int(self.inner.stream_version(stream_id))

    def head(self) -> int:
        return int(self.inner.head())

    def wait_for_events(self, after: int, timeout: float) -> bool:
        return bool(self.inner.wait_for_events(after, timeout))

    def subscribe(
        self,
        *,
        after: int = 0,
        batch_size: int = 500,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
    ) -> Any:
        from ..stores.base import Subscription
        from ..stores.rules import check_log_filter

        where = check_log_filter(event_types, categories, self.inner.registry)
        return Subscription(self, after=after, batch_size=batch_size, where=where)

    def health(self) -> StoreHealth:
        return health_of(self.inner)

    def close(self) -> None:
        self.inner.close()
