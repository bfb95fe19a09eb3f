"""Projection-state snapshots: resuming from one gives the state a full replay gives, for random histories
and snapshot points; a snapshot of a changed fold, or one that does not fit the store, is ignored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventcore_lab import Event, EventToWrite, MemoryStore
from eventcore_lab.core.errors import InvalidFormat
from eventcore_lab.core.events import StoredEvent
from eventcore_lab.projections.base import Projection, fold, handles
from eventcore_lab.projections.runner import ProjectionRunner
from eventcore_lab.snapshots import (
    DuckDBSnapshots,
    MemorySnapshots,
    PostgresSnapshots,
    ProjectionSnapshots,
    projection_key,
)
from eventcore_lab.stores.duckdb import DuckDBStore
from eventcore_lab.stores.postgres import PostgresStore


class Credited(Event):
    registration = "on_first_use"
    event_type = "projection_snapshots.Credited"
    amount: int


class Debited(Event):
    registration = "on_first_use"
    event_type = "projection_snapshots.Debited"
    amount: int


class Noted(Event):
    registration = "on_first_use"
    event_type = "projection_snapshots.Noted"
    text: str


class Balances(Projection):
    def __init__(self) -> None:
        self.balances: dict[str, int] = {}
        self.history: list[int] = []  # order matters: a replay that skips or repeats an event shows

    @handles(Credited)
    def _credited(self, event: StoredEvent) -> None:
        self.balances[event.stream_id] = self.balances.get(event.stream_id, 0) + event.payload.amount
        self.history.append(event.position)

    @handles(Debited)
    def _debited(self, event: StoredEvent) -> None:
        self.balances[event.stream_id] = self.balances.get(event.stream_id, 0) - event.payload.amount
        self.history.append(-event.position)


class ChangedBalances(Balances):
    """The same name and state, another fold: debits count twice."""

    name = "balances"

    @handles(Debited)
    def _debited(self, event: StoredEvent) -> None:
        self.balances[event.stream_id] = self.balances.get(event.stream_id, 0) - 2 * event.payload.amount
        self.history.append(-event.position)


def _writes(spec: list[tuple[int, int, int]]) -> list[EventToWrite]:
    kinds = [lambda n: Credited(amount=n), lambda n: Debited(amount=n), lambda n: Noted(text=str(n))]
    return [EventToWrite(f"account-{account}", kinds[kind](amount)) for account, kind, amount in spec]


def _state(projection: Balances) -> tuple[dict[str, int], list[int]]:
    return projection.balances, projection.history


histories = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 2), st.integers(1, 50)), max_size=80)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    history=histories,
    every=st.integers(1, 12),
    batch_size=st.integers(1, 25),
    cuts=st.lists(st.integers(0, 80), min_size=1, max_size=4),
)
def test_state_with_snapshots_equals_state_without(
    history: list[tuple[int, int, int]], every: int, batch_size: int, cuts: list[int]
) -> None:
    """The history is written in parts; after each part a new runner (a restarted process: fresh
    projection, memory checkpoints) resumes from the snapshots and catches up."""
    store = MemoryStore()
    snapshots = ProjectionSnapshots(MemorySnapshots(), every=every)
    bounds = sorted({min(c, len(history)) for c in cuts} | {len(history)})
    start = 0
    for bound in bounds:
        if bound > start:
            store.append(_writes(history[start:bound]))
        start = bound
        runner = ProjectionRunner(store, Balances(), snapshots=snapshots, batch_size=batch_size)
        runner.run_until_caught_up()
        assert runner.position == store.head()
        assert _state(runner.projection) == _state(fold(Balances(), store.read_all()))
    if len([h for h in history if h[1] < 2]) >= every:
        assert snapshots.saved >= 1


def test_a_restarted_runner_replays_only_after_the_snapshot() -> None:
    store = MemoryStore()
    store.append(_writes([(n % 3, n % 2, n) for n in range(1, 501)]))
    snapshots = ProjectionSnapshots(MemorySnapshots(), every=100)
    first = ProjectionRunner(store, Balances(), snapshots=snapshots, batch_size=50)
    assert first.run_until_caught_up() == 500 and snapshots.saved == 5
    store.append(_writes([(1, 0, 7), (2, 1, 3)]))
    again = ProjectionRunner(store, Balances(), snapshots=snapshots)
    assert again.position == 500 and snapshots.hits == 1
    assert again.run_until_caught_up() == 2  # only the two new events were applied
    assert _state(again.projection) == _state(fold(Balances(), store.read_all()))


def test_a_snapshot_of_a_changed_fold_is_ignored() -> None:
    assert projection_key(Balances) != projection_key(ChangedBalances)
    store = MemoryStore()
    store.append(_writes([(1, 0, 10), (1, 1, 3), (2, 0, 5)]))
    kept = MemorySnapshots()
    ProjectionRunner(store, Balances(), snapshots=ProjectionSnapshots(kept, every=1)).run_until_caught_up()
    changed = ProjectionSnapshots(kept, every=1)
    runner = ProjectionRunner(store, ChangedBalances(), snapshots=changed)
    assert runner.position == 0 and changed.misses == 1 and changed.hits == 0
    runner.run_until_caught_up()
    assert runner.projection.balances == {"account-1": 4, "account-2": 5}  # the new fold, from scratch

    class Bumped(Balances):
        fold_version = 2

    assert projection_key(Bumped) != projection_key(Balances)


def test_a_snapshot_that_does_not_fit_the_store_is_ignored() -> None:
    kept = MemorySnapshots()
    original = MemoryStore()
    original.append(_writes([(1, 0, 10), (1, 0, 20), (2, 0, 5)]))
    ProjectionRunner(original, Balances(), snapshots=ProjectionSnapshots(kept, every=1)).run_until_caught_up()
    other = MemoryStore()  # another history of the same length: the ids differ
    other.append(_writes([(3, 0, 1), (3, 0, 2), (3, 0, 3)]))
    shorter = MemoryStore()  # a history shorter than the snapshot's position
    shorter.append(_writes([(1, 0, 10)]))
    for store in (other, shorter):
        snapshots = ProjectionSnapshots(kept, every=1)
        runner = ProjectionRunner(store, Balances(), snapshots=snapshots)
        assert runner.position == 0 and snapshots.rejected == 1
        runner.run_until_caught_up()
        assert _state(runner.projection) == _state(fold(Balances(), store.read_all()))


def test_bad_settings_are_refused() -> None:
    for every in (0, -1, True, 1.5):
        with pytest.raises(InvalidFormat):
            ProjectionSnapshots(MemorySnapshots(), every=every)  # type: ignore[arg-type]
    with pytest.raises(InvalidFormat):
        ProjectionSnapshots(object(), every=1)  # type: ignore[arg-type]


@pytest.fixture(params=["duckdb", "postgres"])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    if request.param == "duckdb":
        with DuckDBStore(tmp_path / "events.duckdb") as duck:
            yield duck, DuckDBSnapshots(duck)
    else:
        url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
        with PostgresStore(url, schema=schema) as pg:
            pg.migrate()
            snapshots = PostgresSnapshots(pg)
            yield pg, snapshots


def test_snapshots_in_the_stores_own_database(durable: tuple[Any, Any]) -> None:
    store, kept = durable
    store.append(_writes([(n % 4, n % 3, n) for n in range(1, 301)]))
    first = ProjectionSnapshots(kept, every=50)
    ProjectionRunner(store, Balances(), snapshots=first, batch_size=40).run_until_caught_up()
    assert first.saved >= 2  # 200 handled events (Noted is not read), every 50, in batches of 40
    store.append(_writes([(1, 0, 1)]))
    second = ProjectionSnapshots(kept, every=50)
    runner = ProjectionRunner(store, Balances(), snapshots=second)
    assert second.hits == 1 and runner.position > 0
    runner.run_until_caught_up()
    assert _state(runner.projection) == _state(fold(Balances(), store.read_all()))
