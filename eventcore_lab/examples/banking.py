"""Banking: accounts, deposits, withdrawals and transfers that touch two accounts atomically.

Amounts are integers (cents) so that totals are exact. Each account is a stream ``account-<id>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eventcore_lab import Command, Event, EventToWrite, StoredEvent, emit, require, stream
from eventcore_lab.core.command import CommandContext


def account_stream(account_id: str | int) -> str:
    return f"account-{account_id}"


class AccountOpened(Event):
    registration = "on_first_use"
    owner: str
    initial_balance: int = 0


class MoneyDeposited(Event):
    registration = "on_first_use"
    amount: int
    reference: str = ""


class MoneyWithdrawn(Event):
    registration = "on_first_use"
    amount: int
    reference: str = ""


class MoneyTransferred(Event):
    """Written to both accounts of a transfer: a debit on ``from_account``, a credit on ``to_account``."""

    registration = "on_first_use"

    from_account: str
    to_account: str
    amount: int
    reference: str = ""


@dataclass
class Account:
    exists: bool = False
    owner: str = ""
    balance: int = 0


def apply_to_accounts(accounts: dict[str, Account], event: StoredEvent) -> dict[str, Account]:
    """Fold one account event into a dict of accounts keyed by stream id (shared by the commands)."""
    account = accounts.setdefault(event.stream_id, Account())
    match event.payload:
        case AccountOpened(owner=owner, initial_balance=initial):
            account.exists, account.owner, account.balance = True, owner, initial
        case MoneyDeposited(amount=amount):
            account.balance += amount
        case MoneyWithdrawn(amount=amount):
            account.balance -= amount
        case MoneyTransferred(from_account=source, amount=amount):
            account.balance += -amount if source == event.stream_id else amount
    return accounts


class _AccountCommand(Command[dict[str, Account]]):
    def initial_state(self) -> dict[str, Account]:
        return {}

    def apply(self, state: dict[str, Account], event: StoredEvent) -> dict[str, Account]:
        return apply_to_accounts(state, event)


class OpenAccount(_AccountCommand):
    account: str = stream()
    owner: str
    initial_balance: int = 0

    def handle(self, state: dict[str, Account], ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.initial_balance >= 0, "initial balance cannot be negative")
        require(self.owner.strip(), "an account needs an owner")
        require(not _account(state, self.account).exists, f"account {self.account} already exists")
        return [emit(self.account, AccountOpened(owner=self.owner, initial_balance=self.initial_balance))]


class Deposit(_AccountCommand):
    account: str = stream()
    amount: int
    reference: str = ""

    def handle(self, state: dict[str, Account], ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.amount > 0, "deposit amount must be positive")
        require(_account(state, self.account).exists, f"account {self.account} does not exist")
        return [emit(self.account, MoneyDeposited(amount=self.amount, reference=self.reference))]


class Withdraw(_AccountCommand):
    account: str = stream()
    amount: int
    reference: str = ""

    def handle(self, state: dict[str, Account], ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.amount > 0, "withdrawal amount must be positive")
        account = _account(state, self.account)
        require(account.exists, f"account {self.account} does not exist")
        require(
            account.balance >= self.amount,
            f"insufficient funds in {self.account}: balance {account.balance}, requested {self.amount}",
        )
        return [emit(self.account, MoneyWithdrawn(amount=self.amount, reference=self.reference))]


class TransferMoney(_AccountCommand):
    """Move money between two accounts in one atomic write, checked against both accounts' versions."""

    from_account: str = stream()
    to_account: str = stream()
    amount: int
    reference: str = ""

    def handle(self, state: dict[str, Account], ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.amount > 0, "transfer amount must be positive")
        require(self.from_account != self.to_account, "cannot transfer to the same account")
        source, target = _account(state, self.from_account), _account(state, self.to_account)
        require(source.exists, f"account {self.from_account} does not exist")
        require(target.exists, f"account {self.to_account} does not exist")
        require(
            source.balance >= self.amount,
            f"insufficient funds in {self.from_account}: balance {source.balance}, requested {self.amount}",
        )
        event = MoneyTransferred(
            from_account=self.from_account,
            to_account=self.to_account,
            amount=self.amount,
            reference=self.reference,
        )
        return [emit(self.from_account, event), emit(self.to_account, event)]


def _account(state: dict[str, Account], stream_id: str) -> Account:
    return state.get(stream_id.strip()) or Account()


COMMANDS = (OpenAccount, Deposit, Withdraw, TransferMoney)
EVENTS = (AccountOpened, MoneyDeposited, MoneyWithdrawn, MoneyTransferred)
