"""Banking: accounts, deposits, withdrawals and transfers that touch two accounts atomically.

Amounts are integers (cents) so that totals are exact. Each account is a stream ``account-<id>``.

The account lifecycle of the manual's banking example is here too: an account can be frozen (no money
leaves it until it is unfrozen), closed (only when empty; nothing moves in or out afterwards), and
opened with a daily limit on the money that leaves it (withdrawals and outgoing transfers, counted per
UTC day of the events' ``recorded_at``). Accounts opened without a limit have none, so workloads that
never use these rules behave as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from eventcore_lab import Command, Event, EventToWrite, StoredEvent, emit, require, stream
from eventcore_lab.core.command import CommandContext
from eventcore_lab.errors import BusinessRuleViolation


def account_stream(account_id: str | int) -> str:
    return f"account-{account_id}"


class AccountOpened(Event):
    registration = "on_first_use"
    owner: str
    initial_balance: int = 0
    daily_limit: int | None = None  # cents that may leave the account per UTC day; None: no limit


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


class AccountFrozen(Event):
    registration = "on_first_use"
    reason: str = ""


class AccountUnfrozen(Event):
    registration = "on_first_use"
    reason: str = ""


class AccountClosed(Event):
    registration = "on_first_use"
    reason: str = ""


@dataclass
class Account:
    exists: bool = False
    owner: str = ""
    balance: int = 0
    frozen: bool = False
    closed: bool = False
    daily_limit: int | None = None
    sent_by_day: dict[date, int] = field(default_factory=dict)  # money out per UTC day

    def sent_on(self, day: date) -> int:
        return self.sent_by_day.get(day, 0)


def apply_to_accounts(accounts: dict[str, Account], event: StoredEvent) -> dict[str, Account]:
    """Fold one account event into a dict of accounts keyed by stream id (shared by the commands)."""
    account = accounts.setdefault(event.stream_id, Account())
    match event.payload:
        case AccountOpened(owner=owner, initial_balance=initial, daily_limit=limit):
            account.exists, account.owner, account.balance = True, owner, initial
            account.daily_limit = limit
        case MoneyDeposited(amount=amount):
            account.balance += amount
        case MoneyWithdrawn(amount=amount):
            account.balance -= amount
            _count_sent(account, event, amount)
        case MoneyTransferred(from_account=source, amount=amount):
            outgoing = source == event.stream_id
            account.balance += -amount if outgoing else amount
            if outgoing:
                _count_sent(account, event, amount)
        case AccountFrozen():
            account.frozen = True
        case AccountUnfrozen():
            account.frozen = False
        case AccountClosed():
            account.closed = True
    return accounts


def _count_sent(account: Account, event: StoredEvent, amount: int) -> None:
    day = event.recorded_at.date()
    account.sent_by_day[day] = account.sent_on(day) + amount


def _may_send(account: Account, stream_id: str, amount: int, ctx: CommandContext) -> None:
    """The lifecycle rules on money leaving an account: open, not frozen, within its daily limit."""
    _open(account, stream_id)
    if account.frozen:
        raise BusinessRuleViolation(f"account {stream_id} is frozen")
    if account.daily_limit is not None:
        today = ctx.now.date()
        sent = account.sent_on(today)
        if sent + amount > account.daily_limit:
            raise BusinessRuleViolation(
                f"daily limit exceeded on {stream_id}: limit {account.daily_limit}, attempted {amount}, "
                f"already sent today {sent}"
            )


def _open(account: Account, stream_id: str) -> None:
    if account.closed:
        raise BusinessRuleViolation(f"account {stream_id} is closed")


class _AccountCommand(Command[dict[str, Account]]):
    def initial_state(self) -> dict[str, Account]:
        return {}

    def apply(self, state: dict[str, Account], event: StoredEvent) -> dict[str, Account]:
        return apply_to_accounts(state, event)


class OpenAccount(_AccountCommand):
    account: str = stream()
    owner: str
    initial_balance: int = 0
    daily_limit: int | None = None

    def handle(self, state: dict[str, Account], ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.initial_balance >= 0, "initial balance cannot be negative")
        require(self.owner.strip(), "an account needs an owner")
        require(self.daily_limit is None or self.daily_limit > 0, "a daily limit must be positive")
        require(not _account(state, self.account).exists, f"account {self.account} already exists")
        opened = AccountOpened(
            owner=self.owner, initial_balance=self.initial_balance, daily_limit=self.daily_limit
        )
        return [emit(self.account, opened)]


class Deposit(_AccountCommand):
    account: str = stream()
    amount: int
    reference: str = ""

    def handle(self, state: dict[str, Account], ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.amount > 0, "deposit amount must be positive")
        _open_account(state, self.account)  # a frozen account still receives money; a closed one does not
        return [emit(self.account, MoneyDeposited(amount=self.amount, reference=self.reference))]


class Withdraw(_AccountCommand):
    account: str = stream()
    amount: int
    reference: str = ""

    def handle(self, state: dict[str, Account], ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.amount > 0, "withdrawal amount must be positive")
        account = _account(state, self.account)
        require(account.exists, f"account {self.account} does not exist")
        _may_send(account, self.account, self.amount, ctx)
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
        _may_send(source, self.from_account, self.amount, ctx)
        _open(target, self.to_account)
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


def _open_account(state: dict[str, Account], stream_id: str) -> Account:
    """The account of ``stream_id``, refused when it does not exist or is closed."""
    account = _account(state, stream_id)
    require(account.exists, f"account {stream_id} does not exist")
    _open(account, stream_id)
    return account


class FreezeAccount(_AccountCommand):
    """Stop money leaving an account (deposits still arrive), e.g. while fraud is investigated."""

    account: str = stream()
    reason: str = ""

    def handle(self, state: dict[str, Account], ctx: CommandContext) -> Sequence[EventToWrite]:
        account = _open_account(state, self.account)
        require(not account.frozen, f"account {self.account} is already frozen")
        return [emit(self.account, AccountFrozen(reason=self.reason))]


class UnfreezeAccount(_AccountCommand):
    account: str = stream()
    reason: str = ""

    def handle(self, state: dict[str, Account], ctx: CommandContext) -> Sequence[EventToWrite]:
        account = _open_account(state, self.account)
        require(account.frozen, f"account {self.account} is not frozen")
        return [emit(self.account, AccountUnfrozen(reason=self.reason))]


class CloseAccount(_AccountCommand):
    """Close an empty account for good: afterwards no money moves in or out."""

    account: str = stream()
    reason: str = ""

    def handle(self, state: dict[str, Account], ctx: CommandContext) -> Sequence[EventToWrite]:
        account = _open_account(state, self.account)
        if account.balance != 0:
            raise BusinessRuleViolation(
                f"account {self.account} still holds {account.balance}; empty it before closing"
            )
        return [emit(self.account, AccountClosed(reason=self.reason))]


COMMANDS = (OpenAccount, Deposit, Withdraw, TransferMoney)
EVENTS = (AccountOpened, MoneyDeposited, MoneyWithdrawn, MoneyTransferred)
#: The account lifecycle (freeze, unfreeze, close); kept apart so the four core commands stay the
#: short example the early chapters draw.
LIFECYCLE_COMMANDS = (FreezeAccount, UnfreezeAccount, CloseAccount)
LIFECYCLE_EVENTS = (AccountFrozen, AccountUnfrozen, AccountClosed)
