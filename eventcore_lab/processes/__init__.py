"""Long-running processes: process managers, sagas with compensation, durable deadlines, retry policies.

A process manager reacts to events and issues commands; its state lives in its own stream
(``"<name>-<key>"``), and every decision is appended together with the mark of the event that caused it,
so a process can be fed the same event twice (at-least-once delivery, crashes, several runners) and act
once. :class:`ProcessRunner` feeds the log to managers, runs the commands they issue and fires their
deadlines; :class:`Saga` is a manager for ordered steps with compensation.
"""

from .board import add_processes
from .deadlines import DeadlineScheduler, PendingDeadline
from .events import (
    CommandIssued,
    CommandRejected,
    CommandSucceeded,
    DeadlineCancelled,
    DeadlineFired,
    DeadlineScheduled,
    TriggerHandled,
)
from .frames import causation_chain, chain_events, process_records, process_summary, processes_frame
from .manager import (
    CommandOutcome,
    Deadline,
    DeadlineReached,
    Decision,
    Issue,
    ProcessManager,
    ProcessRecord,
)
from .policies import ExponentialBackoff, FixedDelay, LinearBackoff, ProcessTimeout, RetryPolicy
from .runner import ProcessRunner, RunnerStats
from .saga import (
    SAGA_EVENTS,
    Saga,
    SagaMode,
    SagaState,
    SagaStep,
    StepStatus,
)
from .simulation import External, ProcessSimulationResult, simulate_processes

__all__ = [
    "SAGA_EVENTS",
    "CommandIssued",
    "CommandOutcome",
    "CommandRejected",
    "CommandSucceeded",
    "Deadline",
    "DeadlineCancelled",
    "DeadlineFired",
    "DeadlineReached",
    "DeadlineScheduled",
    "DeadlineScheduler",
    "Decision",
    "ExponentialBackoff",
    "External",
    "FixedDelay",
    "Issue",
    "LinearBackoff",
    "PendingDeadline",
    "ProcessManager",
    "ProcessRecord",
    "ProcessRunner",
    "ProcessSimulationResult",
    "ProcessTimeout",
    "RetryPolicy",
    "RunnerStats",
    "Saga",
    "SagaMode",
    "SagaState",
    "SagaStep",
    "StepStatus",
    "TriggerHandled",
    "add_processes",
    "causation_chain",
    "chain_events",
    "process_records",
    "process_summary",
    "processes_frame",
    "simulate_processes",
]
