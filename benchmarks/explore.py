"""Exhaustive exploration: how fast ``explore`` covers interleavings, with and without reduction.

``python -m benchmarks.explore`` runs the cases below (``--quick`` for a smoke run of a few seconds) and
prints a markdown table; ``--json PATH`` also writes every figure. There is no Python peer with a model
checker to run beside it, so the comparisons are internal and reported as ratios: the reduced search
against the unreduced one, and both against a naive enumeration that re-runs every prefix of every order
from scratch on live ``Executor.steps`` generators (what one would write by hand).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventcore_lab import MemoryStore, RetryConfig
from eventcore_lab.core.errors import EventCoreError
from eventcore_lab.core.events import EventToWrite
from eventcore_lab.core.executor import Executor
from eventcore_lab.examples.wallets import Pay, PayFast, WalletFunded, books_balance
from eventcore_lab.simulation import ConcurrentScenario, explore

GROUP = ("wallet-a", "wallet-b", "wallet-c")
PAYMENTS = [  # (payer, payee, amount) per client, two each
    [("wallet-a", "wallet-b", 60), ("wallet-b", "wallet-c", 50)],
    [("wallet-a", "wallet-c", 60), ("wallet-c", "wallet-a", 30)],
    [("wallet-b", "wallet-a", 40), ("wallet-c", "wallet-b", 70)],
]


def payments(clients: int, per_client: int, careful: bool, retries: int = 2) -> ConcurrentScenario:
    """The tutorial's scenario: wallets of 100, ``clients`` clients making ``per_client`` payments."""
    scenario = ConcurrentScenario(f"{clients}x{per_client} {'Pay' if careful else 'PayFast'}").retries(
        retries
    )
    for wallet in GROUP:
        scenario = scenario.given(wallet, WalletFunded(amount=100))
    for program in PAYMENTS[:clients]:
        scenario = scenario.client(
            *[Pay(a, b, GROUP, n) if careful else PayFast(a, b, n) for a, b, n in program[:per_client]]
        )
    return scenario


def disjoint_pairs(clients: int, per_client: int) -> ConcurrentScenario:
    scenario = ConcurrentScenario(f"{clients} disjoint pairs x{per_client}")
    for c in range(clients):
        scenario = scenario.given(f"wallet-{c}a", WalletFunded(amount=100))
    for c in range(clients):
        scenario = scenario.client(*[PayFast(f"wallet-{c}a", f"wallet-{c}b", 30) for _ in range(per_client)])
    return scenario


def books_of(scenario: ConcurrentScenario) -> Callable[[Any], bool]:
    total = sum(getattr(e, "amount", 0) for _, e in scenario.givens)
    return lambda store: books_balance(store, total)


def naive_count(scenario: ConcurrentScenario, invariant: Callable[[Any], object]) -> int:
    """Complete interleavings by re-running every prefix of every order from scratch (no cache, no
    reduction): the baseline. Returns the count; raises if a prefix breaks the invariant."""
    programs = [list(c.commands) for c in scenario.clients]  # type: ignore[attr-defined]

    def outcome(order: tuple[int, ...]) -> str:
        store = MemoryStore()
        store.append([EventToWrite(s, e) for s, e in scenario.givens])
        retry = RetryConfig(max_attempts=scenario.max_retries, initial_delay=0.0, jitter=False)
        executor = Executor(store, retry=retry, timeout=None, sleep=lambda _s: None)
        done, running = [0] * len(programs), [None] * len(programs)
        for c in order:
            if done[c] >= len(programs[c]):
                return "invalid"
            if running[c] is None:
                running[c] = executor.steps(programs[c][done[c]])  # type: ignore[call-overload]
            try:
                next(running[c])  # type: ignore[call-overload]
            except (StopIteration, EventCoreError):
                running[c], done[c] = None, done[c] + 1
        if invariant(store) is False:
            raise AssertionError(f"order {order} breaks the invariant")
        return "done" if done == [len(p) for p in programs] else "open"

    complete = 0
    frontier: list[tuple[int, ...]] = [()]
    while frontier:
        grown: list[tuple[int, ...]] = []
        for prefix in frontier:
            for c in range(len(programs)):
                result = outcome((*prefix, c))
                complete += result == "done"
                if result == "open":
                    grown.append((*prefix, c))
        frontier = grown
    return complete


@dataclass
class Row:
    case: str
    method: str
    seconds: float
    states: int | None
    transitions: int | None
    interleavings: int
    verdict: str

    @property
    def states_per_second(self) -> float | None:
        return None if self.states is None else self.states / self.seconds


def timed(repeats: int, run: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def exploration(case: str, scenario: ConcurrentScenario, reduction: bool, repeats: int) -> Row:
    seconds, report = timed(repeats, lambda: explore(scenario, books_of(scenario), reduction=reduction))
    verdict = (
        "holds"
        if report.holds
        else f"broken in {len(report.counterexample)} steps"
        if report.counterexample
        else "incomplete"
    )
    method = "explore (reduced)" if reduction else "explore (unreduced)"
    return Row(case, method, seconds, report.states, report.transitions, report.interleavings, verdict)


def run(quick: bool, repeats: int) -> list[Row]:
    per = 1 if quick else 2
    rows: list[Row] = []
    explore(payments(2, 1, careful=True), lambda _store: True)  # warm up imports and caches
    proof = payments(2 if quick else 3, per, careful=True)
    rows.append(exploration(f"prove {proof.name}", proof, True, repeats))
    rows.append(exploration(f"prove {proof.name}", proof, False, repeats))
    broken = payments(2 if quick else 3, per, careful=False)
    rows.append(exploration(f"find {broken.name}", broken, True, repeats))
    pairs = disjoint_pairs(4, per)
    rows.append(exploration(f"prove {pairs.name}", pairs, True, repeats))
    every = math.factorial(4 * 3 * per) // math.factorial(3 * per) ** 4
    rows.append(Row(f"prove {pairs.name}", "all interleavings (formula)", math.nan, None, None, every, "-"))
    small_pairs = disjoint_pairs(4, 1)
    if not quick:
        rows.append(exploration(f"prove {small_pairs.name}", small_pairs, True, repeats))
        rows.append(exploration(f"prove {small_pairs.name}", small_pairs, False, repeats))
    tiny = payments(2, 1, careful=True, retries=1) if quick else payments(3, 1, careful=True, retries=1)
    rows.append(exploration(f"prove {tiny.name}, 1 retry", tiny, True, repeats))
    rows.append(exploration(f"prove {tiny.name}, 1 retry", tiny, False, repeats))
    seconds, count = timed(1, lambda: naive_count(tiny, books_of(tiny)))
    rows.append(
        Row(
            f"prove {tiny.name}, 1 retry", "naive re-run of every prefix", seconds, None, None, count, "holds"
        )
    )
    return rows


def markdown(rows: list[Row]) -> str:
    lines = [
        "| case | method | seconds | states | states/s | steps | interleavings | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        rate = "" if r.states_per_second is None else f"{r.states_per_second:,.0f}"
        seconds = "" if math.isnan(r.seconds) else f"{r.seconds:.3f}"
        states = "" if r.states is None else f"{r.states:,}"
        steps = "" if r.transitions is None else f"{r.transitions:,}"
        cells = [r.case, r.method, seconds, states, rate, steps, f"{r.interleavings:,}", r.verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratios(rows: list[Row]) -> list[str]:
    """Reduced vs unreduced vs naive, per case, as ratios (the steadier figures on a shared machine)."""
    out = []
    by_case: dict[str, dict[str, Row]] = {}
    for r in rows:
        by_case.setdefault(r.case, {})[r.method] = r
    for case, methods in by_case.items():
        reduced, full = methods.get("explore (reduced)"), methods.get("explore (unreduced)")
        naive = methods.get("naive re-run of every prefix")
        formula = methods.get("all interleavings (formula)")
        if reduced and full and reduced.states and full.states and reduced.transitions and full.transitions:
            out.append(
                f"- {case}: reduced/unreduced time {reduced.seconds / full.seconds:.2f}, "
                f"states {reduced.states / full.states:.2f}, "
                f"steps {reduced.transitions / full.transitions:.2f}"
            )
        if full and naive:
            out.append(f"- {case}: naive/unreduced time {naive.seconds / full.seconds:.1f}")
        if reduced and formula:
            out.append(
                f"- {case}: interleavings explored / all = {reduced.interleavings}/{formula.interleavings:,} "
                f"= {reduced.interleavings / formula.interleavings:.1e}"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.explore", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny scenarios, a few seconds")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    rows = run(args.quick, 1 if args.quick else args.repeats)
    print(f"Python {platform.python_version()}, {platform.machine()}; medians of {args.repeats} repeats\n")
    print(markdown(rows))
    print()
    print("\n".join(ratios(rows)))
    if args.json:
        args.json.write_text(
            json.dumps([{**r.__dict__, "states_per_second": r.states_per_second} for r in rows], default=str)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
