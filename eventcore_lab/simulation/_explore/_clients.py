"""Clients: the actors whose steps the explorer interleaves.

A client is a value-like program: its progress is an immutable *local state*, and :meth:`Client.step`
runs exactly one atomic action against the store and returns the next local state. Because local states
are values, the explorer can branch from any state as often as it likes. :class:`CommandClient` runs a
list of commands through :meth:`Executor.steps` (one phase per step); a process manager or an external
event source can implement the same protocol later and be explored with the same machinery.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, cast, runtime_checkable

from ...core.command import Command
from ...core.errors import ConcurrencyConflict, EventCoreError, InvalidFormat
from ...core.events import EventToWrite, ExpectedVersion, Metadata, StoredEvent
from ...core.executor import ExecutionResult, Executor, Phase
from ...core.query import AppendCondition, Query
from ...core.retry import RetryConfig
from ...modeling.checks import COMMAND_KEY
from ...stores.base import EventStore, QueryRead, StreamsRead

#: Labels of the steps a command client takes (the ``phase`` column of a counterexample's table).
READ, DECIDE, COMMIT, BACKOFF, REJECTED, GAVE_UP = (
    "read",
    "decide",
    "commit",
    "backoff",
    "rejected",
    "gave up",
)


@dataclass(frozen=True, slots=True)
class Move:
    """The outcome of one step: the client's next local state and what a person should see of the step."""

    local: Any
    phase: str
    action: str
    attempt: int = 1
    streams: tuple[str, ...] = ()
    result: ExecutionResult | None = None
    error: EventCoreError | None = None
    subject: Any = None  # what the step belongs to: the Command for a command client


@runtime_checkable
class Client(Protocol):
    """What the explorer needs of an actor. ``step`` must be deterministic given (local, store contents)
    and must do its store I/O only through the store it is handed (so its footprint is recorded). Each
    step must move the client's ``key`` forward, never back to an earlier one, so that every interleaving
    ends (the explored states form a graph without cycles)."""

    @property
    def name(self) -> str:
        """Unique within a scenario; labels the client's column in counterexamples."""
        ...

    def start(self) -> Any:
        """The local state before the first step."""
        ...

    def finished(self, local: Any) -> bool:
        """True when the client has nothing left to do."""
        ...

    def key(self, local: Any) -> Hashable:
        """A hashable summary of ``local`` that determines the client's future behaviour."""
        ...

    def step(self, local: Any, store: Any) -> Move:
        """Run one atomic action against ``store``."""
        ...


@dataclass(frozen=True, slots=True)
class _Progress:
    command: int = 0  # index of the command under way
    attempt: int = 1
    steps: int = 0  # next() calls made in the current attempt
    reads: tuple[StreamsRead | QueryRead, ...] = ()  # the current attempt's read answers, for replay


@dataclass(frozen=True)
class CommandClient:
    """Runs ``commands`` one after the other, each through :meth:`Executor.steps`, retried on conflict at
    most ``max_retries`` times.

    Executor generators cannot be copied, so a step rebuilds the command's generator and replays the
    phases of the current attempt against a store that answers with the reads recorded in the local
    state, then takes one more phase against the live store. Earlier attempts need no replay: an attempt
    starts from nothing but the command, so attempt ``n`` is run as the first attempt of an executor
    left with ``max_retries - (n - 1)`` retries, and the attempt numbers are shifted back when reported.
    """

    name: str
    commands: tuple[Command[Any], ...]
    max_retries: int = 2
    now: datetime = field(default_factory=lambda: _default_now())

    def __post_init__(self) -> None:
        if not self.commands:
            raise InvalidFormat(f"client {self.name!r} needs at least one command")
        for command in self.commands:
            if not isinstance(command, Command):
                raise InvalidFormat(
                    f"client {self.name!r}: expected Command instances, got {type(command).__name__}"
                )
        if self.max_retries < 0:
            raise InvalidFormat(f"client {self.name!r}: max_retries must be >= 0, got {self.max_retries}")

    def start(self) -> _Progress:
        return _Progress()

    def finished(self, local: _Progress) -> bool:
        return local.command >= len(self.commands)

    def key(self, local: _Progress) -> Hashable:
        seen = tuple(
            tuple(sorted(r.versions.items())) if isinstance(r, StreamsRead) else (r.position, len(r.events))
            for r in local.reads
        )
        return (local.command, local.attempt, local.steps, seen)

    def metadata(self, index: int) -> Metadata:
        """Repeatable metadata, labelled for timelines with the client and the command."""
        label = f"{self.name}: {type(self.commands[index]).__name__}"
        return Metadata(correlation_id=f"{self.name}/{index}", user_id=self.name, custom={COMMAND_KEY: label})

    def step(self, local: _Progress, store: Any) -> Move:
        if self.finished(local):
            raise InvalidFormat(f"client {self.name!r} has finished; it has no step to take")
        command = self.commands[local.command]
        replay = _ReplayStore(store, local.reads)
        now = self.now
        earlier = local.attempt - 1  # attempts already refused
        executor = Executor(
            cast("EventStore", replay),  # it answers all that an executor asks of a store
            retry=RetryConfig(max_attempts=self.max_retries - earlier, initial_delay=0.0, jitter=False),
            timeout=None,
            clock=lambda: now,
            rng=_RNG,
            sleep=_no_sleep,
        )
        steps = executor.steps(command, metadata=self.metadata(local.command))
        label = type(command).__name__
        try:
            for _ in range(local.steps):
                next(steps)  # a recorded phase: same reads, so the same outcome
            replay.live = True
            try:
                step = next(steps)
            except StopIteration as done:
                result: ExecutionResult = done.value
                result = replace(result, attempts=result.attempts + earlier)
                streams = tuple(dict.fromkeys(e.stream_id for e in result.events_written))
                return Move(
                    self._next(local), COMMIT, label, local.attempt, streams, result=result, subject=command
                )
            except EventCoreError as error:
                error.attempts = local.attempt
                phase = GAVE_UP if isinstance(error, ConcurrencyConflict) else REJECTED
                return Move(
                    self._next(local),
                    phase,
                    label,
                    local.attempt,
                    _streams_of(error),
                    error=error,
                    subject=command,
                )
        finally:
            steps.close()
        if step.phase is Phase.BACKOFF:
            after = _Progress(local.command, local.attempt + 1)
            return Move(after, BACKOFF, label, local.attempt, step.streams, error=step.error, subject=command)
        after = _Progress(local.command, local.attempt, local.steps + 1, local.reads + tuple(replay.answers))
        phase = READ if step.phase is Phase.READ else DECIDE
        return Move(after, phase, label, local.attempt, step.streams, subject=command)

    @staticmethod
    def _next(local: _Progress) -> _Progress:
        return _Progress(command=local.command + 1)


class _ReplayStore:
    """Answers the replayed phases from the record, then (once ``live``) forwards to the real store and
    records the new answers."""

    def __init__(self, store: Any, recorded: Sequence[StreamsRead | QueryRead]) -> None:
        self.store = store
        self.recorded = iter(recorded)
        self.live = False
        self.answers: list[StreamsRead | QueryRead] = []

    def read_streams(self, stream_ids: Iterable[str]) -> StreamsRead:
        if not self.live:
            return cast(StreamsRead, next(self.recorded))
        answer: StreamsRead = self.store.read_streams(stream_ids)
        self.answers.append(answer)
        return answer

    def read_query(self, query: Query, *, after: int = 0, limit: int | None = None) -> QueryRead:
        if not self.live:
            return cast(QueryRead, next(self.recorded))
        answer: QueryRead = self.store.read_query(query, after=after, limit=limit)
        self.answers.append(answer)
        return answer

    def append(
        self,
        events: Sequence[EventToWrite],
        expected: Mapping[str, ExpectedVersion] | None = None,
        *,
        condition: AppendCondition | None = None,
    ) -> list[StoredEvent]:
        if not self.live:  # a replay never reaches a commit: it ends the attempt
            raise InvalidFormat("replayed phases reached a commit; the recorded progress is inconsistent")
        if condition is not None:
            with_condition: list[StoredEvent] = self.store.append(events, expected, condition=condition)
            return with_condition
        stored: list[StoredEvent] = self.store.append(events, expected)
        return stored


def _streams_of(error: EventCoreError) -> tuple[str, ...]:
    return tuple(str(s) for s in getattr(error, "streams", ()))


#: Backoff delays are never slept, so the jitter they draw does not matter; one generator serves all.
_RNG = random.Random(0)


def _no_sleep(_seconds: float) -> None:
    """Backoff costs no time in an exploration: only the order of steps matters."""


def _default_now() -> datetime:
    from ...testing.scenario import DEFAULT_NOW

    return DEFAULT_NOW
