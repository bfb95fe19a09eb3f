"""Every store wrapper forwards the query capability: tags, ``read_query`` and append conditions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pytest

from eventcore_lab import Event, EventToWrite, MemoryStore
from eventcore_lab.backup import backup, restore, verify
from eventcore_lab.core.errors import AppendConditionFailed
from eventcore_lab.core.query import AppendCondition, Query, QueryItem
from eventcore_lab.observability.store import ObservedStore
from eventcore_lab.security import MemoryKeyStore, PersonalData, PersonalDataError, ProtectedStore
from eventcore_lab.security._limits import LimitedStore, LimitExceeded, Limits
from eventcore_lab.simulation._explore._footprint import RecordingStore
from eventcore_lab.stores.base import Queries
from eventcore_lab.stores.chaos import ChaosStore
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.testing.contract import tagged


class SeatTaken(Event):
    registration = "on_first_use"
    tags_from = ("seat:{seat}",)
    seat: str
    holder: Annotated[str, PersonalData(subject="holder_id")]
    holder_id: str


class LeakyTag(Event):
    registration = "on_first_use"
    tags_from = ("holder:{holder}",)
    holder: Annotated[str, PersonalData(subject="holder_id")]
    holder_id: str


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def observe(self, observation: Any) -> None:
        self.seen.append(observation)


WRAPPERS: dict[str, Callable[[MemoryStore], Any]] = {
    "observed": lambda inner: ObservedStore(inner, [Recorder()]),
    "limited": lambda inner: LimitedStore(inner, Limits(max_read_page=50)),
    "protected": lambda inner: ProtectedStore(inner, MemoryKeyStore()),
    "chaos": lambda inner: ChaosStore(inner, failure_probability=0, conflict_probability=0, latency=None),
}

SEAT_1 = Query.of(QueryItem(types=("SeatTaken",), tags=("seat:1",)))


@pytest.mark.parametrize("name", list(WRAPPERS))
def test_wrappers_forward_tags_queries_and_conditions(name: str) -> None:
    inner = MemoryStore()
    store = WRAPPERS[name](inner)
    assert isinstance(store, Queries)
    [first] = store.append(
        [EventToWrite("seat-1", SeatTaken(seat="1", holder="Ann", holder_id="p-1"), tags=("row:a",))],
        condition=AppendCondition(SEAT_1),
    )
    assert first.tags == ("seat:1", "row:a")
    with pytest.raises(AppendConditionFailed):
        store.append(
            [EventToWrite("seat-1b", SeatTaken(seat="1", holder="Bob", holder_id="p-2"))],
            condition=AppendCondition(SEAT_1),
        )
    read = store.read_query(SEAT_1)
    assert [(e.event_id, e.tags, e.payload.holder) for e in read.events] == [
        (first.event_id, first.tags, "Ann")
    ]
    assert read.position == inner.head() == 1


def test_the_observed_store_reports_query_reads() -> None:
    recorder = Recorder()
    store = ObservedStore(MemoryStore(), [recorder])
    store.read_query(SEAT_1)
    assert [(o.operation, o.method, o.ok) for o in recorder.seen] == [("read", "read_query", True)]


def test_the_limited_store_bounds_the_page_of_a_query_read() -> None:
    store = LimitedStore(MemoryStore(), Limits(max_read_page=5))
    with pytest.raises(LimitExceeded):
        store.read_query(Query.all(), limit=6)
    assert store.read_query(Query.all(), limit=5).events == []


def test_the_protected_store_keeps_personal_data_out_of_tags() -> None:
    inner = MemoryStore()
    store = ProtectedStore(inner, MemoryKeyStore())
    with pytest.raises(PersonalDataError, match="holder"):
        store.append([EventToWrite("x", LeakyTag(holder="Ann", holder_id="p-1"))])
    assert inner.head() == 0
    store.append([EventToWrite("seat-1", SeatTaken(seat="1", holder="Ann", holder_id="p-1"))])
    [stored] = inner.read_all()
    assert stored.tags == ("seat:1",) and stored.payload.holder != "Ann"  # sealed in the inner store


def test_tags_survive_backup_and_restore(tmp_path: Path) -> None:
    source = MemoryStore()
    written = source.append(
        [
            EventToWrite("seat-1", SeatTaken(seat="1", holder="Ann", holder_id="p-1"), tags=("row:a",)),
            tagged("plain", "untagged"),
        ]
    )
    backup(source, tmp_path / "full")
    assert verify(tmp_path / "full").ok
    for target in (MemoryStore(), DuckDBStore(tmp_path / "copy.duckdb")):
        restore(target, [tmp_path / "full"])
        assert [e.tags for e in target.read_all()] == [e.tags for e in written] == [("seat:1", "row:a"), ()]
        assert [e.event_id for e in target.read_query(SEAT_1).events] == [written[0].event_id]
        target.close()


def test_the_explorers_recording_store_forwards_queries_and_counts_them_as_reading_everything() -> None:
    inner = MemoryStore()
    recording = RecordingStore(inner)
    recording.append([tagged("a", "x", "seat:1")], condition=AppendCondition(SEAT_1))
    assert recording.footprint.everything and recording.footprint.writes == {"a"}
    assert recording.read_query(Query.of(QueryItem(tags=("seat:1",)))).position == 1
    with pytest.raises(AppendConditionFailed):
        recording.append([tagged("b", "x", "seat:1")], condition=AppendCondition(Query.all(), 0))
