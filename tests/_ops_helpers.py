"""Helpers shared by the operations tests: a store wrapper that races commands, and a small history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eventcore_lab.core.events import EventToWrite, ExpectedVersion, Metadata
from eventcore_lab.examples.banking import Deposit, MoneyDeposited, OpenAccount, TransferMoney


class Interloper:
    """Wraps a store; for the next ``races`` appends, another writer first appends to a stream the
    command read, so the command's version check fails once (a real conflict, through the public API)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.races = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def append(
        self, events: Sequence[EventToWrite], expected: Mapping[str, ExpectedVersion] | None = None
    ) -> Any:
        if self.races and expected:
            self.races -= 1
            stream = next(iter(expected))
            self.inner.append([EventToWrite(stream, MoneyDeposited(amount=1, reference="race"))])
        return self.inner.append(events, expected)


def bank_history(executor: Any, accounts: int = 5, rounds: int = 4, *, open_accounts: bool = True) -> int:
    """Open ``accounts`` accounts and move money around; return the number of commands run."""
    count = 0
    for a in range(accounts if open_accounts else 0):
        executor.execute(OpenAccount(f"account-{a}", owner=f"owner {a}", initial_balance=1000))
        count += 1
    for r in range(rounds):
        for a in range(accounts):
            meta = Metadata(correlation_id=f"round-{r}-{a}", user_id="ops", custom={"round": r})
            executor.execute(Deposit(f"account-{a}", amount=10 + r, reference=f"r{r}"), metadata=meta)
            executor.execute(TransferMoney(f"account-{a}", f"account-{(a + 1) % accounts}", amount=5))
            count += 2
    return count
