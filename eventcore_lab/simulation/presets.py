"""Ready-made workloads over the example domains, for notebooks, tests and benchmarks.

Makers are module-level functions so that workloads can be sent to worker processes.
"""

from __future__ import annotations

from ..core.events import StoredEvent
from ..examples import banking
from .workload import Draw, FixedKeys, KeyChoice, Op, Uniform, Workload, Zipf


def make_deposit(draw: Draw) -> banking.Deposit:
    return banking.Deposit(draw.key(), draw.rng.randint(1, 100))


def make_withdrawal(draw: Draw) -> banking.Withdraw:
    return banking.Withdraw(draw.key(), draw.rng.randint(1, 150))


def make_transfer(draw: Draw) -> banking.TransferMoney:
    source, target = draw.keys(2)
    return banking.TransferMoney(source, target, draw.rng.randint(1, 200))


def banking_workload(
    *,
    accounts: int = 20,
    clients: int = 50,
    commands: int | None = 1000,
    duration: float | None = None,
    keys: str = "uniform",
    zipf_s: float = 1.2,
    initial_balance: int = 1_000,
    think_time: float | tuple[float, float] = 0.0,
    transfers: float = 6,
    deposits: float = 2,
    withdrawals: float = 2,
    seed: int = 0,
) -> Workload:
    """Accounts opened up front with ``initial_balance`` each, then a mix of transfers, deposits and
    withdrawals; ``keys`` is ``"uniform"``, ``"zipf"`` (a few hot accounts) or ``"fixed"`` (two accounts
    per client; give ``accounts >= 2 * clients`` for a run without shared accounts)."""
    ids = [banking.account_stream(i) for i in range(accounts)]
    choices: dict[str, KeyChoice] = {
        "uniform": Uniform(ids),
        "zipf": Zipf(ids, zipf_s),
        "fixed": FixedKeys(ids, per_client=2),
    }
    if keys not in choices:
        from ..core.errors import InvalidFormat

        raise InvalidFormat(f"keys must be one of {', '.join(choices)}, got {keys!r}")
    return Workload(
        mix=[
            Op("transfer", make_transfer, transfers),
            Op("deposit", make_deposit, deposits),
            Op("withdraw", make_withdrawal, withdrawals),
        ],
        keys=choices[keys],
        clients=clients,
        commands=commands,
        duration=duration,
        think_time=think_time,
        seed=seed,
        setup=[banking.OpenAccount(a, f"owner {a}", initial_balance) for a in ids],
    )


def bank_total(events: list[StoredEvent]) -> int:
    """Money in the bank according to a log: opening balances plus deposits minus withdrawals.

    Transfers move money without changing the total, so ``sum of balances == bank_total`` is the
    conservation invariant.
    """
    total = 0
    for event in events:
        match event.payload:
            case banking.AccountOpened(initial_balance=amount) | banking.MoneyDeposited(amount=amount):
                total += amount
            case banking.MoneyWithdrawn(amount=amount):
                total -= amount
    return total


def balances(events: list[StoredEvent]) -> dict[str, int]:
    """Every account's balance, folded from a log with the domain's own fold."""
    accounts: dict[str, banking.Account] = {}
    for event in events:
        banking.apply_to_accounts(accounts, event)
    return {sid: a.balance for sid, a in accounts.items()}
