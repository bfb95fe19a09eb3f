"""read_streams is one snapshot: every stream as of one moment, on every store.

A transfer writes a debit and a credit in one append; a read that sees one without the other shows a
state that never existed. Two ways to provoke it: a commit placed exactly between the part of a read
served from memory and the part fetched from the database (through the stores' public ``read_hook``),
and threads transferring while others read, a few hundred times.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from eventcore_lab import Event, EventToWrite, ExpectedVersion, MemoryStore, StoredEvent
from eventcore_lab.core.events import Metadata
from eventcore_lab.errors import VersionConflict
from eventcore_lab.stores.base import StreamsRead
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.postgres import PostgresStore


class ConsistencyAmountMoved(Event):
    """One leg of a transfer: ``amount`` enters (positive) or leaves (negative) a stream."""

    amount: int


Hook = Callable[[list[str]], None]
DURABLE = ["duckdb-file", "duckdb-memory", "duckdb-tiny-cache", "postgres", "postgres-cached"]


class Stores:
    """Opens the store variants under test, with an optional read hook, and closes them afterwards."""

    def __init__(self, tmp_path: Path, pg_url: str, pg_schema: str) -> None:
        self.tmp_path, self.pg_url, self.pg_schema = tmp_path, pg_url, pg_schema
        self.opened: list[Any] = []

    def open(self, kind: str, hook: Hook | None = None) -> Any:
        store: Any
        if kind == "memory":
            store = MemoryStore()
        elif kind == "duckdb-file":
            store = DuckDBStore(self.tmp_path / f"{uuid.uuid4().hex}.duckdb", read_hook=hook)
        elif kind == "duckdb-memory":
            store = DuckDBStore(":memory:", read_hook=hook)
        elif kind == "duckdb-tiny-cache":
            path = self.tmp_path / f"{uuid.uuid4().hex}.duckdb"
            store = DuckDBStore(path, cache_events=2, tail_events=2, read_hook=hook)
        elif kind == "postgres":
            store = PostgresStore(self.pg_url, schema=self.pg_schema, pool_max=8, read_hook=hook)
        elif kind == "postgres-cached":
            store = PostgresStore(
                self.pg_url, schema=self.pg_schema, pool_max=8, cache_events=1000, read_hook=hook
            )
        else:
            raise AssertionError(kind)
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in reversed(self.opened):
            store.close()


@pytest.fixture
def stores(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stores]:
    kind = request.node.callspec.params.get("kind", "")
    if kind.startswith("postgres"):
        url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
    else:
        url, schema = "", ""
    opened = Stores(tmp_path, url, schema)
    yield opened
    opened.close()


def legs(source: str, target: str, amount: int) -> list[EventToWrite]:
    return [
        EventToWrite(source, ConsistencyAmountMoved(-amount)),
        EventToWrite(target, ConsistencyAmountMoved(amount)),
    ]


def transfer(store: Any, source: str, target: str, amount: int) -> bool:
    """Move ``amount`` as a command would: read both, append both legs at the versions read."""
    read = store.read_streams([source, target])
    expected = {sid: ExpectedVersion.exact(v) for sid, v in read.versions.items()}
    try:
        store.append(legs(source, target, amount), expected)
    except VersionConflict:
        return False
    return True


def assert_whole(read: StreamsRead, streams: list[str], transfers: int | None = None) -> None:
    """The read shows only whole transfers: the amounts cancel out and every version matches its events."""
    assert sum(e.payload.amount for e in read.events) == 0, f"torn read: {read}"
    assert [e.position for e in read.events] == sorted(e.position for e in read.events)
    for sid in streams:
        versions = [e.version for e in read.events if e.stream_id == sid]
        assert versions == list(range(1, read.versions[sid] + 1)), f"versions of {sid}: {read}"
    if transfers is not None:
        assert len(read.events) == 2 * transfers


def imported(store: Any, stream_legs: list[tuple[str, int]]) -> None:
    """Bulk-load first events: imports leave the streams out of every cache, so the next read of them
    goes to the database."""
    at = datetime.now(UTC)
    events = [
        StoredEvent(
            event_id=uuid.uuid4(),
            stream_id=sid,
            version=1,
            position=0,
            event_type="ConsistencyAmountMoved",
            payload=ConsistencyAmountMoved(amount),
            metadata=Metadata(),
            recorded_at=at,
        )
        for sid, amount in stream_legs
    ]
    assert store.import_events(events) == len(events)


@pytest.mark.parametrize("kind", DURABLE)
def test_a_commit_between_the_cached_and_the_fetched_half_of_a_read_is_seen_whole_or_not_at_all(
    stores: Stores, kind: str
) -> None:
    armed: list[Callable[[], object]] = []
    calls: list[list[str]] = []

    def hook(ids: list[str]) -> None:
        calls.append(ids)
        while armed:
            armed.pop()()

    store = stores.open(kind, hook)
    imported(store, [("acct-a", -10), ("acct-b", 10)])
    assert store.read_streams(["acct-b"]).versions == {"acct-b": 1}  # acct-b cached where there is a cache
    calls.clear()
    armed.append(lambda: store.append(legs("acct-a", "acct-b", 7), None))
    read = store.read_streams(["acct-a", "acct-b"])
    assert calls and "acct-a" in calls[0], "the commit did not land inside the read"
    assert not armed
    assert_whole(read, ["acct-a", "acct-b"])
    assert len(read.events) in (2, 4)
    after = store.read_streams(["acct-b", "acct-a"])
    assert_whole(after, ["acct-a", "acct-b"], transfers=2)  # and the commit is visible to the next read


@pytest.mark.parametrize("kind", ["postgres", "postgres-cached"])
def test_another_process_committing_between_the_halves_of_a_read(stores: Stores, kind: str) -> None:
    """On PostgreSQL the interleaved writer is another store (another process, as far as the cache knows)."""
    other = stores.open("postgres")
    armed: list[Callable[[], object]] = []

    def hook(ids: list[str]) -> None:
        while armed:
            armed.pop()()

    store = stores.open(kind, hook)
    imported(store, [("acct-a", 5), ("acct-b", -5)])
    store.read_streams(["acct-b"])
    armed.append(lambda: other.append(legs("acct-b", "acct-a", 3), None))
    read = store.read_streams(["acct-a", "acct-b"])
    assert not armed
    assert_whole(read, ["acct-a", "acct-b"])
    assert_whole(store.read_streams(["acct-a", "acct-b"]), ["acct-a", "acct-b"])


@pytest.mark.parametrize("kind", ["postgres-cached"])
def test_cached_streams_read_at_different_moments_are_not_combined(
    stores: Stores, kind: str, pg_url: str, pg_schema: str
) -> None:
    """A writer elsewhere whose notification never arrives (it died after committing) moves money between
    a stream cached before its commit and one cached after it: a read of both must not mix the two."""
    store = stores.open(kind)
    imported(store, [("acct-a", -1), ("acct-b", 1)])
    store.read_streams(["acct-a"])  # cached before the silent commit
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the schema's own append function, no NOTIFY
        conn.execute(
            sql.SQL(
                "SELECT * FROM {}.append_events(%s::text[], %s::uuid[], %s::text[], %s::text[], %s::text[], "
                "%s::text[], %s::text[], %s::int8[])"
            ).format(sql.Identifier(pg_schema)),
            (
                ["acct-a", "acct-b"],
                [uuid.uuid4(), uuid.uuid4()],
                ["ConsistencyAmountMoved"] * 2,
                ['{"amount":-4}', '{"amount":4}'],
                ['{"correlation_id":"silent"}'] * 2,
                [],
                [],
                [],
            ),
        )
    store.read_streams(["acct-b"])  # cached after it
    both = store.read_streams(["acct-a", "acct-b"])
    assert_whole(both, ["acct-a", "acct-b"], transfers=2)
    assert both.versions == {"acct-a": 2, "acct-b": 2}


@pytest.mark.parametrize("kind", ["memory", *DURABLE])
def test_readers_never_see_half_a_transfer_while_threads_transfer(stores: Stores, kind: str) -> None:
    store = stores.open(kind)
    accounts = [f"acct-{n}" for n in range(5)]
    imported_legs = [(sid, 0) for sid in accounts]
    if kind == "memory":
        store.append([EventToWrite(sid, ConsistencyAmountMoved(0)) for sid in accounts])
    else:
        imported(store, imported_legs)
    stop = threading.Event()
    failures: list[BaseException] = []
    reads = 0

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                source, target = rng.sample(accounts, 2)
                transfer(store, source, target, rng.randint(1, 9))
        except BaseException as exc:
            failures.append(exc)

    def reader(seed: int, count: int) -> None:
        nonlocal reads
        rng = random.Random(seed)
        try:
            for _ in range(count):
                chosen = rng.sample(accounts, rng.randint(2, len(accounts)))
                read = store.read_streams(chosen)
                everything = store.read_streams(accounts)
                assert_whole(everything, accounts)
                for sid in chosen:  # a later read never goes back in time
                    assert everything.versions[sid] >= read.versions[sid]
                reads += 1
        except BaseException as exc:
            failures.append(exc)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    readers = [threading.Thread(target=reader, args=(100 + n, 100)) for n in range(3)]
    for thread in writers + readers:
        thread.start()
    for thread in readers:
        thread.join(timeout=120)
    stop.set()
    for thread in writers:
        thread.join(timeout=60)
    assert not failures, failures[0]
    assert reads == 300
    final = store.read_streams(accounts)
    assert_whole(final, accounts)
    assert store.head() > len(accounts)  # the writers did write meanwhile
