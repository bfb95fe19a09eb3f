"""The executor: read -> fold -> decide -> commit, retried on conflict.

The phases are explicit. :meth:`Executor.steps` is a generator that performs one phase per ``next()``,
so a simulator can interleave many commands deterministically; :meth:`Executor.execute` simply drives it
to the end, sleeping through backoffs and enforcing the timeout.
"""

from __future__ import annotations

import enum
import heapq
import random
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._deadline import reset_deadline, set_deadline
from ._guessing import Guesses, GuessingReads
from .authorization import CommandPolicy, StreamAccess
from .command import Command, CommandContext
from .errors import (
    ConcurrencyConflict,
    EventCoreError,
    MaxIterationsExceeded,
    StreamAccessDenied,
    StreamNotFound,
    Timeout,
    UnknownEventFolded,
    VersionConflict,
)
from .events import EventToWrite, ExpectedVersion, Metadata, StoredEvent
from .ids import StreamId, new_correlation_id
from .registry import RetiredEvent, UnknownEvent
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
        # a store that may guess unseen streams empty (see _guessing): not with snapshots, which keep state
        self._guessing = snapshots is None and isinstance(store, GuessingReads)

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
        # Drive the raw phases rather than steps(): same phases and checks, without building a Step per phase.
        watch = self._watch(command)
        phases = self._phases(command, metadata, correlation_id, causation_id, user_id, user, watch)
        bounded = set_deadline(deadline)  # the phases' store calls get what is left of the budget
        try:
            while True:
                phase, attempt, _, delay, _ = next(phases)
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= delay:
                        late = Timeout(
                            f"{type(command).__name__} did not finish within {budget} s "
                            f"(attempt {attempt}, last phase {phase.value}); nothing was written"
                        )
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
            reset_deadline(bounded)

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
        principal = user if user is not None else metadata.user_id
        if watch is not None:
            metadata = watch.begin(metadata)
        started = time.perf_counter()
        try:
            return (yield from self._attempts(command, metadata, watch, started, principal))
        except GeneratorExit:  # the driver stopped early (a timeout reports itself first)
            if watch is not None:
                watch.failed(None, 0)
            raise

    def _attempts(
        self,
        command: Command[Any],
        metadata: Metadata,
        watch: CommandWatch | None,
        started: float,
        principal: Any,
    ) -> Generator[_RawStep, None, ExecutionResult]:
        attempt = 1
        guessing = self._guessing
        while True:
            guesses = Guesses() if guessing else None
            try:
                written = yield from self._attempt(command, metadata, attempt, watch, principal, guesses)
                if guessing and not written and self._guessed_wrong(guesses):
                    guessing = False
                    continue
                streams = tuple(dict.fromkeys(e.stream_id for e in written))
                if watch is not None:
                    watch.succeeded(attempt, len(written), streams)
                return ExecutionResult(written, streams, attempt, time.perf_counter() - started)
            except EventCoreError as error:
                if guessing and self._guessed_wrong(guesses):
                    guessing = False
                    continue
                if not self.retry.should_retry(error, attempt - 1):
                    final = error.with_attempts(attempt)
                    if watch is not None:
                        watch.failed(final, attempt)
                    raise final from error
                delay = self.retry.delay(attempt, self.rng)
                if watch is not None:
                    watch.retried(attempt, delay, error)
                yield (Phase.BACKOFF, attempt, _streams_of(error), delay, error)
                attempt += 1
            except Exception as error:
                if guessing and self._guessed_wrong(guesses):
                    guessing = False
                    continue
                if watch is not None:
                    watch.failed(error, attempt)
                raise

    def _guessed_wrong(self, guesses: Guesses | None) -> bool:
        """Whether the attempt's outcome (anything but a committed write) may rest on a guess; the store
        is told, and the command runs again at once on a real read (see ``_guessing``)."""
        if guesses is None or not guesses.streams:
            return False
        self.store.guess_missed(guesses.streams)  # type: ignore[attr-defined]
        return True

    def _watch(self, command: Command[Any]) -> CommandWatch | None:
        if not self.observers:
            return None
        from ..observability._hook import CommandWatch as Watch  # loaded only when observers are set

        return Watch(self.observers, command)

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
        versions: dict[str, int] = {}
        by_stream: list[list[StoredEvent]] = []
        to_read = list(command.read_streams())
        required = command.required_streams() if command.__existing_stream_fields__ else ()
        snapshots = self.snapshots if use_snapshot else None
        first_read = list(to_read)
        start = snapshots.start(command, first_read) if snapshots is not None else None
        for iteration in range(self.max_discovery_iterations):
            mark = time.time_ns() if watch is not None else 0
            if to_read:
                found = start.read(self.store) if start is not None and iteration == 0 else None
                if found is None:
                    start = None  # no snapshot, or one that does not fit the store: fold from scratch
                    if guesses is None:
                        found = self.store.read_streams(to_read)
                    else:
                        found, guessed = self.store.read_streams_guessing(to_read)  # type: ignore[attr-defined]
                        guesses.streams.update(guessed)
                versions.update(found.versions)
                if found.events:
                    by_stream.append(found.events)
            if watch is not None:
                watch.phase("read", attempt, mark, versions)
            yield (Phase.READ, attempt, versions, 0.0, None)
            mark = time.time_ns() if watch is not None else 0

            if required:
                for sid in required:
                    if versions.get(sid) == 0:
                        raise StreamNotFound(sid)
                required = ()
            state = command.initial_state() if start is None else start.state
            if len(by_stream) < 2:
                events: Iterable[StoredEvent] = by_stream[0] if by_stream else ()
            else:
                events = heapq.merge(*by_stream, key=_position)
            refuse_unknown = not command.accepts_unknown_events
            for event in events:
                if type(event.payload) is RetiredEvent:
                    continue  # a retired event's type is gone from the code: folds drop it
                if refuse_unknown and type(event.payload) is UnknownEvent:
                    raise UnknownEventFolded(
                        f"{type(command).__name__} would fold event {event.event_id} of stream "
                        f"{event.stream_id!r} (version {event.version}), whose type {event.event_type!r} "
                        "is not registered; import the module that defines it, or set "
                        "accepts_unknown_events = True on the command to fold UnknownEvent payloads"
                    )
                state = command.apply(state, event)
            if snapshots is not None and iteration == 0:
                position = max(
                    [b[-1].position for b in by_stream] + [start.snapshot.position if start else 0]
                )
                folded = sum(len(b) for b in by_stream)
                snapshots.offer(command, first_read, state, versions, folded, position)
            ctx = CommandContext(versions, self.clock(), metadata)
            writes = list(command.handle(state, ctx))
            if watch is not None:
                watch.phase("decide", attempt, mark, versions)
            to_read = ctx._added
            if not to_read:
                break
            if start is not None:  # streams discovered after a snapshot: fold everything in position order
                return (
                    yield from self._attempt(command, metadata, attempt, watch, principal, use_snapshot=False)
                )
            yield (Phase.DECIDE, attempt, versions, 0.0, None)
        else:
            raise MaxIterationsExceeded(self.max_discovery_iterations)

        for write in writes:
            if not isinstance(write, EventToWrite):
                raise TypeError(
                    f"{type(command).__name__}.handle must return emit(...) writes, got {write!r}"
                )
            if write.stream_id not in versions and StreamId(write.stream_id) not in versions:
                raise StreamAccessDenied(write.stream_id, versions)
        if self.policy is not None:
            written_to = tuple(dict.fromkeys(str(w.stream_id) for w in writes))
            self.policy.authorize(principal, command, StreamAccess(tuple(map(str, versions)), written_to))
        yield (Phase.DECIDE, attempt, versions, 0.0, None)
        if not writes:
            return []
        writes = [
            w if w.metadata is not None else EventToWrite(w.stream_id, w.event, metadata) for w in writes
        ]
        expected = {sid: ExpectedVersion.exact(v) for sid, v in versions.items()}
        mark = time.time_ns() if watch is not None else 0
        try:
            written = list(self.store.append(writes, expected))
        except VersionConflict as conflict:
            if watch is not None:
                watch.phase("commit", attempt, mark, conflict.streams, ok=False)
            raise ConcurrencyConflict(conflict.streams) from conflict
        if watch is not None:
            watch.phase("commit", attempt, mark, versions)
        return written


def _position(event: StoredEvent) -> int:
    return event.position


def _streams_of(error: EventCoreError) -> tuple[str, ...]:
    return tuple(getattr(error, "streams", ()))


def _utc_now() -> datetime:
    return datetime.now(UTC)
