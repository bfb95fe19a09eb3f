"""The hypothesis bridge: hypothesis draws the inputs, the explorer covers every interleaving of each.

A property test written with these checks both dimensions: which commands run (drawn, shrunk to a small
failing example by hypothesis) and in which order their phases interleave (exhausted by :func:`explore`
within small bounds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...core.command import Command
from ...core.errors import InvalidFormat
from ._api import explore
from ._report import ExplorationReport
from ._scenario import ConcurrentScenario
from ._search import Invariant


def concurrent_scenarios(
    commands: Any,
    *,
    history: Sequence[tuple[str, object]] = (),
    clients: tuple[int, int] = (1, 3),
    commands_per_client: tuple[int, int] = (1, 2),
    max_retries: int = 1,
    name: str = "drawn",
) -> Any:
    """A hypothesis strategy of :class:`ConcurrentScenario`: ``history`` as givens, then between
    ``clients[0]`` and ``clients[1]`` clients, each running a list of commands drawn from the strategy
    ``commands``. Keep the bounds small: every drawn scenario is explored exhaustively."""
    from hypothesis import strategies as st

    low, high = clients
    per_low, per_high = commands_per_client
    if not 1 <= low <= high or not 1 <= per_low <= per_high:
        raise InvalidFormat(
            f"bounds must be 1 <= min <= max, got clients={clients}, commands={commands_per_client}"
        )

    def build(programs: list[list[Command[Any]]]) -> ConcurrentScenario:
        scenario = ConcurrentScenario(name).retries(max_retries)
        for stream_id, event in history:
            scenario = scenario.given(stream_id, event)
        for program in programs:
            scenario = scenario.client(*program)
        return scenario

    program = st.lists(commands, min_size=per_low, max_size=per_high)
    return st.lists(program, min_size=low, max_size=high).map(build)


def assert_every_interleaving(
    scenario: ConcurrentScenario, invariant: Invariant, **bounds: Any
) -> ExplorationReport:
    """Explore ``scenario`` and fail (AssertionError with the counterexample) unless the invariant holds
    in every interleaving, the search complete within ``bounds`` (passed to :func:`explore`)."""
    report = explore(scenario, invariant, **bounds)
    if report.counterexample is not None:
        raise AssertionError(
            f"{scenario.describe()}\n{report.counterexample.describe()}\n\nas a test:\n"
            f"{report.counterexample.scenario_code()}"
        )
    if not report.complete:
        raise AssertionError(
            f"{scenario.name}: exploration incomplete ({report.stopped_by or 'depth bound'})"
        )
    return report
