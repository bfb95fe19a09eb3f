"""Exhaustive exploration of concurrent commands: every interleaving of their phases, not a sample.

:func:`explore` runs a :class:`ConcurrentScenario` (a history and a few clients) in every distinct order
of the clients' steps, checks an invariant of the store after every commit, and returns an
:class:`ExplorationReport`; a violation comes with the shortest :class:`Counterexample`.
"""

from ._api import explore
from ._clients import Client, CommandClient, Move
from ._footprint import Footprint, RecordingStore
from ._hypothesis import assert_every_interleaving, concurrent_scenarios
from ._invariants import on_projection
from ._report import Counterexample, ExplorationReport, StepRecord
from ._scenario import ConcurrentScenario

__all__ = [
    "Client",
    "CommandClient",
    "ConcurrentScenario",
    "Counterexample",
    "ExplorationReport",
    "Footprint",
    "Move",
    "RecordingStore",
    "StepRecord",
    "assert_every_interleaving",
    "concurrent_scenarios",
    "explore",
    "on_projection",
]
