"""``explore``: the one call a notebook makes."""

from __future__ import annotations

import time
from typing import Any

from ...core.errors import InvalidFormat
from ._report import Counterexample, ExplorationReport
from ._scenario import ConcurrentScenario
from ._search import Invariant, Search


def explore(
    scenario: ConcurrentScenario,
    invariant: Invariant,
    *,
    reduction: bool = True,
    max_depth: int | None = None,
    max_states: int | None = None,
    time_budget: float | None = None,
    shortest: bool = True,
    progress: bool = False,
) -> ExplorationReport:
    """Run every distinct interleaving of the scenario's clients' steps on the in-memory store.

    ``invariant(store)`` is checked on the initial history, after every commit and at the end of every
    interleaving; it fails by returning a false value or raising AssertionError (its message is kept).
    Each command's phases are steps (read, decide, commit, backoff and retry); each command is retried
    at most the scenario's ``max_retries`` times. ``reduction`` explores one order of steps that
    commute (sleep sets, see :mod:`._search`); ``max_depth`` bounds the steps per interleaving,
    ``max_states`` the states visited per search, ``time_budget`` the seconds spent in all. With
    ``shortest`` a violation is searched again breadth-first without reduction, so that the
    counterexample is one of minimal length.
    """
    if not isinstance(scenario, ConcurrentScenario):
        raise InvalidFormat(f"explore() takes a ConcurrentScenario, got {type(scenario).__name__}")
    if not callable(invariant):
        raise InvalidFormat(f"the invariant must be a function of the store, got {invariant!r}")
    for name, value in (("max_depth", max_depth), ("max_states", max_states)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InvalidFormat(f"{name} must be a positive integer or None, got {value!r}")
    if time_budget is not None and not time_budget > 0:
        raise InvalidFormat(f"time_budget must be a positive number of seconds, got {time_budget!r}")
    from tqdm.auto import tqdm

    clock = _clock()
    started = time.perf_counter()
    with tqdm(desc=f"exploring {scenario.name}", unit="state", disable=not progress) as bar:
        search = Search(
            scenario.new_store(),
            scenario.clients,
            invariant,
            reduction=reduction,
            clock=clock,
            max_depth=max_depth,
            max_states=max_states,
            time_budget=time_budget,
            progress=bar,
        )
        found = search.depth_first()
        judge = search
        first_length = None if found is None else found.depth
        minimal = found is not None and found.depth == 0
        remaining = None if time_budget is None else time_budget - (time.perf_counter() - started)
        if found is not None and shortest and found.depth > 0 and (remaining is None or remaining > 0):
            exact = Search(
                scenario.new_store(),
                scenario.clients,
                invariant,
                reduction=False,
                clock=clock,
                max_states=max_states,
                time_budget=remaining,
            )
            nearest = exact.breadth_first(found.depth)
            if nearest is not None:
                found, judge, minimal = nearest, exact, True
    stats = search.stats
    counterexample = None
    if found is not None:
        order = tuple(client for client, _ in found.path())
        counterexample = Counterexample(scenario, order, judge.message_of(found))
    return ExplorationReport(
        scenario=scenario.name,
        reduction=reduction,
        states=stats.states,
        transitions=stats.transitions,
        interleavings=stats.interleavings,
        pruned=stats.pruned,
        cache_hits=stats.cache_hits,
        truncated=stats.truncated,
        terminal_states=stats.terminal,
        complete=stats.stopped_by is None and stats.truncated == 0,
        stopped_by=stats.stopped_by,
        elapsed=time.perf_counter() - started,
        counterexample=counterexample,
        first_found_length=first_length,
        shortest=minimal,
    )


def _clock() -> Any:
    from ...testing.scenario import DEFAULT_NOW

    fixed = DEFAULT_NOW
    return lambda: fixed
