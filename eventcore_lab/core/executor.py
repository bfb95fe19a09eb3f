"""The executor: read -> fold -> decide -> commit, retried on conflict.

The phases are explicit. :meth:`Executor.steps` is a generator that performs one phase per ``next()``,
so a simulator can interleave many commands deterministically; :meth:`Executor.execute` simply drives it
to the end, sleeping through backoffs and enforcing the timeout.
"""

from __future__ import annotations

import enum
import functools
import operator
import random
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from msgspec.structs import replace

from ._deadline import reset_deadline, set_deadline
from ._guessing import Guesses, GuessingReads
from .authorization import CommandPolicy, StreamAccess
from .command import Command, CommandContext
from .errors import (
    AppendConditionFailed,
    ConcurrencyConflict,
    EventCoreError,
    MaxIterationsExceeded,
    StreamAccessDenied,
    StreamNotFound,
    Timeout,
    VersionConflict,
)
from .events import EventToWrite, ExpectedVersion, Metadata, StoredEvent
from .ids import StreamId, new_correlation_id
from .load import Boundary, fold_events
from .query import AppendCondition, Query
from .retry import RetryConfig

if TYPE_CHECKING:
    from ..observability._hook import CommandWatch
    from ..observability.events import Observer
    from ..snapshots import Snapshots
    from ..stores.base import EventStore


class Phase(enum.Enum):
    READ = "read"
    DECIDE = "decide"
    BACKOFF = "backoff"


@dataclass(frozen=True, slots=True)
class Step:
    """What the last ``next()`` of :meth:`Executor.steps` did.

    After ``READ`` and ``DECIDE`` the next ``next()`` continues; after ``BACKOFF`` the driver should
    wait ``delay`` seconds (real or simulated) first. The commit is the final ``next()``: it ends the
    generator with the :class:`ExecutionResult` (or raises).
    """

    phase: Phase
    attempt: int
    streams: tuple[str, ...]
    delay: float = 0.0
    error: EventCoreError | None = None


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """What a successful command did. ``duration`` is in seconds, retries and backoff included."""

    events_written: list[StoredEvent]
    streams_affected: tuple[str, ...]
    attempts: int
    duration: float


Steps = Generator[Step, None, ExecutionResult]
# What the internal generators yield: the fields of a Step, without building one.
_RawStep = tuple[Phase, int, Iterable[str], float, EventCoreError | None]


class Executor:
    """Runs commands against a store with optimistic concurrency over every stream read.

    ``clock`` gives the decision time seen by ``handle`` as ``ctx.now``; ``rng`` drives retry jitter.
    Pass both (and ``sleep``) to make runs repeatable.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        retry: RetryConfig | None = None,
        timeout: float | None = 30.0,
        max_discovery_iterations: int = 10,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        observers: Sequence[Observer] = (),
        policy: CommandPolicy | None = None,
        snapshots: Snapshots | None = None,
    ) -> None:
        if max_discovery_iterations < 1:
            raise ValueError(f"max_discovery_iterations must be >= 1, got {max_discovery_iterations}")
        self.store = store
        self.retry = retry if retry is not None else RetryConfig()
        self.timeout = timeout
        self.max_discovery_iterations = max_discovery_iterations
        self.clock = clock or _utc_now
        self.rng = rng or random.Random()
        self.sleep = sleep
        #: Told about every command's start, phases, retries and end (see eventcore_lab.observability).
        self.observers = tuple(observers)
        #: Asked before every append (see :mod:`.authorization`); None runs every command unchecked.
        self.policy = policy
        #: snapshots of folded state (eventcore_lab.snapshots): a fold resumes from one; versions still
        #: come from the store, so the optimistic check guards every decision as before
        self.snapshots = snapshots
        # a store that may guess unseen streams empty (see _guessing): not with snapshots, which keep state.
        # The class must implement it: a wrapper forwarding unknown attributes (ObservedStore, ChaosStore)
        # would otherwise hand the guessing read to the inner store, past its own observation and faults.
        self._guessing = snapshots is None and issubclass(type(store), GuessingReads)

    def execute(
        self,
        command: Command[Any],
        *,
        metadata: Metadata | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        user_id: str | None = None,
        timeout: float | None = None,
        user: Any = None,
    ) -> ExecutionResult:
        """Run ``command`` to completion and return what it wrote.

        ``user`` is the principal running it: the executor's ``policy`` (if any) is asked about it before
        anything is written, and its id (a str, or the object's ``id``) becomes the events' ``user_id``
        unless ``user_id`` or ``metadata`` is given.

        Raises the command's error (ValidationFailed, BusinessRuleViolation, ...), the last retriable
        error once retries are exhausted (its ``attempts`` set), or Timeout. Nothing partial is written.
        """
        budget = self.timeout if timeout is None else timeout
        deadline = None if budget is None else time.monotonic() + budget
        watch = self._watch(command)
        bounded = set_deadline(deadline)  # the phases' store calls get what is left of the budget
        try:
            if watch is None and self._plain(command):
                metadata, principal = _begin(command, metadata, correlation_id, causation_id, user_id, user)
                return self._run_plain(command, metadata, principal, deadline, budget)
            return self._run_phases(
                command,
                self._phases(command, metadata, correlation_id, causation_id, user_id, user, watch),
                deadline,
                budget,
                watch,
            )
        finally:
            reset_deadline(bounded)

    def _run_phases(
        self,
        command: Command[Any],
        phases: Generator[_RawStep, None, ExecutionResult],
        deadline: float | None,
        budget: float | None,
        watch: CommandWatch | None,
    ) -> ExecutionResult:
        """Drive the raw phases (not steps(): same phases and checks, without a Step per phase)."""
        try:
            while True:
                phase, attempt, _, delay, _ = next(phases)
                if deadline is not None and deadline - time.monotonic() <= delay:
                    late = _late(command, budget, attempt, phase)
                    if watch is not None:
                        watch.failed(late, attempt)
                    raise late
                if phase is Phase.BACKOFF:
                    self.sleep(delay)
        except StopIteration as done:
            result: ExecutionResult = done.value
            return result
        finally:
            phases.close()

    def _plain(self, command: Command[Any]) -> bool:
        """Whether ``command`` may run on the plain path: streams only (no query, no resolver), and no
        snapshots or guessing reads (the caller checks that nothing observes it)."""
        return isinstance(command, Command) and not (
            command.__by_query__ or command.__resolves__ or self.snapshots is not None or self._guessing
        )

    def _run_plain(
        self,
        command: Command[Any],
        metadata: Metadata,
        principal: Any,
        deadline: float | None,
        budget: float | None,
    ) -> ExecutionResult:
        """What driving ``_phases`` does, for a command on the plain path, in plain calls: the same
        phases, checks, retries and deadline checks (after every phase but the commit), without the
        generator frames a resumable run needs (about 5-7% of an in-memory command's instructions)."""
        started = time.perf_counter()
        attempt = 1
        while True:
            try:
                written = self._attempt_plain(command, metadata, attempt, principal, deadline)
            except EventCoreError as error:
                delay = self._backoff(error, attempt, None)
            else:
                if isinstance(written, Phase):  # the deadline passed after this phase
                    raise _late(command, budget, attempt, written)
                return _result(written, attempt, started)
            if deadline is not None and deadline - time.monotonic() <= delay:
                raise _late(command, budget, attempt, Phase.BACKOFF)
            self.sleep(delay)
            attempt += 1

    def steps(
        self,
        command: Command[Any],
        *,
        metadata: Metadata | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        user_id: str | None = None,
        user: Any = None,
    ) -> Steps:
        """The phases of running ``command``, one per ``next()``; returns the ExecutionResult."""
        phases = self._phases(
            command, metadata, correlation_id, causation_id, user_id, user, self._watch(command)
        )
        try:
            while True:
                try:
                    phase, attempt, streams, delay, error = next(phases)
                except StopIteration as done:
                    result: ExecutionResult = done.value
                    return result
                yield Step(phase, attempt, tuple(streams), delay, error)
        finally:
            phases.close()

    def _phases(
        self,
        command: Command[Any],
        metadata: Metadata | None,
        correlation_id: str | None,
        causation_id: str | None,
        user_id: str | None,
        user: Any = None,
        watch: CommandWatch | None = None,
    ) -> Generator[_RawStep, None, ExecutionResult]:
        """The phases as plain tuples (phase, attempt, streams, delay, error); ``streams`` may be the live
        dict of versions read, valid until the next ``next()``."""
        metadata, principal = _begin(command, metadata, correlation_id, causation_id, user_id, user)
        if watch is not None:
            metadata = watch.begin(metadata)
        started = time.perf_counter()
        # the attempts run in this generator (not a nested one): one generator frame less per phase
        attempt = 1
        guessing = self._guessing
        try:
            while True:
                guesses = Guesses() if guessing else None
                try:
                    written = yield from self._attempt(command, metadata, attempt, watch, principal, guesses)
                    if not written and self._guessed_wrong(guesses):
                        guessing = False
                        continue
                    result = _result(written, attempt, started)
                    if watch is not None:
                        watch.succeeded(attempt, len(written), result.streams_affected)
                    return result
                except Exception as error:
                    if self._guessed_wrong(guesses):  # any failure may rest on a guess: rerun, real read
                        guessing = False
                        continue
                    if not isinstance(error, EventCoreError):
                        if watch is not None:
                            watch.failed(error, attempt)
                        raise
                    delay = self._backoff(error, attempt, watch)
                    yield (Phase.BACKOFF, attempt, _streams_of(error), delay, error)
                    attempt += 1
        except GeneratorExit:  # the driver stopped early (a timeout reports itself first)
            if watch is not None:
                watch.failed(None, 0)
            raise

    def _backoff(self, error: EventCoreError, attempt: int, watch: CommandWatch | None) -> float:
        """The delay before retrying after ``error``; raises it (attempts recorded) if not retried."""
        if not self.retry.should_retry(error, attempt - 1):
            final = error.with_attempts(attempt)
            if watch is not None:
                watch.failed(final, attempt)
            raise final from error
        delay = self.retry.delay(attempt, self.rng)
        if watch is not None:
            watch.retried(attempt, delay, error)
        return delay

    def _guessed_wrong(self, guesses: Guesses | None) -> bool:
        """Whether the attempt's outcome (anything but a committed write) may rest on a guess; the store
        is told, and the command runs again at once on a real read (see ``_guessing``)."""
        if guesses is None or not guesses.streams:
            return False
        cast(GuessingReads, self.store).guess_missed(guesses.streams)
        return True

    def _watch(self, command: Command[Any]) -> CommandWatch | None:
        if not self.observers:
            return None
        return _watch_type()(self.observers, command)

    def _attempt(
        self,
        command: Command[Any],
        metadata: Metadata,
        attempt: int,
        watch: CommandWatch | None = None,
        principal: Any = None,
        guesses: Guesses | None = None,
        use_snapshot: bool = True,
    ) -> Generator[_RawStep, None, list[StoredEvent]]:
        read = Boundary()
        versions = read.versions
        first_read: list[str] = list(command.read_streams())
        to_read: list[str | Query] = list(first_read)
        query = command.query() if command.__by_query__ else None
        required = command.required_streams() if command.__existing_stream_fields__ else ()
        # a snapshot resumes a fold over streams only: a query's events have no per-stream resume point
        snapshots = self.snapshots if use_snapshot and query is None else None
        start = snapshots.start(command, first_read) if snapshots is not None else None
        if query is not None:
            to_read.append(query)  # after the streams: see Boundary
        streams_only = query is None  # whether to_read holds stream ids only (no filtering then)
        for iteration in range(self.max_discovery_iterations):
            mark = time.time_ns() if watch is not None else 0
            found = start.read(self.store) if start is not None and iteration == 0 else None
            if found is not None:
                read.add_streams(found)
            else:
                start = None  # no snapshot, or one that does not fit the store: fold from scratch
                if streams_only:
                    read.read_streams(self.store, to_read, guesses)  # type: ignore[arg-type]
                else:
                    read.read_streams(self.store, [i for i in to_read if isinstance(i, str)], guesses)
                    for item in to_read:
                        if isinstance(item, Query):
                            read.read_query(self.store, item)
            if watch is not None:
                watch.phase("read", attempt, mark, versions)
            yield (Phase.READ, attempt, versions, 0.0, None)
            mark = time.time_ns() if watch is not None else 0

            state = _fold(command, read, required, command.initial_state() if start is None else start.state)
            required = ()
            if snapshots is not None and iteration == 0:
                position = max(read.last_position, start.snapshot.position if start else 0)
                snapshots.offer(command, first_read, state, versions, read.folded, position)
            to_read = _unread(read, command.resolve(state)) if command.__resolves__ else []
            streams_only = not to_read or not any(isinstance(item, Query) for item in to_read)
            if not to_read:
                writes, added = self._decide(command, state, versions, metadata)
                to_read = list(added)
            if watch is not None:
                watch.phase("decide", attempt, mark, versions)
            if not to_read:
                break
            if start is not None:  # streams discovered after a snapshot: fold everything in position order
                return (
                    yield from self._attempt(command, metadata, attempt, watch, principal, use_snapshot=False)
                )
            yield (Phase.DECIDE, attempt, versions, 0.0, None)
        else:
            raise MaxIterationsExceeded(self.max_discovery_iterations)

        condition = read.condition()
        self._check_writes(command, writes, read, condition, principal)
        yield (Phase.DECIDE, attempt, versions, 0.0, None)
        if not writes:
            return []
        return self._commit(writes, metadata, versions, condition, attempt, watch)

    def _attempt_plain(
        self,
        command: Command[Any],
        metadata: Metadata,
        attempt: int,
        principal: Any,
        deadline: float | None,
    ) -> list[StoredEvent] | Phase:
        """``_attempt`` for a command on the plain path (streams only: see ``_plain``), as one call.
        Returns the events written, or the phase after which ``deadline`` passed."""
        read = Boundary()
        versions = read.versions
        to_read: Sequence[str] = command.read_streams()
        required = command.required_streams() if command.__existing_stream_fields__ else ()
        for _ in range(self.max_discovery_iterations):
            read.read_streams(self.store, to_read)
            if deadline is not None and deadline <= time.monotonic():
                return Phase.READ
            state = _fold(command, read, required, command.initial_state())
            required = ()
            writes, to_read = self._decide(command, state, versions, metadata)
            if not to_read:
                break
            if deadline is not None and deadline <= time.monotonic():
                return Phase.DECIDE
        else:
            raise MaxIterationsExceeded(self.max_discovery_iterations)
        self._check_writes(command, writes, read, None, principal)
        if deadline is not None and deadline <= time.monotonic():
            return Phase.DECIDE
        if not writes:
            return []
        return self._commit(writes, metadata, versions, None, attempt, None)

    def _decide(
        self, command: Command[Any], state: Any, versions: dict[str, int], metadata: Metadata
    ) -> tuple[list[EventToWrite], list[StreamId]]:
        """``handle``'s writes, and the streams it added to the boundary (compatibility: if any, the
        writes are dropped and the command decides again on the wider read)."""
        ctx = CommandContext(versions, self.clock(), metadata)
        return list(command.handle(state, ctx)), ctx._added

    def _check_writes(
        self,
        command: Command[Any],
        writes: list[EventToWrite],
        read: Boundary,
        condition: AppendCondition | None,
        principal: Any,
    ) -> None:
        """Refuse writes that are not ``emit``s, or go to a stream not read (unless a query's condition
        guards them), and ask the policy, if any."""
        versions = read.versions
        for write in writes:
            if type(write) is not EventToWrite and not isinstance(write, EventToWrite):
                raise TypeError(
                    f"{type(command).__name__}.handle must return emit(...) writes, got {write!r}"
                )
            if (
                condition is None
                and write.stream_id not in versions
                and StreamId(write.stream_id) not in versions
            ):
                raise StreamAccessDenied(write.stream_id, versions)
        if self.policy is not None:
            written_to = tuple(dict.fromkeys(str(w.stream_id) for w in writes))
            seen = read.streams_seen() if condition is not None else tuple(map(str, versions))
            self.policy.authorize(principal, command, StreamAccess(seen, written_to, read.query))

    def _commit(
        self,
        writes: list[EventToWrite],
        metadata: Metadata,
        versions: dict[str, int],
        condition: AppendCondition | None,
        attempt: int,
        watch: CommandWatch | None,
    ) -> list[StoredEvent]:
        """Append ``writes`` (with the command's metadata where they have none) at the versions read."""
        writes = [w if w.metadata is not None else replace(w, metadata=metadata) for w in writes]
        expected = {sid: ExpectedVersion.exact(v) for sid, v in versions.items()}
        mark = time.time_ns() if watch is not None else 0
        try:
            if condition is None:
                written = list(self.store.append(writes, expected))
            else:  # streams the query-based decision writes but did not read: the condition guards them
                written = list(self.store.append(writes, expected, condition=condition))  # type: ignore[call-arg]
        except VersionConflict as conflict:
            if watch is not None:
                watch.phase("commit", attempt, mark, conflict.streams, ok=False)
            raise ConcurrencyConflict(conflict.streams) from conflict
        except AppendConditionFailed as failed:
            streams = tuple(dict.fromkeys(str(w.stream_id) for w in writes))
            if watch is not None:
                watch.phase("commit", attempt, mark, streams, ok=False)
            raise ConcurrencyConflict(streams, _condition_message(failed)) from failed
        if watch is not None:
            watch.phase("commit", attempt, mark, versions)
        return written


def _begin(
    command: Command[Any],
    metadata: Metadata | None,
    correlation_id: str | None,
    causation_id: str | None,
    user_id: str | None,
    user: Any,
) -> tuple[Metadata, Any]:
    """The metadata a command's events carry, and the principal the policy is asked about."""
    if not isinstance(command, Command):
        raise TypeError(f"expected a Command instance, got {type(command).__name__}")
    if user_id is None and user is not None:  # the principal is recorded as the events' user
        user_id = user if isinstance(user, str) else getattr(user, "id", None)
    if metadata is None:
        metadata = Metadata(
            correlation_id=correlation_id or new_correlation_id(),
            causation_id=causation_id,
            user_id=user_id,
        )
    return metadata, user if user is not None else metadata.user_id


def _fold(command: Command[Any], read: Boundary, required: Sequence[str], initial: Any) -> Any:
    """The state folded from what ``read`` holds, once every required stream is known to have events."""
    if required:
        versions = read.versions
        for sid in required:
            if versions.get(sid) == 0:
                raise StreamNotFound(sid)
    return fold_events(command, initial, read.events(), accepts_unknown=command.accepts_unknown_events)


def _result(written: list[StoredEvent], attempt: int, started: float) -> ExecutionResult:
    streams = tuple(dict.fromkeys(map(_stream_of, written)))
    return ExecutionResult(written, streams, attempt, time.perf_counter() - started)


def _late(command: Command[Any], budget: float | None, attempt: int, phase: Phase) -> Timeout:
    return Timeout(
        f"{type(command).__name__} did not finish within {budget} s "
        f"(attempt {attempt}, last phase {phase.value}); nothing was written"
    )


def _unread(read: Boundary, items: Iterable[str | Query]) -> list[str | Query]:
    """What a resolver named that was not read yet, validated (stream ids, then queries)."""
    if isinstance(items, (str, Query)):
        items = [items]
    fresh: dict[str | Query, None] = {}
    for item in items:
        key: str | Query
        if isinstance(item, Query):
            key = item
        elif isinstance(item, str):
            key = StreamId(item)
        else:
            raise TypeError(f"resolve() must return stream ids or Query objects, got {item!r}")
        if not read.knows(key):
            fresh[key] = None
    return list(fresh)


def _condition_message(failed: AppendConditionFailed) -> str:
    return (
        f"events the decision depends on changed since they were read (an event matching its query was "
        f"committed at position {failed.position}, after {failed.after}); re-read and retry"
    )


@functools.cache
def _watch_type() -> type[CommandWatch]:
    """CommandWatch, imported on the first observed command (an import statement per command cost
    more than the metrics themselves)."""
    from ..observability._hook import CommandWatch

    return CommandWatch


_stream_of = operator.attrgetter("stream_id")


def _position(event: StoredEvent) -> int:
    return event.position


def _streams_of(error: EventCoreError) -> tuple[str, ...]:
    return tuple(getattr(error, "streams", ()))


def _utc_now() -> datetime:
    return datetime.now(UTC)
