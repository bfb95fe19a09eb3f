"""Load simulation: workloads, a deterministic scheduler over virtual time, real-concurrency runners, and
results as DataFrames with plots."""

from .concurrent import run_processes, run_threads
from .presets import balances, bank_total, banking_workload
from .results import COLUMNS, OUTCOMES, CommandRecord, SimulationResult
from .scheduler import EPOCH, PhaseCosts, Simulation, simulate
from .workload import ClientStream, Draw, FixedKeys, KeyChoice, Op, Uniform, Workload, Zipf

__all__ = [
    "COLUMNS",
    "EPOCH",
    "OUTCOMES",
    "ClientStream",
    "CommandRecord",
    "Draw",
    "FixedKeys",
    "KeyChoice",
    "Op",
    "PhaseCosts",
    "Simulation",
    "SimulationResult",
    "Uniform",
    "Workload",
    "Zipf",
    "balances",
    "bank_total",
    "banking_workload",
    "run_processes",
    "run_threads",
    "simulate",
]
