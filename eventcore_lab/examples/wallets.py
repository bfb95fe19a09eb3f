"""Wallets that record each payment once, on the payee's stream: a domain whose balances span streams.

A payment is written as one :class:`PaymentCredited` event on the *payee's* wallet stream; nothing is
written to the payer's stream. So the money a wallet has spent lives on *other* wallets' streams, and a
payer's balance depends on every wallet of the group. :class:`Pay` reads them all, so its balance check is
guarded by the version of each of them. :class:`PayFast` reads only the payer and the payee: it looks
right, passes every single-payment test, and lets a wallet overspend once an earlier payment of the same
payer sits on a third wallet. The explorer tutorial uses the pair to show a counterexample and a proof.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..core.command import Command, CommandContext, emit, require, stream
from ..core.events import EventToWrite, StoredEvent
from ..core.registry import Event


def wallet_stream(owner: str) -> str:
    return f"wallet-{owner}"


class WalletFunded(Event):
    """Money entering the group from outside (a top-up), on the funded wallet's stream."""

    registration = "on_first_use"

    amount: int


class PaymentCredited(Event):
    """A payment, stored once on the payee's stream; ``payer`` is the paying wallet's stream id."""

    registration = "on_first_use"

    payer: str
    amount: int


def fold_balances(balances: dict[str, int], event: StoredEvent) -> dict[str, int]:
    """One event's effect on the balances of every wallet it touches (a payment moves money two ways)."""
    match event.payload:
        case WalletFunded(amount=amount):
            balances[event.stream_id] = balances.get(event.stream_id, 0) + amount
        case PaymentCredited(payer=payer, amount=amount):
            balances[event.stream_id] = balances.get(event.stream_id, 0) + amount
            balances[payer] = balances.get(payer, 0) - amount
    return balances


def balances(events: Iterable[StoredEvent]) -> dict[str, int]:
    """Every wallet's balance after ``events`` (any order: the fold only adds and subtracts)."""
    result: dict[str, int] = {}
    for event in events:
        fold_balances(result, event)
    return result


def books_balance(store: Any, funded: int | None = None) -> bool:
    """The group's invariant: no wallet is below zero and, given ``funded``, no money appeared or vanished.

    Raises AssertionError naming the wallet or the totals, so a counterexample says what broke.
    """
    events = store.read_all()
    money = balances(events)
    for wallet, balance in sorted(money.items()):
        assert balance >= 0, f"{wallet} is overdrawn: balance {balance}"
    if funded is not None:
        total = sum(money.values())
        assert total == funded, f"the wallets hold {total} in total, but {funded} was paid in"
    return True


class _WalletCommand(Command[dict[str, int]]):
    def initial_state(self) -> dict[str, int]:
        return {}

    def apply(self, state: dict[str, int], event: StoredEvent) -> dict[str, int]:
        return fold_balances(state, event)


class Fund(_WalletCommand):
    """Pay money into a wallet from outside the group."""

    wallet: str = stream()
    amount: int

    def handle(self, state: dict[str, int], ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.amount > 0, "a top-up must be positive")
        return [emit(self.wallet, WalletFunded(amount=self.amount))]


class Pay(_WalletCommand):
    """A payment that reads every wallet of the group, because any of them may hold the payer's spending."""

    payer: str = stream()
    payee: str = stream()
    group: tuple[str, ...] = stream()
    amount: int

    def handle(self, state: dict[str, int], ctx: CommandContext) -> Sequence[EventToWrite]:
        return _pay(self.payer, self.payee, self.amount, state)


class PayFast(_WalletCommand):
    """The same rule reading only the payer and the payee: payments recorded on third wallets are missed."""

    payer: str = stream()
    payee: str = stream()
    amount: int

    def handle(self, state: dict[str, int], ctx: CommandContext) -> Sequence[EventToWrite]:
        return _pay(self.payer, self.payee, self.amount, state)


def _pay(payer: str, payee: str, amount: int, state: Mapping[str, int]) -> list[EventToWrite]:
    require(amount > 0, "a payment must be positive")
    require(payer != payee, "a wallet cannot pay itself")
    available = state.get(payer, 0)
    require(available >= amount, f"{payer} has {available}, cannot pay {amount}")
    return [emit(payee, PaymentCredited(payer=payer, amount=amount))]


COMMANDS = (Fund, Pay, PayFast)
EVENTS = (WalletFunded, PaymentCredited)
