"""The stateful test builder: a sound domain passes; a command that can overdraw is found and shrunk."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from eventcore_lab import EventToWrite, emit, require, stream
from eventcore_lab.core.command import CommandContext
from eventcore_lab.core.errors import InvalidFormat
from eventcore_lab.examples import banking
from eventcore_lab.simulation import balances, bank_total
from eventcore_lab.testing import stateful_test

ACCOUNTS = st.sampled_from(["account-1", "account-2"])
SETUP = [banking.OpenAccount("account-1", "ann", 100), banking.OpenAccount("account-2", "bob", 100)]
SOUND = {
    "deposit": st.builds(banking.Deposit, ACCOUNTS, st.integers(1, 100)),
    "withdraw": st.builds(banking.Withdraw, ACCOUNTS, st.integers(1, 300)),
    "transfer": st.builds(banking.TransferMoney, ACCOUNTS, ACCOUNTS, st.integers(1, 300)),
}
INVARIANTS = {
    "no account is overdrawn": lambda events: min(balances(events).values()) >= 0,
    "money is conserved": lambda events: sum(balances(events).values()) == bank_total(events),
}
QUICK = settings(max_examples=25, stateful_step_count=15, deadline=None, database=None, derandomize=True)


class CarelessWithdraw(banking._AccountCommand):
    """Deliberately broken: forgets the balance check, so it can overdraw."""

    account: str = stream()
    amount: int

    def handle(self, state: dict[str, banking.Account], ctx: CommandContext) -> Sequence[EventToWrite]:
        require(self.amount > 0, "withdrawal amount must be positive")
        return [emit(self.account, banking.MoneyWithdrawn(amount=self.amount))]


SoundBank = stateful_test(SOUND, INVARIANTS, setup=SETUP, name="SoundBank")
TestSoundBank = SoundBank.TestCase
TestSoundBank.settings = QUICK


def test_sound_bank_machine_ran_commands() -> None:
    run_state_machine_as_test(SoundBank, settings=QUICK)
    assert len(SoundBank.last_steps) > 0  # it really executed commands


def test_broken_command_is_found_and_shrunk() -> None:
    Broken = stateful_test(
        {**SOUND, "careless withdraw": st.builds(CarelessWithdraw, ACCOUNTS, st.integers(1, 300))},
        INVARIANTS,
        setup=SETUP,
        name="BrokenBank",
    )
    with pytest.raises(AssertionError, match="invariant 'no account is overdrawn' broken after") as info:
        run_state_machine_as_test(
            Broken,
            settings=settings(
                max_examples=300,
                stateful_step_count=20,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    shrunk = Broken.last_steps
    assert len(shrunk) <= 2, shrunk
    assert isinstance(shrunk[-1], CarelessWithdraw) and shrunk[-1].amount == 101  # the smallest overdraft
    assert "CarelessWithdraw(account=" in str(info.value)


def test_projection_is_passed_to_invariants() -> None:
    seen: list[object] = []
    machine = stateful_test(
        {"deposit": st.builds(banking.Deposit, ACCOUNTS, st.integers(1, 5))},
        {"records": lambda value: seen.append(value)},
        project=balances,
        setup=SETUP,
    )
    run_state_machine_as_test(
        machine, settings=settings(max_examples=3, stateful_step_count=3, database=None)
    )
    assert seen and all(isinstance(v, dict) and set(v) == {"account-1", "account-2"} for v in seen)


def test_bad_definitions_are_refused() -> None:
    with pytest.raises(InvalidFormat, match="at least one command"):
        stateful_test({}, INVARIANTS)
    with pytest.raises(InvalidFormat, match="at least one invariant"):
        stateful_test(SOUND, {})
    with pytest.raises(InvalidFormat, match="hypothesis strategy"):
        stateful_test({"deposit": banking.Deposit("account-1", 1)}, INVARIANTS)  # type: ignore[dict-item]
    with pytest.raises(InvalidFormat, match="same rule name"):
        stateful_test({"a b": SOUND["deposit"], "a-b": SOUND["deposit"]}, INVARIANTS)
