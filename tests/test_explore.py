"""The explorer's must-shows: every interleaving, checked against an independent brute force.

The brute force below shares nothing with the explorer but the commands: it drives live
``Executor.steps`` generators on a fresh MemoryStore for every prefix of every order of clients.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from eventcore_lab import Command, MemoryStore, RetryConfig
from eventcore_lab.core.command import CommandContext, emit
from eventcore_lab.core.errors import EventCoreError
from eventcore_lab.core.events import EventToWrite
from eventcore_lab.core.executor import Executor
from eventcore_lab.examples.wallets import (
    Fund,
    Pay,
    PayFast,
    PaymentCredited,
    WalletFunded,
    books_balance,
)
from eventcore_lab.simulation import ConcurrentScenario, explore

GROUP = ("wallet-a", "wallet-b", "wallet-c")


def funded(*wallets: str, amount: int = 100) -> ConcurrentScenario:
    scenario = ConcurrentScenario("wallets")
    for wallet in wallets:
        scenario = scenario.given(wallet, WalletFunded(amount=amount))
    return scenario


def three_clients(pay: Callable[[str, str, int], Command[Any]]) -> ConcurrentScenario:
    """3 clients x 2 payments among three wallets of 100 each."""
    return (
        funded(*GROUP)
        .client(pay("wallet-a", "wallet-b", 60), pay("wallet-b", "wallet-c", 50))
        .client(pay("wallet-a", "wallet-c", 60), pay("wallet-c", "wallet-a", 30))
        .client(pay("wallet-b", "wallet-a", 40), pay("wallet-c", "wallet-b", 70))
    )


def fast(payer: str, payee: str, amount: int) -> Command[Any]:
    return PayFast(payer, payee, amount)


def careful(payer: str, payee: str, amount: int) -> Command[Any]:
    return Pay(payer, payee, GROUP, amount)


def conserved_300(store: Any) -> bool:
    return books_balance(store, funded=300)


# -- an independent brute force ---------------------------------------------------------------------


def holds(invariant: Callable[[Any], object], store: MemoryStore) -> bool:
    try:
        return invariant(store) is not False
    except AssertionError:
        return False


def run_order(scenario: ConcurrentScenario, order: Sequence[int], invariant: Callable[[Any], object]) -> str:
    """Run ``order`` (client index per step) with live generators: 'invalid', 'violated', 'done' or 'open'."""
    store = MemoryStore()
    store.append([EventToWrite(s, e) for s, e in scenario.givens])
    programs = [list(c.commands) for c in scenario.clients]  # type: ignore[attr-defined]
    executor = Executor(
        store,
        retry=RetryConfig(max_attempts=scenario.max_retries, initial_delay=0.0, jitter=False),
        timeout=None,
        sleep=lambda _s: None,
    )
    next_command = [0] * len(programs)
    running: list[Any] = [None] * len(programs)
    for client in order:
        if next_command[client] >= len(programs[client]):
            return "invalid"
        if running[client] is None:
            running[client] = executor.steps(programs[client][next_command[client]])
        head = store.head()
        try:
            next(running[client])
        except (StopIteration, EventCoreError):
            running[client] = None
            next_command[client] += 1
        if store.head() != head and not holds(invariant, store):
            return "violated"
    return "done" if all(n == len(p) for n, p in zip(next_command, programs, strict=True)) else "open"


def brute_force(
    scenario: ConcurrentScenario, invariant: Callable[[Any], object], max_length: int
) -> tuple[list[tuple[int, ...]], int | None]:
    """(complete interleavings, length of the shortest violation) over every order up to ``max_length``."""
    complete: list[tuple[int, ...]] = []
    shortest = None
    frontier: list[tuple[int, ...]] = [()]
    for length in range(1, max_length + 1):
        grown = []
        for prefix in frontier:
            for client in range(len(scenario.clients)):
                order = (*prefix, client)
                outcome = run_order(scenario, order, invariant)
                if outcome == "violated":
                    shortest = length if shortest is None else shortest
                elif outcome == "done":
                    complete.append(order)
                elif outcome == "open":
                    grown.append(order)
        frontier = grown
    assert not frontier, "max_length too small to finish every interleaving"
    return complete, shortest


# -- must-show: the broken payment is caught, minimally ----------------------------------------------


def test_the_payment_that_forgets_a_stream_is_caught_with_a_shortest_counterexample() -> None:
    report = explore(three_clients(fast), conserved_300)
    example = report.counterexample
    assert example is not None and not report.holds
    assert "overdrawn" in example.message
    assert report.shortest and report.first_found_length is not None
    assert report.first_found_length >= len(example)
    assert not report.complete and report.stopped_by == "violation"
    # the same order, run by the brute force with live generators, breaks the invariant on its last step
    assert run_order(example.scenario, example.order, conserved_300) == "violated"
    assert run_order(example.scenario, example.order[:-1], conserved_300) == "open"
    # and no order of fewer steps breaks it: every prefix shorter than the counterexample is tried
    shorter = len(example) - 1
    frontier: list[tuple[int, ...]] = [()]
    for _ in range(shorter):
        frontier = [(*p, c) for p in frontier for c in range(3)]
        outcomes = {run_order(example.scenario, order, conserved_300) for order in frontier}
        assert "violated" not in outcomes
    assert len(example) == 6  # two payments from wallet-a, each read, decide, commit


def test_the_careful_payment_holds_in_every_interleaving_of_3_clients_x_2_commands() -> None:
    report = explore(three_clients(careful), conserved_300)
    assert report.holds, str(report)
    assert report.complete and report.truncated == 0 and report.stopped_by is None
    assert report.counterexample is None
    assert report.interleavings > 1_000 and report.terminal_states > 1


# -- must-show: counts without reduction match independent counts -----------------------------------


@pytest.mark.parametrize(("clients", "commands"), [(2, 2), (3, 1), (3, 2)])
def test_unreduced_count_of_disjoint_clients_is_the_multinomial(clients: int, commands: int) -> None:
    """Clients on their own wallets never conflict: each command is exactly read, decide, commit, so the
    interleavings are the ways to merge ``clients`` sequences of ``3 * commands`` steps."""
    scenario = ConcurrentScenario("disjoint")
    for c in range(clients):
        scenario = scenario.client(*[Fund(f"wallet-{c}", 10 + k) for k in range(commands)])
    report = explore(scenario, lambda store: True, reduction=False)
    steps = 3 * commands
    expected = math.factorial(clients * steps) // math.factorial(steps) ** clients
    assert report.interleavings == expected
    assert report.holds


def test_unreduced_count_with_conflicts_and_retries_matches_the_brute_force() -> None:
    scenario = (
        funded(*GROUP)
        .retries(1)
        .client(careful("wallet-a", "wallet-b", 10))
        .client(careful("wallet-b", "wallet-c", 10))
    )
    report = explore(scenario, conserved_300, reduction=False)
    complete, shortest = brute_force(scenario, conserved_300, max_length=12)
    assert shortest is None
    assert report.interleavings == len(complete)
    # some interleavings conflict and retry: read, decide, backoff, then read, decide, commit again
    assert max(len(order) for order in complete) == 9


# -- must-show: reduction on 4 clients with disjoint wallets ----------------------------------------


class PayUnchecked(Command[None]):
    """An injected bug: pays without looking at the balance."""

    payer: str
    payee: str
    amount: int

    def read_streams(self) -> tuple[Any, ...]:
        return (self.payee,)

    def handle(self, state: None, ctx: CommandContext) -> list[EventToWrite]:
        return [emit(self.payee, PaymentCredited(payer=self.payer, amount=self.amount))]


def four_disjoint_clients(bug: bool) -> ConcurrentScenario:
    scenario = ConcurrentScenario("four pairs")
    for c in range(4):
        scenario = scenario.given(f"wallet-{c}a", WalletFunded(amount=100))
    for c in range(4):
        second: Command[Any] = (
            PayUnchecked(f"wallet-{c}a", f"wallet-{c}b", 60)
            if bug and c == 3
            else PayFast(f"wallet-{c}a", f"wallet-{c}b", 30)
        )
        scenario = scenario.client(PayFast(f"wallet-{c}a", f"wallet-{c}b", 60), second)
    return scenario


def test_reduction_visits_a_small_fraction_of_4_disjoint_clients_and_still_finds_a_bug() -> None:
    full_interleavings = math.factorial(24) // math.factorial(6) ** 4  # 4 clients x 6 steps, no conflicts
    correct = explore(four_disjoint_clients(bug=False), lambda s: books_balance(s, 400))
    assert correct.holds
    ratio = correct.interleavings / full_interleavings
    print(
        f"reduced: {correct.interleavings} of {full_interleavings} interleavings (ratio {ratio:.2e}), "
        f"{correct.states} states, {correct.transitions} steps"
    )
    assert correct.interleavings < 100 and ratio < 1e-9
    assert correct.states == 7**4  # sleep sets prune steps, never states: every local-state product
    assert correct.transitions < 4 * correct.states

    broken = explore(four_disjoint_clients(bug=True), lambda s: books_balance(s, 400))
    assert broken.counterexample is not None
    assert broken.counterexample.message == "wallet-3a is overdrawn: balance -20"
    assert len(broken.counterexample) == 6  # client 4 alone: read, decide, commit twice
    assert {r.client for r in broken.counterexample.steps()} == {"client 4"}


def test_reduced_and_full_exploration_agree_on_a_smaller_disjoint_case() -> None:
    scenario = ConcurrentScenario("three pairs")
    for c in range(3):
        scenario = scenario.given(f"wallet-{c}a", WalletFunded(amount=100))
    for c in range(3):
        scenario = scenario.client(PayFast(f"wallet-{c}a", f"wallet-{c}b", 60))
    full = explore(scenario, lambda s: books_balance(s, 300), reduction=False)
    reduced = explore(scenario, lambda s: books_balance(s, 300))
    assert full.holds and reduced.holds
    assert full.interleavings == math.factorial(9) // math.factorial(3) ** 3
    assert reduced.interleavings == 1
    assert (reduced.terminal_states, full.terminal_states) == (1, math.factorial(3))  # commit orders
    assert reduced.states < full.states and reduced.transitions < full.transitions / 2
