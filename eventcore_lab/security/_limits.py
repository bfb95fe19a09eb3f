"""Resource limits the stores do not enforce themselves, enforced in one wrapper and one policy.

The stores already refuse oversized payloads (``max_payload_bytes`` on every store) and the executor
already bounds retries (``RetryConfig.max_attempts``) and time (``timeout``). What was missing is
enforced here, before anything is written: events and streams per append, streams per command (through
the executor's policy seam, after stream resolution) and the page size of log reads. ``Limits.executor``
builds an Executor whose retry and timeout settings stay inside the limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ..core.authorization import CommandPolicy, StreamAccess
from ..core.errors import TooLong
from ..core.events import EventToWrite, ExpectedVersion, StoredEvent
from ..core.executor import Executor
from ..core.ids import StreamId
from ..core.query import AppendCondition, Query
from ..core.retry import RetryConfig
from ..stores.base import EventStore, Queries, QueryRead, StreamsRead, Subscription
from ..stores.filters import FilteredRead, given_options
from ..stores.health import StoreHealth, health_of
from ..stores.rules import check_log_filter


class LimitExceeded(TooLong):
    """A request went over a configured resource limit; nothing was written."""

    code = "SE004"

    def __init__(self, limit: str, value: float, maximum: float, what: str) -> None:
        self.limit = limit
        self.value = value
        self.maximum = maximum
        super().__init__(f"{what} is {value}, over the limit {limit}={maximum}; nothing was written")


@dataclass(frozen=True)
class Limits:
    """The guide's resource limits, with defaults generous enough for normal use."""

    max_events_per_command: int = 1_000
    max_streams_per_command: int = 100
    max_read_page: int = 10_000
    max_retries: int = 10
    max_timeout: float = 60.0

    def __post_init__(self) -> None:
        for name in ("max_events_per_command", "max_streams_per_command", "max_read_page", "max_retries"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not self.max_timeout > 0:
            raise ValueError(f"max_timeout must be > 0 seconds, got {self.max_timeout!r}")

    def check_streams(self, count: int, what: str) -> None:
        if count > self.max_streams_per_command:
            raise LimitExceeded("max_streams_per_command", count, self.max_streams_per_command, what)

    def executor(
        self,
        store: EventStore,
        *,
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        policy: CommandPolicy | None = None,
        **options: Any,
    ) -> Executor:
        """An Executor whose retries and timeout are within the limits (defaults cut down to them), and
        which refuses commands over ``max_streams_per_command`` (then asks ``policy``, if given)."""
        if retry is None:  # the defaults, cut down to the limits
            retry = RetryConfig(max_attempts=min(RetryConfig().max_attempts, self.max_retries))
        if timeout is None:
            timeout = min(30.0, self.max_timeout)
        if retry.max_attempts > self.max_retries:
            raise LimitExceeded(
                "max_retries", retry.max_attempts, self.max_retries, "RetryConfig.max_attempts"
            )
        if timeout > self.max_timeout:
            raise LimitExceeded("max_timeout", timeout, self.max_timeout, "the command timeout (seconds)")
        guard = StreamCountPolicy(self, policy)
        return Executor(store, retry=retry, timeout=timeout, policy=guard, **options)


class StreamCountPolicy:
    """Refuses commands that read or write more streams than the limit, then asks ``then`` (if any)."""

    def __init__(self, limits: Limits, then: CommandPolicy | None = None) -> None:
        self.limits = limits
        self.then = then

    def authorize(self, principal: Any, command: Any, streams: StreamAccess) -> None:
        count = len(set(streams.read) | set(streams.write))
        self.limits.check_streams(count, f"the number of streams {type(command).__name__} uses")
        if self.then is not None:
            self.then.authorize(principal, command, streams)


class LimitedStore:
    """Wraps any store and refuses appends and log reads over the limits, before touching it."""

    def __init__(self, inner: EventStore, limits: Limits | None = None) -> None:
        self.inner = inner
        self.limits = limits or Limits()
        self.registry = inner.registry

    def __repr__(self) -> str:
        return f"<LimitedStore {self.limits} around {self.inner!r}>"

    def append(
        self,
        events: Sequence[EventToWrite],
        expected: Mapping[str, ExpectedVersion] | None = None,
        *,
        condition: AppendCondition | None = None,
    ) -> list[StoredEvent]:
        if isinstance(events, Sequence) and len(events) > self.limits.max_events_per_command:
            raise LimitExceeded(
                "max_events_per_command",
                len(events),
                self.limits.max_events_per_command,
                "the append's event count",
            )
        streams = {str(StreamId(w.stream_id)) for w in events if isinstance(w, EventToWrite)}
        streams |= {str(StreamId(s)) for s in (expected or {})}
        self.limits.check_streams(len(streams), "the number of streams the append touches")
        if condition is None:
            return self.inner.append(events, expected)
        return cast(Queries, self.inner).append(events, expected, condition=condition)

    def read_query(self, query: Query, *, after: int = 0, limit: int | None = None) -> QueryRead:
        """A query read; a ``limit`` above ``max_read_page`` is refused (a decision's read has none)."""
        if limit is not None and limit > self.limits.max_read_page:
            raise LimitExceeded("max_read_page", limit, self.limits.max_read_page, "the read_query page size")
        return cast(Queries, self.inner).read_query(query, after=after, limit=limit)

    def read_all(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
        backwards: bool = False,
    ) -> list[StoredEvent]:
        self._check_page(limit, "read_all")
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
        self._check_page(limit, "read_filtered")
        return self.inner.read_filtered(
            after=after, limit=limit, event_types=event_types, categories=categories
        )

    def _check_page(self, limit: int | None, method: str) -> None:
        if limit is None or limit > self.limits.max_read_page:
            raise LimitExceeded(
                "max_read_page",
                float("inf") if limit is None else limit,
                self.limits.max_read_page,
                f"the {method} page size (pass limit= and page by position)",
            )

    def read_streams(self, stream_ids: Iterable[str]) -> StreamsRead:
        ids = list(stream_ids)
        self.limits.check_streams(len(set(ids)), "the number of streams read at once")
        return self.inner.read_streams(ids)

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

        if batch_size > self.limits.max_read_page:
            raise LimitExceeded(
                "max_read_page", batch_size, self.limits.max_read_page, "the subscription batch size"
            )
        where = check_log_filter(event_types, categories, self.inner.registry)
        return Subscription(self, after=after, batch_size=batch_size, where=where)

    def import_events(self, events: Iterable[StoredEvent]) -> int:
        return self.inner.import_events(events)

    def checkpoint_load(self, name: str) -> int:
        return int(self.inner.checkpoint_load(name))  # type: ignore[attr-defined]

    def checkpoint_save(self, name: str, position: int) -> None:
        self.inner.checkpoint_save(name, position)  # type: ignore[attr-defined]

    def health(self) -> StoreHealth:
        return health_of(self.inner)

    def close(self) -> None:
        self.inner.close()
