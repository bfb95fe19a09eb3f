"""The durable stores decode a read a column at a time (payloads of one type in one call, shared metadata):
a page mixing types, tags, metadata and unknown types reads back exactly as written, and a payload that
does not fit its class fails as a single decode would."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import msgspec
import pytest

from eventcore_lab import EventToWrite, ExpectedVersion, Metadata, StoredEvent
from eventcore_lab.core.errors import SerializationError
from eventcore_lab.core.registry import EventRegistry, UnknownEvent
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.postgres import PostgresStore


class Deposited(msgspec.Struct, frozen=True):
    amount: int


class Renamed(msgspec.Struct, frozen=True):
    name: str


class DepositedAsText(msgspec.Struct, frozen=True):
    amount: str


def _registry(**classes: type) -> EventRegistry:
    registry = EventRegistry()
    for name, cls in classes.items():
        registry.register(cls, name)
    return registry


WRITER = {"test_read_decoding.Deposited": Deposited, "test_read_decoding.Renamed": Renamed}

#: Opens a store of one kind on the same database each time, with the registry given.
Opener = Callable[[EventRegistry], Any]


@pytest.fixture(params=["duckdb", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    opened: list[Any] = []

    def open_(registry: EventRegistry) -> Any:
        for store in opened:
            store.close()
        opened.clear()
        if request.param == "duckdb":
            store = DuckDBStore(tmp_path / "events.duckdb", registry=registry, show_progress=False)
        else:
            url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
            store = PostgresStore(url, schema=schema, registry=registry)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def _write(store: Any) -> list[EventToWrite]:
    """Two appends, each of interleaved types with their own metadata, some events tagged."""
    first = Metadata(correlation_id="c-1", user_id="ann", custom={"n": [1, 2]})
    second = Metadata(correlation_id="c-2")
    written = [
        EventToWrite("acct-1", Deposited(5), first, ("t:a",)),
        EventToWrite("acct-1", Renamed("x"), first),
        EventToWrite("acct-2", Deposited(7), first, ("t:a", "t:b")),
    ]
    store.append(written, expected={"acct-1": ExpectedVersion.NO_STREAM})
    more = [EventToWrite("acct-2", Renamed("y"), second), EventToWrite("acct-1", Deposited(9), second)]
    store.append(more)
    return written + more


def _check_envelope(events: list[StoredEvent]) -> None:
    for event in events:
        assert type(event.event_id) is uuid.UUID
        assert event.recorded_at.tzinfo is UTC
        assert type(event.metadata) is Metadata
        assert type(event.tags) is tuple


def test_a_mixed_page_reads_back_as_written_on_every_read_path(open_store: Opener) -> None:
    store = open_store(_registry(**WRITER))
    written = _write(store)
    store = open_store(_registry(**WRITER))  # reopened: every read comes from the database
    events = store.read_all()
    _check_envelope(events)
    assert [e.payload for e in events] == [w.event for w in written]
    assert [e.metadata for e in events] == [w.metadata for w in written]
    assert [e.tags for e in events] == [w.tags for w in written]
    assert [e.position for e in events] == [1, 2, 3, 4, 5]
    assert len({e.event_id for e in events}) == 5
    paged = store.read_all(limit=2) + store.read_all(after=2, limit=2) + store.read_all(after=4, limit=2)
    assert paged == events
    assert store.read_stream("acct-1") == [e for e in events if e.stream_id == "acct-1"]
    assert store.read_streams(["acct-2", "acct-1"]).events == events


def test_unknown_types_in_a_page_keep_their_json_while_the_others_decode(open_store: Opener) -> None:
    store = open_store(_registry(**WRITER))
    _write(store)
    reader = _registry(**{"test_read_decoding.Deposited": Deposited})
    events = open_store(reader).read_all()
    _check_envelope(events)
    unknown = [e.payload for e in events if e.event_type == "test_read_decoding.Renamed"]
    assert [type(p) for p in unknown] == [UnknownEvent, UnknownEvent]
    assert [p.data for p in unknown] == [{"name": "x"}, {"name": "y"}]
    known = [e.payload for e in events if e.event_type == "test_read_decoding.Deposited"]
    assert known == [Deposited(5), Deposited(7), Deposited(9)]


def test_a_payload_that_does_not_fit_its_class_fails_as_a_single_decode_does(open_store: Opener) -> None:
    store = open_store(_registry(**WRITER))
    _write(store)
    reader = _registry(
        **{"test_read_decoding.Deposited": DepositedAsText, "test_read_decoding.Renamed": Renamed}
    )
    store = open_store(reader)
    with pytest.raises(SerializationError, match=r"test_read_decoding\.Deposited"):
        store.read_all()
    single = store.read_all(after=1, limit=1)  # the events of other types still read
    assert single[0].payload == Renamed("x")
