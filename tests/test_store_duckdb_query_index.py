"""The DuckDB store's in-memory index agrees with SQL over the events table: after appends, after
reopening the file (the index is loaded from it) and after imports (``import_events``, ``import_file``
from Parquet, read by DuckDB itself, and from JSON lines), for query reads, append conditions and
reads of streams the store has not cached (found by their positions in the index)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from eventcore_lab.core.errors import AppendConditionFailed
from eventcore_lab.core.events import EventToWrite
from eventcore_lab.core.query import AppendCondition, Query, QueryItem
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.duckdb._queries import query_sql
from eventcore_lab.testing._contract_events import ContractJoined, Measured, note, tagged

_NOTE, _JOINED = "eventcore.contract.Note", "eventcore.contract.Joined"

QUERIES = [
    Query.of(QueryItem(tags=("course:1",))),
    Query.of(QueryItem(tags=("course:1", "student:2"))),
    Query.of(QueryItem(types=(_JOINED,))),
    Query.of(QueryItem(types=(_NOTE,), tags=("student:3",))),
    Query.of(QueryItem(types=(_NOTE, _JOINED), tags=("course:2", "student:1"))),
    Query.of(QueryItem(types=(_JOINED,), tags=("course:0",)), QueryItem(tags=("student:4",))),
    Query.of(QueryItem(tags=("nobody",))),
    Query.of(QueryItem(types=("no.such.Type",))),
    Query.all(),
]


def _events(seed: int, count: int) -> list[EventToWrite]:
    """Notes with 0-3 tags from a small pool and joins tagged by their fields, across a few streams."""
    rng = random.Random(seed)
    events = []
    for i in range(count):
        student, course = rng.randrange(5), rng.randrange(3)
        stream = f"s{seed}-{rng.randrange(8)}"
        if rng.random() < 0.4:
            events.append(EventToWrite(stream, ContractJoined(student=f"{student}", course=f"{course}")))
        else:
            pool = [f"student:{student}", f"course:{course}", f"extra:{i % 2}"]
            events.append(tagged(stream, f"{seed}-{i}", *rng.sample(pool, rng.randrange(4))))
    return events


def _append(store: DuckDBStore, seed: int, count: int) -> None:
    for start in range(0, count, 7):  # batches of a few events, as commands write them
        store.append(_events(seed * 1000 + start, min(7, count - start)))


def _sql_positions(store: DuckDBStore, query: Query, after: int) -> list[int]:
    where, params = query_sql(query)
    frame = store.sql(
        f"select position from events where position > ? and {where} order by position", [after, *params]
    )
    return [int(p) for p in frame["position"]]


def _assert_index_agrees(store: DuckDBStore) -> None:
    head = store.head()
    assert head > 0
    every = store.read_all()
    for query in QUERIES:
        for after in (0, 1, head // 3, head - 4, head):
            expected = _sql_positions(store, query, after)
            read = store.read_query(query, after=after)
            assert read.position == head
            assert [e.position for e in read.events] == expected, (query, after)
            assert read.events == [every[p - 1] for p in expected]  # the very events, decoded alike
            assert [e.position for e in store.read_query(query, after=after, limit=3).events] == expected[:3]
            condition = AppendCondition(query, after=after)
            if expected:
                with pytest.raises(AppendConditionFailed):
                    store.append([], condition=condition)
            else:
                assert store.append([], condition=condition) == []


def _assert_streams_agree(store: DuckDBStore) -> None:
    """Every stream, read one by one and all at once, holds the events SQL finds for it."""
    frame = store.sql("select stream_id, position from events order by position")
    expected: dict[str, list[int]] = {}
    for sid, position in zip(frame["stream_id"], frame["position"], strict=True):
        expected.setdefault(str(sid), []).append(int(position))
    assert len(expected) > 1
    for sid, positions in expected.items():
        assert [e.position for e in store.read_stream(sid)] == positions, sid
    together = store.read_streams(list(expected))
    assert [e.position for e in together.events] == sorted(p for run in expected.values() for p in run)
    assert together.versions == {sid: len(run) for sid, run in expected.items()}


def test_the_index_agrees_with_sql_after_appends_and_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    with DuckDBStore(path, tail_events=5, cache_events=3) as store:  # old events come from DuckDB
        _append(store, 1, 120)
        _assert_index_agrees(store)
        _assert_streams_agree(store)
    with DuckDBStore(path, tail_events=5, cache_events=3) as again:  # index loaded from the file
        _assert_index_agrees(again)
        _assert_streams_agree(again)
        _append(again, 2, 40)
        _assert_index_agrees(again)
        _assert_streams_agree(again)


@pytest.mark.parametrize("how", ["import_events", "parquet", "jsonl"])
def test_the_index_agrees_with_sql_after_an_import(tmp_path: Path, how: str) -> None:
    with DuckDBStore(tmp_path / "source.duckdb") as source:
        _append(source, 3, 90)
        exported = source.read_all()
        if how != "import_events":
            file = tmp_path / f"events.{'parquet' if how == 'parquet' else 'jsonl'}"
            assert source.export_events(file) == 90
    with DuckDBStore(tmp_path / "target.duckdb", tail_events=5) as target:
        _append(target, 4, 30)  # imported positions start after these
        if how == "import_events":
            assert target.import_events(exported) == 90
        else:
            assert target.import_file(file) == 90
        assert target.head() == 120
        _assert_index_agrees(target)
        _assert_streams_agree(target)
        _append(target, 5, 20)
        _assert_index_agrees(target)
        _assert_streams_agree(target)


@pytest.mark.parametrize("how", ["import_events", "parquet"])
def test_streams_of_a_large_import_are_found_by_position(tmp_path: Path, how: str) -> None:
    """An import large enough to be indexed by stream in bulk (Arrow) rather than row by row: every
    stream reads back whole, in the same store and after reopening."""
    rng = random.Random(7)
    with DuckDBStore(tmp_path / "source.duckdb") as source:
        for start in range(0, 6_000, 500):
            source.append(
                [EventToWrite(f"big-{rng.randrange(300)}", note(f"n{start + i}")) for i in range(500)]
            )
        exported = source.read_all()
        if how == "parquet":
            assert source.export_events(tmp_path / "events.parquet") == 6_000
    path = tmp_path / "target.duckdb"
    with DuckDBStore(path, cache_events=0) as target:
        _append(target, 8, 30)
        if how == "parquet":
            assert target.import_file(tmp_path / "events.parquet") == 6_000
        else:
            assert target.import_events(exported) == 6_000
        _assert_streams_agree(target)
    with DuckDBStore(path, cache_events=0) as again:
        _assert_streams_agree(again)


def test_an_untagged_import_of_several_types_is_indexed_by_type(tmp_path: Path) -> None:
    """An import without tags is indexed type by type in bulk: each type's positions, in order."""
    measured = "eventcore.contract.Measured"
    with DuckDBStore(tmp_path / "source.duckdb") as source:
        for i in range(60):
            payload = Measured(value=float(i)) if i % 3 == 0 else note(f"n{i}")
            source.append([EventToWrite(f"u-{i % 4}", payload)])
        exported = source.read_all()
    by_type = [
        Query.of(QueryItem(types=(_NOTE,))),
        Query.of(QueryItem(types=(measured,))),
        Query.of(QueryItem(types=(measured, _NOTE))),
        Query.of(QueryItem(tags=("student:1",))),
    ]
    with DuckDBStore(tmp_path / "target.duckdb") as target:
        _append(target, 6, 20)  # tagged events first: the import's positions come after them
        assert target.import_events(exported) == 60
        for query in by_type:
            for after in (0, 15, 40, 80):
                expected = _sql_positions(target, query, after)
                assert [e.position for e in target.read_query(query, after=after).events] == expected
        assert len(_sql_positions(target, by_type[1], 20)) == 20  # the import's measurements are found
