"""Shared pieces of the projection tests: domain projections and random histories run by the executor."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from eventcore_lab import Executor, RetryConfig, StoredEvent
from eventcore_lab.errors import CommandError
from eventcore_lab.examples import banking, tasks
from eventcore_lab.projections import FrameProjection, Projection, handles


class Balances(Projection):
    """Account balances and event counts; deterministic, so equal histories give equal states."""

    def __init__(self) -> None:
        self.balances: dict[str, int] = {}
        self.seen: list[int] = []  # every position applied, to check exactly-once

    def state(self) -> tuple[dict[str, int], list[int]]:
        return dict(self.balances), list(self.seen)

    @handles(banking.AccountOpened)
    def _opened(self, event: StoredEvent) -> None:
        self.balances[event.stream_id] = event.payload.initial_balance
        self.seen.append(event.position)

    @handles(banking.MoneyDeposited)
    def _deposited(self, event: StoredEvent) -> None:
        self.balances[event.stream_id] += event.payload.amount
        self.seen.append(event.position)

    @handles(banking.MoneyWithdrawn)
    def _withdrawn(self, event: StoredEvent) -> None:
        self.balances[event.stream_id] -= event.payload.amount
        self.seen.append(event.position)

    @handles(banking.MoneyTransferred)
    def _transferred(self, event: StoredEvent) -> None:
        e = event.payload
        sign = -1 if e.from_account == event.stream_id else 1
        self.balances[event.stream_id] += sign * e.amount
        self.seen.append(event.position)


class AccountTable(FrameProjection):
    tables = {"accounts": "account"}  # noqa: RUF012

    @handles(banking.AccountOpened)
    def _opened(self, event: StoredEvent) -> None:
        self.upsert(
            "accounts",
            event.stream_id,
            owner=event.payload.owner,
            balance=event.payload.initial_balance,
            events=1,
        )

    @handles(banking.MoneyDeposited, banking.MoneyWithdrawn, banking.MoneyTransferred)
    def _moved(self, event: StoredEvent) -> None:
        row = self.row("accounts", event.stream_id) or {"balance": 0, "events": 0}
        p = event.payload
        if isinstance(p, banking.MoneyDeposited):
            delta = p.amount
        elif isinstance(p, banking.MoneyWithdrawn):
            delta = -p.amount
        else:
            delta = -p.amount if p.from_account == event.stream_id else p.amount
        self.upsert("accounts", event.stream_id, balance=row["balance"] + delta, events=row["events"] + 1)


ACCOUNTS = [banking.account_stream(i) for i in range(4)]
USERS = ["alice", "bob", "carol"]
TASK_IDS = [f"t{i}" for i in range(5)]

bank_commands = st.one_of(
    st.builds(banking.OpenAccount, st.sampled_from(ACCOUNTS), st.just("owner"), st.integers(0, 100)),
    st.builds(banking.Deposit, st.sampled_from(ACCOUNTS), st.integers(1, 50)),
    st.builds(banking.Withdraw, st.sampled_from(ACCOUNTS), st.integers(1, 80)),
    st.builds(
        banking.TransferMoney, st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS), st.integers(1, 60)
    ),
)

task_commands = st.one_of(
    st.builds(
        tasks.CreateTask.new,
        st.sampled_from(TASK_IDS),
        st.just("A task"),
        st.just(""),
        st.sampled_from(USERS),
        priority=st.sampled_from(list(tasks.Priority)),
    ),
    st.builds(tasks.AssignTask.new, st.sampled_from(TASK_IDS), st.sampled_from(USERS), st.just("alice")),
    st.builds(tasks.CompleteTask.new, st.sampled_from(TASK_IDS), st.sampled_from([*USERS, "admin"])),
    st.builds(
        tasks.AddComment,
        st.sampled_from(TASK_IDS).map(tasks.task_stream),
        st.sampled_from(USERS),
        st.just("hi"),
    ),
    st.builds(
        tasks.ChangePriority,
        st.sampled_from(TASK_IDS).map(tasks.task_stream),
        st.sampled_from(list(tasks.Priority)),
        st.just("bob"),
    ),
)


def run_history(store: Any, commands: list[Any]) -> int:
    """Execute commands through the executor, ignoring the ones the domain refuses; return #accepted."""
    executor = Executor(store, retry=RetryConfig.none())
    accepted = 0
    for command in commands:
        try:
            executor.execute(command)
            accepted += 1
        except CommandError:
            pass
    return accepted
