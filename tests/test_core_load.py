"""``load``: folded state outside a command, and exactly what it reflects."""

from __future__ import annotations

import pytest

from eventcore_lab import EventToWrite, Executor, ExpectedVersion, MemoryStore
from eventcore_lab.core.load import load
from eventcore_lab.errors import InvalidArgument, VersionConflict
from eventcore_lab.examples.banking import Deposit, MoneyDeposited, OpenAccount


def test_load_with_a_command_reads_its_own_streams_and_folds_like_the_executor() -> None:
    store = MemoryStore()
    executor = Executor(store)
    executor.execute(OpenAccount("account-1", "ann", 100))
    executor.execute(Deposit("account-1", 20))
    loaded = load(store, Deposit("account-1", 1))
    assert loaded.state["account-1"].balance == 120
    assert loaded.versions == {"account-1": 2}
    assert loaded.position == 2 and loaded.events == 2
    assert loaded.query is None and loaded.condition is None
    assert loaded.expected == {"account-1": ExpectedVersion.exact(2)}


def test_load_with_a_function_over_named_streams_and_a_guarded_write() -> None:
    store = MemoryStore()
    store.append(
        [
            EventToWrite("a", MoneyDeposited(amount=5)),
            EventToWrite("b", MoneyDeposited(amount=7)),
            EventToWrite("a", MoneyDeposited(amount=1)),
        ]
    )
    loaded = load(store, lambda total, e: total + e.payload.amount, initial=0, streams=["a", "b"])
    assert (loaded.state, loaded.versions, loaded.position) == (13, {"a": 2, "b": 1}, 3)
    only_b = load(store, lambda seen, e: [*seen, e.position], initial=[], streams="b")
    assert only_b.state == [2] and only_b.versions == {"b": 1}
    # the expectations guard a write decided on the loaded state
    store.append([EventToWrite("b", MoneyDeposited(amount=1))])
    with pytest.raises(VersionConflict):
        store.append([EventToWrite("a", MoneyDeposited(amount=1))], loaded.expected)


def test_load_of_nothing_is_the_initial_state() -> None:
    loaded = load(MemoryStore(), lambda s, e: s + 1, initial=0, streams=["none-yet"])
    assert (loaded.state, loaded.versions, loaded.position, loaded.events) == (0, {"none-yet": 0}, 0, 0)


def test_load_refuses_a_query_that_is_not_a_query() -> None:
    with pytest.raises(InvalidArgument, match="must be a Query"):
        load(MemoryStore(), lambda s, e: s, query="course:7")  # type: ignore[arg-type]
