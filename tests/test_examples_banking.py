"""The banking example's account lifecycle: freeze, unfreeze, close, and a daily limit on money out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eventcore_lab import Executor, MemoryStore
from eventcore_lab.core.errors import BusinessRuleViolation, ValidationFailed
from eventcore_lab.examples import banking
from eventcore_lab.examples.banking import (
    CloseAccount,
    Deposit,
    FreezeAccount,
    OpenAccount,
    TransferMoney,
    UnfreezeAccount,
    Withdraw,
)

A, B = banking.account_stream("a"), banking.account_stream("b")


def bank(**limit: int) -> tuple[MemoryStore, Executor]:
    store = MemoryStore()
    executor = Executor(store)
    executor.execute(OpenAccount(A, "ann", 1_000, **limit))
    executor.execute(OpenAccount(B, "bob", 0))
    return store, executor


def test_a_frozen_account_receives_money_but_sends_none_until_unfrozen() -> None:
    store, executor = bank()
    executor.execute(FreezeAccount(A, "fraud check"))
    executor.execute(Deposit(A, 5))  # money still arrives
    for command in (Withdraw(A, 10), TransferMoney(A, B, 10)):
        with pytest.raises(BusinessRuleViolation, match=f"account {A} is frozen"):
            executor.execute(command)
    with pytest.raises(ValidationFailed, match="already frozen"):
        executor.execute(FreezeAccount(A))
    head = store.head()
    executor.execute(UnfreezeAccount(A))
    executor.execute(TransferMoney(A, B, 10))
    assert store.head() == head + 1 + 2  # the unfreeze, then the transfer on both accounts
    with pytest.raises(ValidationFailed, match="is not frozen"):
        executor.execute(UnfreezeAccount(A))


def test_only_an_empty_account_closes_and_then_nothing_moves() -> None:
    store, executor = bank()
    with pytest.raises(BusinessRuleViolation, match="still holds 1000; empty it before closing"):
        executor.execute(CloseAccount(A))
    executor.execute(CloseAccount(B, "customer left"))
    for command in (Deposit(B, 1), Withdraw(B, 1), TransferMoney(A, B, 1), TransferMoney(B, A, 1)):
        with pytest.raises(BusinessRuleViolation, match=f"account {B} is closed"):
            executor.execute(command)
    for command in (CloseAccount(B), FreezeAccount(B)):
        with pytest.raises(BusinessRuleViolation, match="is closed"):
            executor.execute(command)
    assert [e.event_type for e in store.read_stream(B)] == ["AccountOpened", "AccountClosed"]


def test_the_daily_limit_counts_withdrawals_and_transfers_out_per_day() -> None:
    _, executor = bank(daily_limit=500)
    executor.execute(Withdraw(A, 300))
    executor.execute(TransferMoney(A, B, 150))
    executor.execute(TransferMoney(B, A, 100))  # money in does not free up the limit
    with pytest.raises(BusinessRuleViolation, match="limit 500, attempted 100, already sent today 450"):
        executor.execute(Withdraw(A, 100))
    executor.execute(Withdraw(A, 50))  # exactly up to the limit is allowed
    with pytest.raises(ValidationFailed, match="daily limit must be positive"):
        executor.execute(OpenAccount(banking.account_stream("c"), "cy", 0, daily_limit=0))


def test_the_daily_limit_starts_again_the_next_day() -> None:
    now = [datetime(2024, 5, 1, 9, tzinfo=UTC)]

    def clock() -> datetime:  # one clock for the executor (today) and the store (recorded_at)
        return now[0]

    store = MemoryStore(clock=clock)
    executor = Executor(store, clock=clock)
    executor.execute(OpenAccount(A, "ann", 1_000, daily_limit=100))
    executor.execute(Withdraw(A, 100))
    with pytest.raises(BusinessRuleViolation, match="daily limit exceeded"):
        executor.execute(Withdraw(A, 1))
    now[0] += timedelta(days=1)
    executor.execute(Withdraw(A, 100))  # a new day, a new limit
    assert [e.payload.amount for e in store.read_stream(A)[1:]] == [100, 100]
