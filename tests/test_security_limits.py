"""Every resource limit, hit on every store: a clear error, nothing written, the store still usable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventcore_lab import Command, Event, EventToWrite, MemoryStore, RetryConfig, emit, stream
from eventcore_lab.core.errors import ConcurrencyConflict, Timeout, TooLong
from eventcore_lab.security import LimitedStore, LimitExceeded, Limits
from eventcore_lab.stores.chaos import ChaosStore
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.postgres import PostgresStore

PAYLOAD_LIMIT = 2_000


class Noted(Event, frozen=True):
    event_type = "security_limits_test.Noted"
    text: str


class Fan(Command):
    """Writes ``count`` events spread over ``streams``."""

    streams: list[str] = stream()
    count: int = 1
    text: str = "x"

    def initial_state(self) -> None:
        return None

    def apply(self, state: None, event: Any) -> None:
        return None

    def handle(self, state: None, ctx: Any) -> list[Any]:
        return [emit(self.streams[i % len(self.streams)], Noted(text=self.text)) for i in range(self.count)]


@pytest.fixture(params=["memory", "duckdb", "postgres"])
def inner(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore(max_payload_bytes=PAYLOAD_LIMIT)
    elif request.param == "duckdb":
        with DuckDBStore(tmp_path / "limits.duckdb", max_payload_bytes=PAYLOAD_LIMIT) as store:
            yield store
    else:
        url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
        with PostgresStore(url, schema=schema, pool_max=4, max_payload_bytes=PAYLOAD_LIMIT) as store:
            yield store


LIMITS = Limits(
    max_events_per_command=5, max_streams_per_command=3, max_read_page=4, max_retries=3, max_timeout=5
)


def _unchanged_and_usable(store: Any, head: int) -> None:
    assert store.head() == head
    store.append([EventToWrite("after", Noted(text="still works"))])
    assert store.head() == head + 1 and store.read_stream("after")[-1].payload.text == "still works"


def test_payload_size(inner: Any) -> None:
    store = LimitedStore(inner, LIMITS)
    executor = LIMITS.executor(store)
    executor.execute(Fan(["a"], 1, "y" * 100))
    with pytest.raises(TooLong, match=f"limit is {PAYLOAD_LIMIT}"):
        executor.execute(Fan(["a"], 1, "y" * (PAYLOAD_LIMIT + 1)))
    _unchanged_and_usable(inner, 1)


def test_events_per_command(inner: Any) -> None:
    executor = LIMITS.executor(LimitedStore(inner, LIMITS))
    executor.execute(Fan(["a"], 5))
    with pytest.raises(LimitExceeded, match="max_events_per_command=5") as hit:
        executor.execute(Fan(["a"], 6))
    assert hit.value.code == "SE004" and hit.value.value == 6
    _unchanged_and_usable(inner, 5)


def test_streams_per_command_and_per_append(inner: Any) -> None:
    store = LimitedStore(inner, LIMITS)
    executor = LIMITS.executor(store)
    executor.execute(Fan(["a", "b", "c"], 3))
    with pytest.raises(LimitExceeded, match="read at once is 4"):  # the wrapped store refuses the read
        executor.execute(Fan(["a", "b", "c", "d"], 1))
    with pytest.raises(LimitExceeded, match="streams Fan uses is 4"):  # the executor's policy, on any store
        LIMITS.executor(inner).execute(Fan(["a", "b", "c", "d"], 1))
    with pytest.raises(LimitExceeded, match="max_streams_per_command=3"):
        store.append([EventToWrite(s, Noted(text="x")) for s in "wxyz"])
    with pytest.raises(LimitExceeded, match="read at once"):
        store.read_streams(["a", "b", "c", "d"])
    _unchanged_and_usable(inner, 3)


def test_read_page_size(inner: Any) -> None:
    store = LimitedStore(inner, LIMITS)
    store.append([EventToWrite("a", Noted(text=str(i))) for i in range(5)])
    assert [e.version for e in store.read_all(after=0, limit=4)] == [1, 2, 3, 4]
    with pytest.raises(LimitExceeded, match="max_read_page=4"):
        store.read_all(after=0, limit=5)
    with pytest.raises(LimitExceeded, match="page by position"):
        store.read_all()
    with pytest.raises(LimitExceeded, match="batch size"):
        store.subscribe(batch_size=100)
    with store.subscribe(batch_size=4) as sub:
        assert [sub.poll(0.1).version for _ in range(5)] == [1, 2, 3, 4, 5]
    _unchanged_and_usable(inner, 5)


def test_retries(inner: Any) -> None:
    with pytest.raises(LimitExceeded, match="max_retries=3"):
        LIMITS.executor(inner, retry=RetryConfig(max_attempts=4))
    always_conflicts = ChaosStore(
        LimitedStore(inner, LIMITS), failure_probability=0, conflict_probability=1, latency=None, seed=1
    )
    executor = LIMITS.executor(
        always_conflicts, retry=RetryConfig(max_attempts=3, initial_delay=0, jitter=False)
    )
    with pytest.raises(ConcurrencyConflict) as gave_up:
        executor.execute(Fan(["a"], 1))
    assert gave_up.value.attempts == 4  # the first attempt and 3 retries, then the last error
    _unchanged_and_usable(inner, 0)


def test_timeouts(inner: Any) -> None:
    with pytest.raises(LimitExceeded, match="max_timeout=5"):
        LIMITS.executor(inner, timeout=10)
    slow = ChaosStore(inner, failure_probability=0, conflict_probability=0, latency=(0.05, 0.05), seed=1)
    executor = LIMITS.executor(slow, timeout=0.01)
    with pytest.raises(Timeout, match="nothing was written"):
        executor.execute(Fan(["a"], 1))
    _unchanged_and_usable(inner, 0)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_read_page"):
        Limits(max_read_page=0)
    with pytest.raises(ValueError, match="max_timeout"):
        Limits(max_timeout=0)
