"""Sagas: ordered steps, each with a command and a compensating command.

Forward, the saga runs step 0, then step 1 when step 0 succeeded, and so on. When a step's command is
refused, the saga compensates: it runs the compensation of every completed step, last first, and records
each one as ``StepCompensated`` so that it is never compensated twice (the manual's loop looks for the
last *completed* step and, without such an event, finds the same one forever). A compensation that is
refused is retried on a deadline with the saga's retry policy; when retries run out the saga is aborted,
for a person to look at. Completed, compensated and aborted are terminal and exclusive.

The steps are stored in the saga's first event (commands by type name and arguments), so a saga that
waits for days survives restarts and deployments that do not remove its command classes.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

import msgspec

from ..core.command import Command
from ..core.registry import Event
from .manager import (
    CommandOutcome,
    Deadline,
    DeadlineReached,
    Decision,
    Issue,
    ProcessManager,
    command_type_name,
    decode_command,
    encode_command,
)
from .policies import ExponentialBackoff, ProcessTimeout


@dataclass(frozen=True)
class SagaStep:
    """One step: ``command`` goes forward, ``compensation`` undoes it once it succeeded."""

    name: str
    command: Command[Any]
    compensation: Command[Any]


class StepStatus(enum.StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    COMPENSATED = "compensated"


class StoredStep(msgspec.Struct, frozen=True):
    """A step as kept in ``SagaStarted``."""

    name: str
    command_type: str
    arguments: dict[str, Any]
    compensation_type: str
    compensation_arguments: dict[str, Any]


class SagaStarted(Event):
    registration = "on_first_use"
    event_type = "saga.SagaStarted"
    steps: list[StoredStep]


class StepStarted(Event):
    registration = "on_first_use"
    event_type = "saga.StepStarted"
    index: int
    name: str


class StepCompleted(Event):
    registration = "on_first_use"
    event_type = "saga.StepCompleted"
    index: int
    name: str


class StepFailed(Event):
    registration = "on_first_use"
    event_type = "saga.StepFailed"
    index: int
    name: str
    reason: str


class CompensationStarted(Event):
    registration = "on_first_use"
    event_type = "saga.CompensationStarted"
    failed_step: int


class CompensationStepStarted(Event):
    registration = "on_first_use"
    event_type = "saga.CompensationStepStarted"
    index: int
    name: str
    attempt: int = 1


class StepCompensated(Event):
    """The fix of the manual's endless loop: a compensated step is never picked again."""

    registration = "on_first_use"

    event_type = "saga.StepCompensated"
    index: int
    name: str


class CompensationFailed(Event):
    registration = "on_first_use"
    event_type = "saga.CompensationFailed"
    index: int
    name: str
    reason: str
    attempt: int


class SagaCompleted(Event):
    registration = "on_first_use"
    event_type = "saga.SagaCompleted"


class SagaCompensated(Event):
    registration = "on_first_use"
    event_type = "saga.SagaCompensated"


class SagaAborted(Event):
    """Compensation could not finish within the retry policy; a person must look at it."""

    registration = "on_first_use"

    event_type = "saga.SagaAborted"
    reason: str


SAGA_EVENTS = (
    SagaStarted,
    StepStarted,
    StepCompleted,
    StepFailed,
    CompensationStarted,
    CompensationStepStarted,
    StepCompensated,
    CompensationFailed,
    SagaCompleted,
    SagaCompensated,
    SagaAborted,
)


class SagaMode(enum.StrEnum):
    NEW = "new"
    FORWARD = "forward"
    COMPENSATING = "compensating"
    COMPLETED = "completed"
    COMPENSATED = "compensated"
    ABORTED = "aborted"


TERMINAL_MODES = frozenset({SagaMode.COMPLETED, SagaMode.COMPENSATED, SagaMode.ABORTED})


@dataclass(frozen=True)
class SagaState:
    mode: SagaMode = SagaMode.NEW
    steps: tuple[StoredStep, ...] = ()
    statuses: tuple[StepStatus, ...] = ()
    current: int = 0
    failure: str = ""
    attempts: dict[int, int] = field(default_factory=dict)  # compensation attempts per step

    def last_completed(self) -> int | None:
        """The step to compensate next: the last one still completed."""
        for index in range(len(self.statuses) - 1, -1, -1):
            if self.statuses[index] is StepStatus.COMPLETED:
                return index
        return None


def _set(statuses: tuple[StepStatus, ...], index: int, status: StepStatus) -> tuple[StepStatus, ...]:
    return (*statuses[:index], status, *statuses[index + 1 :])


def evolve_saga(state: SagaState, event: Any) -> SagaState:
    """The saga's fold (pure; returns a new state)."""
    replace = dataclasses.replace
    match event:
        case SagaStarted(steps=steps):
            return replace(
                state, mode=SagaMode.FORWARD, steps=tuple(steps), statuses=(StepStatus.PENDING,) * len(steps)
            )
        case StepStarted(index=index):
            return replace(state, current=index)
        case StepCompleted(index=index):
            return replace(state, statuses=_set(state.statuses, index, StepStatus.COMPLETED))
        case StepFailed(index=index, reason=reason):
            return replace(state, statuses=_set(state.statuses, index, StepStatus.FAILED), failure=reason)
        case CompensationStarted():
            return replace(state, mode=SagaMode.COMPENSATING)
        case CompensationStepStarted(index=index, attempt=attempt):
            return replace(state, current=index, attempts={**state.attempts, index: attempt})
        case StepCompensated(index=index):
            return replace(state, statuses=_set(state.statuses, index, StepStatus.COMPENSATED))
        case SagaCompleted():
            return replace(state, mode=SagaMode.COMPLETED)
        case SagaCompensated():
            return replace(state, mode=SagaMode.COMPENSATED)
        case SagaAborted(reason=reason):
            return replace(state, mode=SagaMode.ABORTED, failure=reason)
    return state


class Saga(ProcessManager[SagaState]):
    """Base class of sagas: say which event starts one (``triggers``, ``correlate``) and ``plan`` its
    steps; the forward run, the compensation and its retries are done here."""

    #: How refused compensations are retried before the saga is aborted.
    compensation_retry: ClassVar[ProcessTimeout] = ProcessTimeout(
        ExponentialBackoff(timedelta(seconds=1), timedelta(seconds=30)), max_retries=5
    )

    def plan(self, event: Any) -> Sequence[SagaStep]:
        """The steps of the saga started by ``event`` (a payload); empty to start nothing."""
        raise NotImplementedError(f"{type(self).__name__} must implement plan(event)")

    def initial_state(self) -> SagaState:
        return SagaState()

    def evolve(self, state: SagaState, event: Any) -> SagaState:
        return evolve_saga(state, event)

    def is_terminal(self, state: SagaState) -> bool:
        return state.mode in TERMINAL_MODES

    def status(self, state: SagaState) -> str:
        if state.mode is SagaMode.FORWARD and state.steps:
            return f"running step {state.current} ({state.steps[state.current].name})"
        if state.mode is SagaMode.COMPENSATING and state.steps:
            return f"compensating step {state.current} ({state.steps[state.current].name})"
        return state.mode.value

    def react(self, state: SagaState, trigger: Any, now: datetime) -> Decision:
        if isinstance(trigger, CommandOutcome):
            return self._outcome(state, trigger, now)
        if isinstance(trigger, DeadlineReached):
            return self._retry_compensation(state, trigger)
        if state.mode is not SagaMode.NEW:
            return Decision()  # a second start event for a running saga changes nothing
        steps = list(self.plan(trigger))
        if not steps:
            return Decision()
        stored = [
            StoredStep(
                s.name,
                command_type_name(s.command),
                encode_command(s.command),
                command_type_name(s.compensation),
                encode_command(s.compensation),
            )
            for s in steps
        ]
        return Decision(
            record=[SagaStarted(steps=stored), StepStarted(index=0, name=steps[0].name)],
            issue=[Issue(steps[0].command, "step:0")],
        )

    def _outcome(self, state: SagaState, outcome: CommandOutcome, now: datetime) -> Decision:
        kind, _, number = outcome.tag.partition(":")
        index = int(number)
        name = state.steps[index].name
        if kind == "step":
            if state.mode is not SagaMode.FORWARD:
                return Decision()
            if not outcome.ok:
                record: list[Any] = [
                    StepFailed(index=index, name=name, reason=outcome.reason),
                    CompensationStarted(failed_step=index),
                ]
                return self._compensate_next(state, record)
            done: list[Any] = [StepCompleted(index=index, name=name)]
            if index + 1 < len(state.steps):
                following = state.steps[index + 1]
                done.append(StepStarted(index=index + 1, name=following.name))
                return Decision(
                    record=done, issue=[Issue(self._command(following, forward=True), f"step:{index + 1}")]
                )
            return Decision(record=[*done, SagaCompleted()])
        if state.mode is not SagaMode.COMPENSATING:
            return Decision()
        if outcome.ok:
            return self._compensate_next(state, [StepCompensated(index=index, name=name)])
        attempt = state.attempts.get(index, 1)
        failed = CompensationFailed(index=index, name=name, reason=outcome.reason, attempt=attempt)
        if self.compensation_retry.should_retry(attempt - 1):
            at = self.compensation_retry.next_attempt(now, attempt - 1)
            return Decision(record=[failed], schedule=[Deadline(f"retry-compensation-{index}", at)])
        reason = f"compensation of step {index} ({name}) refused {attempt} times: {outcome.reason}"
        return Decision(record=[failed, SagaAborted(reason=reason)])

    def _compensate_next(self, state: SagaState, record: list[Any]) -> Decision:
        after = state
        for event in record:
            after = evolve_saga(after, event)
        index = after.last_completed()
        if index is None:
            return Decision(record=[*record, SagaCompensated()])
        step = after.steps[index]
        started = CompensationStepStarted(index=index, name=step.name, attempt=1)
        return Decision(
            record=[*record, started], issue=[Issue(self._command(step, forward=False), f"undo:{index}")]
        )

    def _retry_compensation(self, state: SagaState, deadline: DeadlineReached) -> Decision:
        if state.mode is not SagaMode.COMPENSATING or not deadline.name.startswith("retry-compensation-"):
            return Decision()
        index = int(deadline.name.rsplit("-", 1)[1])
        step = state.steps[index]
        attempt = state.attempts.get(index, 1) + 1
        return Decision(
            record=[CompensationStepStarted(index=index, name=step.name, attempt=attempt)],
            issue=[Issue(self._command(step, forward=False), f"undo:{index}")],
        )

    def _command(self, step: StoredStep, *, forward: bool) -> Command[Any]:
        if forward:
            return decode_command(self.commands, step.command_type, step.arguments)
        return decode_command(self.commands, step.compensation_type, step.compensation_arguments)
