"""The benchmark domain as ``eventsourcing`` aggregates (see ``domain.py`` for the eventcore-lab side).

A module of its own, imported only when the peer runs: ``eventsourcing`` resolves aggregate classes by
module and name when it rebuilds them, so they must live at module level.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event


class Account(Aggregate):
    @event("Opened")
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.balance = 0

    @event("Credited")
    def credit(self, amount: int) -> None:
        self.balance += amount

    @event("Debited")
    def debit(self, amount: int) -> None:
        self.balance -= amount


class Rates(Aggregate):
    @event("Created")
    def __init__(self) -> None:
        self.rate = 0

    @event("RateSet")
    def set_rate(self, rate: int) -> None:
        self.rate = rate


class Bank(Application[Any]):
    """A plain application: its repository and ``save`` are what the workloads measure."""
