"""The benchmark domain, written twice: as eventcore-lab commands and as ``eventsourcing`` aggregates.

Both sides model the same bank account with the same events (opened, credited, debited) and the same
rules, so that a pair of workloads does the same work:

- *create*: a new account with two events (opened, credited) in one atomic write;
- *update*: read one account, check it exists, write one credited event;
- *transfer*: read two accounts, check both and the balance, write a debit and a credit atomically;
- *hot read*: read one account and a shared "rates" stream of 50 events, write one credit to the account.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventcore_lab import Command, Event, EventToWrite, StoredEvent, emit, require, stream
from eventcore_lab.core.command import CommandContext

# -- eventcore-lab ----------------------------------------------------------------------------------


class BenchOpened(Event):
    owner: str


class BenchCredited(Event):
    amount: int


class BenchDebited(Event):
    amount: int


class BenchRateSet(Event):
    rate: int


def _balance(state: int | None, event: StoredEvent) -> int | None:
    payload = event.payload
    if type(payload) is BenchCredited:
        return (state or 0) + payload.amount
    if type(payload) is BenchDebited:
        return (state or 0) - payload.amount
    if type(payload) is BenchOpened:
        return 0
    return state


class _Single(Command[Any]):
    def initial_state(self) -> int | None:
        return None  # None: the account does not exist

    def apply(self, state: int | None, event: StoredEvent) -> int | None:
        return _balance(state, event)


class Open(_Single):
    """Create: a new stream with two events."""

    account: str = stream()
    amount: int = 1

    def handle(self, state: int | None, ctx: CommandContext) -> Sequence[EventToWrite]:
        require(state is None, f"account {self.account} already exists")
        return [
            emit(self.account, BenchOpened(owner="bench")),
            emit(self.account, BenchCredited(self.amount)),
        ]


class Credit(_Single):
    """Update: one existing stream, one event."""

    account: str = stream()
    amount: int = 1

    def handle(self, state: int | None, ctx: CommandContext) -> Sequence[EventToWrite]:
        require(state is not None, f"account {self.account} does not exist")
        return [emit(self.account, BenchCredited(self.amount))]


class Transfer(Command[dict[str, int]]):
    """Transfer: two streams read and written atomically."""

    source: str = stream()
    target: str = stream()
    amount: int = 1

    def initial_state(self) -> dict[str, int]:
        return {}

    def apply(self, state: dict[str, int], event: StoredEvent) -> dict[str, int]:
        balance = _balance(state.get(event.stream_id), event)
        if balance is not None:
            state[event.stream_id] = balance
        return state

    def handle(self, state: dict[str, int], ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.source in state and self.target in state, "both accounts must exist")
        require(state[self.source] >= self.amount, f"insufficient funds in {self.source}")
        return [emit(self.source, BenchDebited(self.amount)), emit(self.target, BenchCredited(self.amount))]


class CreditAtRate(Command[tuple[int | None, int]]):
    """Hot read: the account and a shared read-only ``rates`` stream; writes only to the account."""

    account: str = stream()
    rates: str = stream()
    amount: int = 1

    def initial_state(self) -> tuple[int | None, int]:
        return (None, 0)

    def apply(self, state: tuple[int | None, int], event: StoredEvent) -> tuple[int | None, int]:
        if type(event.payload) is BenchRateSet:
            return (state[0], event.payload.rate)
        return (_balance(state[0], event), state[1])

    def handle(self, state: tuple[int | None, int], ctx: CommandContext) -> Sequence[EventToWrite]:
        require(state[0] is not None, f"account {self.account} does not exist")
        require(state[1] > 0, "no rate set")
        return [emit(self.account, BenchCredited(self.amount * state[1]))]
