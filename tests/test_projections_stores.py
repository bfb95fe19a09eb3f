"""Projections on the durable stores: the same answers as on memory, and checkpoints kept in the store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_projections_helpers import AccountTable, Balances, run_history

from eventcore_lab import Event, EventToWrite, MemoryStore, Metadata, StoredEvent
from eventcore_lab.examples import banking, tasks
from eventcore_lab.examples.task_views import TeamStatistics
from eventcore_lab.projections import (
    ProjectionRunner,
    StoreCheckpoints,
    checkpoints_for,
    events_frame,
    fold,
    fork,
    state_at,
)
from eventcore_lab.stores import bulk
from eventcore_lab.stores.base import StreamListing
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.postgres import PostgresStore

COMMANDS: list[Any] = [
    banking.OpenAccount("account-1", "ann", 50),
    banking.OpenAccount("account-2", "ben", 0),
    banking.Deposit("account-2", 30),
    banking.TransferMoney("account-1", "account-2", 20),
    banking.Withdraw("account-1", 5),
    tasks.CreateTask.new("1", "Ship", "", "ann"),
    tasks.AssignTask.new("1", "ben", "ann"),
    tasks.CompleteTask.new("1", "ben"),
]


@pytest.fixture(params=["duckdb", "postgres"])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "duckdb":
        store: Any = DuckDBStore(tmp_path / "events.duckdb")
    else:
        url = request.getfixturevalue("pg_url")
        store = PostgresStore(url, schema=request.getfixturevalue("pg_schema"))
    try:
        assert run_history(store, COMMANDS) == len(COMMANDS)
        yield store
    finally:
        store.close()


def reference() -> MemoryStore:
    store = MemoryStore()
    run_history(store, COMMANDS)
    return store


def test_runner_and_frames_match_the_memory_store(durable: Any) -> None:
    memory = reference()
    runner = ProjectionRunner(durable, Balances(), batch_size=3)
    runner.run_until_caught_up()
    assert runner.projection.balances == fold(Balances(), memory.read_all()).balances
    stats = ProjectionRunner(durable, TeamStatistics())
    stats.run_until_caught_up()
    assert stats.projection.status_counts() == {"open": 0, "in_progress": 0, "completed": 1}
    frame = events_frame(durable)
    expected = events_frame(memory)
    assert frame["event_type"].tolist() == expected["event_type"].tolist()
    assert frame["stream_id"].tolist() == expected["stream_id"].tolist()
    assert frame["amount"].fillna(-1).tolist() == expected["amount"].fillna(-1).tolist()
    assert state_at(durable, AccountTable, 4).to_frame().equals(state_at(memory, AccountTable, 4).to_frame())


def test_checkpoints_live_in_the_store_and_survive_a_new_runner(durable: Any) -> None:
    checkpoints = checkpoints_for(durable)
    assert isinstance(checkpoints, StoreCheckpoints)
    first = ProjectionRunner(durable, Balances(), checkpoints=checkpoints)
    first.run_until_caught_up(until=4)
    assert durable.checkpoint_load("balances") == first.position
    projection = first.projection
    # a new runner (as after a restart) continues from the stored checkpoint with the same read model
    second = ProjectionRunner(durable, projection, checkpoints=checkpoints_for(durable))
    assert second.position == first.position
    second.run_until_caught_up()
    bank_events = {cls.__name__ for cls in banking.EVENTS}
    assert projection.seen == [e.position for e in durable.read_all() if e.event_type in bank_events]
    assert durable.checkpoint_load("balances") == durable.head()


def test_fork_of_a_durable_store_is_in_memory_and_leaves_it_alone(durable: Any) -> None:
    before = [(e.event_id, e.position) for e in durable.read_all()]
    branch = fork(durable, 4)
    assert isinstance(branch.store, MemoryStore)
    run_history(branch.store, [banking.Deposit("account-1", 1000)])
    assert [(e.event_id, e.position) for e in durable.read_all()] == before
    assert [branch.original_position(p) for p in range(1, 5)] == [p for _, p in before[:4]]


def test_duckdb_checkpoint_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "log.duckdb"
    with DuckDBStore(path) as store:
        run_history(store, COMMANDS[:5])
        runner = ProjectionRunner(store, Balances(), checkpoints=checkpoints_for(store))
        runner.run_until_caught_up()
        head = store.head()
    with DuckDBStore(path) as store:
        assert ProjectionRunner(store, Balances(), checkpoints=checkpoints_for(store)).position == head


# -- events_frame on DuckDB: the store's native columnar path ---------------------------------------------


class NativeFrameSample(Event):
    """Every scalar kind the native path reads through DuckDB's JSON functions."""

    ratio: float
    flag: bool
    note: str | None = None
    count: int | None = None


def native_history(path: Path | Any) -> tuple[Any, MemoryStore]:
    """A DuckDB store at ``path`` (or the store given) with banking, tasks and sample events, and a
    memory copy of the same events."""
    store = DuckDBStore(path) if isinstance(path, Path) else path
    run_history(store, COMMANDS)
    meta = Metadata(correlation_id="c-1", causation_id="c-0", user_id="ann")
    store.append(
        [
            EventToWrite(
                "sample-1", NativeFrameSample(ratio=0.5, flag=True, note="ünïcode ☃", count=2**40), meta
            ),
            EventToWrite("sample-2", NativeFrameSample(ratio=-1.0, flag=False)),
        ]
    )
    copy = MemoryStore()
    copy.import_events(store.read_all())
    return store, copy


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_events_frame_takes_the_native_path_and_equals_the_generic_one(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """DuckDB expands its own rows; PostgreSQL's come out with one COPY and DuckDB expands them in
    memory: either way no StoredEvent is decoded and the frame equals the generic one."""
    if kind == "duckdb":
        target: Any = tmp_path / "native.duckdb"
    else:
        target = PostgresStore(request.getfixturevalue("pg_url"), schema=request.getfixturevalue("pg_schema"))
    store, memory = native_history(target)
    with store:
        head = store.head()
        middle = store.read_all()[4].recorded_at
        bank = [
            banking.AccountOpened,
            banking.MoneyDeposited,
            banking.MoneyWithdrawn,
            banking.MoneyTransferred,
        ]
        cases: list[dict[str, Any]] = [
            {"types": [*bank, NativeFrameSample]},
            {"types": NativeFrameSample},
            {"types": bank, "streams": "account-*", "after": 2},
            {"types": "MoneyDeposited", "streams": ["account-2", "nowhere"]},
            {"types": bank, "until": 4},
            {"types": bank, "until": middle},
            {"types": bank, "until": datetime(2000, 1, 1, tzinfo=UTC)},
            {"payload": False},
            {"after": head},
            {"streams": "nowhere-*"},
            {"streams": []},
            {"types": []},
            {"streams": " account-2"},  # matched verbatim, as in Python
        ]

        def no_python_path(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the native path should not read StoredEvents")

        for case in cases:
            expected = events_frame(memory, **case)
            # a stream pattern needs the store's stream list (StreamListing), which PostgreSQL lacks:
            # there the Python path answers, with the same frame
            listed = isinstance(store, StreamListing) or "*" not in str(case.get("streams", ""))
            with monkeypatch.context() as patch:
                if listed:
                    patch.setattr(store, "read_all", no_python_path)
                got = events_frame(store, **case)
            pd.testing.assert_frame_equal(got, expected, check_exact=True)
            assert list(got.columns) == list(expected.columns)
        assert events_frame(store, types=NativeFrameSample)["count"].tolist()[0] == 2**40


def test_duckdb_events_frame_falls_back_for_payloads_duckdb_cannot_rebuild(tmp_path: Path) -> None:
    store, memory = native_history(tmp_path / "fallback.duckdb")
    with store:
        # task events hold enums and datetimes: built from StoredEvents, with the same result
        assert store.events_table(fields=lambda types: None) is None
        pd.testing.assert_frame_equal(events_frame(store), events_frame(memory), check_exact=True)
        tasks_only = events_frame(store, streams="task-*")
        assert set(tasks_only["event_type"]) == {"TaskCreated", "TaskAssigned", "TaskCompleted"}


def test_duckdb_events_frame_agrees_on_defaults_of_older_events_and_big_ints(tmp_path: Path) -> None:
    store, _ = native_history(tmp_path / "edge.duckdb")
    with store:
        # an event written before MoneyDeposited had its ``reference`` field: decoding fills the default
        older = tmp_path / "older.parquet"
        table = bulk.events_to_arrow(
            [
                StoredEvent(
                    **{
                        **msgspec.structs.asdict(store.read_all()[2]),
                        "stream_id": "old",
                        "version": 1,
                        "event_id": uuid.uuid4(),
                    }
                )
            ]
        )
        assert table.column("event_type")[0].as_py() == "MoneyDeposited"
        pq.write_table(table.set_column(5, "payload", pa.array(['{"amount": 7}'])), older)
        store.import_file(older)
        store.append([EventToWrite("sample-3", NativeFrameSample(ratio=1.0, flag=True, count=2**63 + 5))])
        memory = MemoryStore()
        memory.import_events(store.read_all())
        deposits = events_frame(store, types="MoneyDeposited")
        pd.testing.assert_frame_equal(
            deposits, events_frame(memory, types="MoneyDeposited"), check_exact=True
        )
        assert deposits["reference"].tolist()[-1] == ""
        # an unsigned 64-bit int does not fit the native int64 column: the Python path answers
        samples = events_frame(store, types=NativeFrameSample)
        pd.testing.assert_frame_equal(
            samples, events_frame(memory, types=NativeFrameSample), check_exact=True
        )
        assert samples["count"].tolist()[-1] == float(2**63 + 5)  # float64: other rows have no count


def test_postgres_events_table_leaves_a_gap_in_the_log_to_read_all(pg_url: str, pg_schema: str) -> None:
    """A position drawn by a writer that never committed is a gap below the head: the columnar path
    cannot tell it from a writer still in flight, so it answers None and ``events_frame`` takes
    ``read_all``, which settles gaps; the frame is the same as without the gap."""
    import psycopg

    with PostgresStore(pg_url, schema=pg_schema) as store:
        store.append([EventToWrite("account-1", banking.MoneyDeposited(amount=1))])
        assert store.events_table() is not None
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"SELECT nextval('\"{pg_schema}\".positions')")  # a writer that rolled back
        store.append([EventToWrite("account-1", banking.MoneyDeposited(amount=2))])
        assert store.head() == 3
        assert store.events_table() is None
        assert store.events_table(until=1) is not None  # below the gap: columnar
        frame = events_frame(store)
        assert frame["position"].tolist() == [1, 3] and frame["amount"].tolist() == [1, 2]
