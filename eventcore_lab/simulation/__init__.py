"""Load simulation: workloads, a deterministic scheduler over virtual time, real-concurrency runners, and
results as DataFrames with plots; and exhaustive exploration of every interleaving (``explore``)."""

from ._explore import (
    Client,
    CommandClient,
    ConcurrentScenario,
    Counterexample,
    ExplorationReport,
    Move,
    StepRecord,
    assert_every_interleaving,
    concurrent_scenarios,
    explore,
    on_projection,
)
from .concurrent import run_processes, run_threads
from .presets import balances, bank_total, banking_workload
from .results import COLUMNS, OUTCOMES, CommandRecord, SimulationResult
from .scheduler import EPOCH, PhaseCosts, Simulation, simulate
from .workload import ClientStream, Draw, FixedKeys, KeyChoice, Op, Uniform, Workload, Zipf

__all__ = [
    "COLUMNS",
    "EPOCH",
    "OUTCOMES",
    "Client",
    "ClientStream",
    "CommandClient",
    "CommandRecord",
    "ConcurrentScenario",
    "Counterexample",
    "Draw",
    "ExplorationReport",
    "FixedKeys",
    "KeyChoice",
    "Move",
    "Op",
    "PhaseCosts",
    "Simulation",
    "SimulationResult",
    "StepRecord",
    "Uniform",
    "Workload",
    "Zipf",
    "assert_every_interleaving",
    "balances",
    "bank_total",
    "banking_workload",
    "concurrent_scenarios",
    "explore",
    "on_projection",
    "run_processes",
    "run_threads",
    "simulate",
]
