"""Projections on the durable stores: the same answers as on memory, and checkpoints kept in the store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_projections_helpers import AccountTable, Balances, run_history

from eventcore_lab import MemoryStore
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
