"""Snapshots of folded command state: same decisions with or without, changed folds and stale ones ignored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventcore_lab import (
    Command,
    Event,
    EventToWrite,
    Executor,
    MemoryStore,
    RetryConfig,
    StoredEvent,
    emit,
    stream,
)
from eventcore_lab.core.executor import Phase
from eventcore_lab.errors import InvalidFormat
from eventcore_lab.snapshots import DuckDBSnapshots, MemorySnapshots, PostgresSnapshots, Snapshots, fold_key
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.postgres import PostgresStore

NO_WAIT = RetryConfig(max_attempts=5, initial_delay=0, max_delay=0, jitter=False)
MOD = 1_000_000_007


class SnapTally(Event):
    registration = "on_first_use"
    amount: int
    seen_count: int = 0
    seen_digest: int = 0


def fold(state: tuple[int, int], event: StoredEvent) -> tuple[int, int]:
    count, digest = state
    return count + 1, (digest * 31 + event.payload.amount + event.version) % MOD  # order matters


class Record(Command):
    """Writes the state it decided on, so two runs can be compared event by event."""

    account: str = stream()
    amount: int

    def initial_state(self) -> tuple[int, int]:
        return (0, 0)

    def apply(self, state: tuple[int, int], event: StoredEvent) -> tuple[int, int]:
        return fold(state, event)

    def handle(self, state: tuple[int, int], ctx: Any) -> list[EventToWrite]:
        return [emit(self.account, SnapTally(amount=self.amount, seen_count=state[0], seen_digest=state[1]))]


class RecordPair(Command):
    """Reads two streams: its fold merges them in position order."""

    first: str = stream()
    second: str = stream()
    amount: int

    def initial_state(self) -> tuple[int, int]:
        return (0, 0)

    def apply(self, state: tuple[int, int], event: StoredEvent) -> tuple[int, int]:
        return fold(state, event)

    def handle(self, state: tuple[int, int], ctx: Any) -> list[EventToWrite]:
        seen = SnapTally(amount=self.amount, seen_count=state[0], seen_digest=state[1])
        return [emit(self.first, seen), emit(self.second, SnapTally(amount=0))]


STREAMS = ["s-a", "s-b", "s-c"]
operation = st.one_of(
    st.tuples(st.just("one"), st.sampled_from(STREAMS), st.integers(1, 50)),
    st.tuples(st.just("pair"), st.permutations(STREAMS).map(lambda p: tuple(p[:2])), st.integers(1, 50)),
    st.tuples(st.just("raw"), st.sampled_from(STREAMS), st.integers(1, 50)),  # a write by someone else
)


def run(ops: list[tuple[Any, ...]], snapshots: Snapshots | None) -> list[tuple[str, int, int, int]]:
    store = MemoryStore()
    executor = Executor(store, retry=NO_WAIT, snapshots=snapshots)
    for kind, where, amount in ops:
        if kind == "one":
            executor.execute(Record(where, amount))
        elif kind == "pair":
            executor.execute(RecordPair(where[0], where[1], amount))
        else:
            store.append([EventToWrite(where, SnapTally(amount=amount))])
    return [
        (e.stream_id, e.payload.amount, e.payload.seen_count, e.payload.seen_digest) for e in store.read_all()
    ]


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(operation, max_size=40), every=st.integers(1, 6))
def test_state_with_snapshots_equals_state_without(ops: list[tuple[Any, ...]], every: int) -> None:
    snapshots = Snapshots(MemorySnapshots(), every=every)
    assert run(ops, snapshots) == run(ops, None)
    commands = sum(1 for op in ops if op[0] != "raw")
    assert snapshots.hits + snapshots.misses == commands


def test_a_long_stream_is_read_from_its_snapshot() -> None:
    store = MemoryStore()
    store.append([EventToWrite("long", SnapTally(amount=i % 7)) for i in range(1000)])
    snapshots = Snapshots(MemorySnapshots(), every=100)
    executor = Executor(store, snapshots=snapshots)
    executor.execute(Record("long", 1))  # folds 1000 events and saves a snapshot
    assert (snapshots.misses, snapshots.saved) == (1, 1)

    reads: list[int] = []
    original = store.read_stream

    def read_stream(stream_id: str, *, after_version: int = 0) -> list[StoredEvent]:
        events = original(stream_id, after_version=after_version)
        reads.append(len(events))
        return events

    store.read_stream = read_stream  # type: ignore[method-assign]  # a public seam: count what is read
    executor.execute(Record("long", 2))
    assert snapshots.hits == 1 and reads == [1]  # only the event written after the snapshot
    plain = Executor(store).execute(Record("long", 3)).events_written[0].payload
    assert plain.seen_count == 1002


def test_a_snapshot_from_a_changed_fold_is_ignored() -> None:
    class Before(Record):
        def apply(self, state: tuple[int, int], event: StoredEvent) -> tuple[int, int]:
            return state[0] + 1, 0

    class After(Record):
        def apply(self, state: tuple[int, int], event: StoredEvent) -> tuple[int, int]:
            return state[0] + 1, (state[1] + event.payload.amount) % MOD

    After.__qualname__ = Before.__qualname__  # same name, different code
    After.__module__ = Before.__module__
    assert fold_key(Before) != fold_key(After)
    store = MemoryStore()
    store.append([EventToWrite("x", SnapTally(amount=5)) for _ in range(10)])
    snapshots = Snapshots(MemorySnapshots(), every=1)
    executor = Executor(store, snapshots=snapshots)
    executor.execute(Before("x", 1))
    assert snapshots.saved == 1
    decided = executor.execute(After("x", 1)).events_written[0].payload
    assert snapshots.hits == 0 and decided.seen_digest == 51  # 10 x 5 + 1: the new code folded from scratch

    class Versioned(Record):
        fold_version = 2

    assert fold_key(Versioned) != fold_key(type("Versioned", (Record,), {"__module__": __name__}))


def test_a_stale_snapshot_from_another_history_is_ignored() -> None:
    shared = MemorySnapshots()
    first, second = MemoryStore(), MemoryStore()
    first.append([EventToWrite("x", SnapTally(amount=1)) for _ in range(10)])
    second.append([EventToWrite("x", SnapTally(amount=2)) for _ in range(3)])
    Executor(first, snapshots=Snapshots(shared, every=1)).execute(Record("x", 1))
    snapshots = Snapshots(shared, every=1)
    decided = Executor(second, snapshots=snapshots).execute(Record("x", 1)).events_written[0].payload
    expected = Executor(second).execute(Record("x", 1)).events_written[0].payload
    assert snapshots.rejected == 1
    assert decided.seen_count == 3 and expected.seen_count == 4  # the second run saw the first's event


def test_the_optimistic_check_still_guards_decisions_made_from_a_snapshot() -> None:
    store = MemoryStore()
    store.append([EventToWrite("x", SnapTally(amount=1)) for _ in range(20)])
    snapshots = Snapshots(MemorySnapshots(), every=1)
    executor = Executor(store, retry=NO_WAIT, snapshots=snapshots)
    executor.execute(Record("x", 1))
    steps = executor.steps(Record("x", 2))
    assert next(steps).phase is Phase.READ
    store.append([EventToWrite("x", SnapTally(amount=9))])  # someone writes between read and append
    phases = []
    try:
        while True:
            phases.append(next(steps).phase)
    except StopIteration as done:
        result = done.value
    assert Phase.BACKOFF in phases and result.attempts == 2
    assert result.events_written[0].payload.seen_count == 22  # decided again on the current stream


def test_every_must_be_positive() -> None:
    with pytest.raises(InvalidFormat, match="every must be an int >= 1"):
        Snapshots(MemorySnapshots(), every=0)


@pytest.fixture
def duckdb_store() -> Iterator[DuckDBStore]:
    with DuckDBStore() as s:
        yield s


def test_snapshots_in_duckdb_and_postgres_resume_the_fold(
    duckdb_store: DuckDBStore, pg_url: str, pg_schema: str
) -> None:
    pg = PostgresStore(pg_url, schema=pg_schema)
    kept = [DuckDBSnapshots(duckdb_store), PostgresSnapshots(pg_url, schema=pg_schema)]
    try:
        for store, where in ((duckdb_store, kept[0]), (pg, kept[1])):
            store.append([EventToWrite("y", SnapTally(amount=i)) for i in range(50)])
            snapshots = Snapshots(where, every=10)
            Executor(store, snapshots=snapshots).execute(Record("y", 1))
            again = Snapshots(where, every=10)  # a new process: only the table is shared
            decided = Executor(store, snapshots=again).execute(Record("y", 2)).events_written[0].payload
            plain = Executor(store).execute(Record("y", 3)).events_written[0].payload
            assert again.hits == 1 and decided.seen_count == 51 and plain.seen_count == 52
    finally:
        kept[1].close()
        pg.close()


def test_postgres_snapshots_on_the_store_share_its_pool_and_schema(pg_url: str, pg_schema: str) -> None:
    with PostgresStore(pg_url, schema=pg_schema, pool_max=1) as store:  # one connection: borrowed per call
        on_store = PostgresSnapshots(store)
        store.append([EventToWrite("z", SnapTally(amount=i)) for i in range(30)])
        Executor(store, snapshots=Snapshots(on_store, every=10)).execute(Record("z", 1))
        by_dsn = PostgresSnapshots(pg_url, schema=pg_schema)  # the same table, seen from elsewhere
        try:
            again = Snapshots(by_dsn, every=10)
            decided = Executor(store, snapshots=again).execute(Record("z", 2)).events_written[0].payload
            assert again.hits == 1 and decided.seen_count == 31
        finally:
            by_dsn.close()
        on_store.close()  # leaves the store's connections alone
        assert store.head() == 32
        with pytest.raises(InvalidFormat, match="differs from the store's schema"):
            PostgresSnapshots(store, schema="elsewhere")
    with pytest.raises(InvalidFormat, match="DSN or a PostgresStore"):
        PostgresSnapshots(42)


class RecordWithPartner(Command):
    """Reads its stream, then discovers a partner stream: the fold over both is in position order."""

    account: str = stream()
    partner: str
    amount: int

    def initial_state(self) -> tuple[int, int]:
        return (0, 0)

    def apply(self, state: tuple[int, int], event: StoredEvent) -> tuple[int, int]:
        return fold(state, event)

    def handle(self, state: tuple[int, int], ctx: Any) -> list[EventToWrite]:
        ctx.add_streams(self.partner)
        return [emit(self.account, SnapTally(amount=self.amount, seen_count=state[0], seen_digest=state[1]))]


def test_streams_discovered_after_a_snapshot_are_folded_from_scratch_in_position_order() -> None:
    def history(snapshots: Snapshots | None) -> list[tuple[int, int]]:
        store = MemoryStore()
        executor = Executor(store, snapshots=snapshots)
        for i in range(6):  # interleave the two streams, so position order matters to the fold
            store.append(
                [EventToWrite("main", SnapTally(amount=i)), EventToWrite("partner", SnapTally(amount=i))]
            )
            executor.execute(RecordWithPartner("main", "partner", i))
        return [
            (e.payload.seen_count, e.payload.seen_digest) for e in store.read_all() if e.payload.seen_count
        ]

    snapshots = Snapshots(MemorySnapshots(), every=1)
    assert history(snapshots) == history(None)
    assert snapshots.saved >= 1 and snapshots.hits >= 1  # a snapshot was found, then set aside for the refold
