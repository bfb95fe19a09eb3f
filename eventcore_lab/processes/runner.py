"""The process runner: reads the log from a checkpoint and turns events into process steps.

Delivery is at least once: the checkpoint is saved after a batch, so a crash replays the events after the
last saved checkpoint. Every step is made harmless to repeat by the process stream itself (see
``_commands``): the runner may therefore crash anywhere, be restarted, or run as several copies.

Per event the runner does one of three things, each one atomic append:

- a trigger of a process manager (by type or stream category): the process reacts (``AdvanceProcess``);
- a ``CommandIssued`` in a process stream: the command runs (``DispatchCommand``);
- a ``CommandSucceeded``/``CommandRejected`` in a process stream: the process hears the outcome.

Deadline events update the :class:`DeadlineScheduler`; :meth:`ProcessRunner.check_deadlines` fires the
due ones.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..core.errors import EventCoreError, InvalidFormat, ProcessingFailed
from ..core.events import Metadata, StoredEvent
from ..core.executor import Executor
from ..core.retry import RetryConfig
from ..projections.checkpoints import CheckpointStore, checkpoints_for
from ._commands import AdvanceProcess, DispatchCommand
from ._record import deadline_key
from .deadlines import DeadlineScheduler
from .events import BOOKKEEPING, DEADLINE_EVENTS, CommandIssued, CommandRejected, CommandSucceeded
from .manager import CommandOutcome, DeadlineReached, ProcessManager, decode_command

log = logging.getLogger("eventcore_lab.processes")


@dataclass
class RunnerStats:
    """What a runner did since it was created."""

    events_seen: int = 0
    advanced: int = 0  #: process steps appended
    dispatched: int = 0  #: issued commands run (succeeded or rejected)
    duplicates: int = 0  #: deliveries that found their marker already in the stream (no-ops)
    deadlines_fired: int = 0
    retriable_failures: int = 0  #: steps that failed after the executor's retries; tried again later


class ProcessRunner:
    """Feeds the log to process managers, runs what they issue, and fires their deadlines.

    ``checkpoints`` defaults to the store's own (a durable store keeps it next to the events, as the
    processes' state is there too). ``clock`` gives ``now`` to processes and deadlines; pass a virtual
    clock for tests and simulations. ``partition=(i, n)`` makes this runner serve only the processes whose
    stream hashes to ``i`` modulo ``n``, so that ``n`` runners can share the work.

    Starting reads the log once up to the checkpoint, to rebuild the pending deadlines (they live only
    in the log); on a very long log that is the price of a restart.
    """

    def __init__(
        self,
        store: Any,
        managers: Sequence[ProcessManager[Any]],
        *,
        name: str = "processes",
        checkpoints: CheckpointStore | None = None,
        clock: Callable[[], datetime] | None = None,
        retry: RetryConfig | None = None,
        executor: Executor | None = None,
        batch_size: int = 200,
        partition: tuple[int, int] = (0, 1),
    ) -> None:
        self.managers = list(managers)
        _check_managers(self.managers)
        index, count = partition
        if not (isinstance(count, int) and count >= 1 and isinstance(index, int) and 0 <= index < count):
            raise InvalidFormat(
                f"partition must be (index, count) with 0 <= index < count, got {partition!r}"
            )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidFormat(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.store = store
        self.name = f"{name}-{index}-of-{count}" if count > 1 else name
        self.partition = (index, count)
        self.clock = clock or _utc_now
        self.executor = executor or Executor(
            store,
            retry=retry or RetryConfig(max_attempts=20, initial_delay=0.001, max_delay=0.05),
            clock=self.clock,
        )
        self.checkpoints = checkpoints if checkpoints is not None else checkpoints_for(store)
        self.batch_size = batch_size
        self.stats = RunnerStats()
        #: The last error that made the runner stop early (the event will be delivered again).
        self.last_error: EventCoreError | None = None
        self.position = self.checkpoints.load(self.name)
        self.deadlines = DeadlineScheduler()
        self.deadlines.rebuild(e for e in self._log(0, self.position) if self._mine(e.stream_id))

    def __repr__(self) -> str:
        names = ", ".join(m.name for m in self.managers)
        pending = len(self.deadlines)
        return f"<ProcessRunner {self.name!r} [{names}] at position {self.position}, {pending} deadlines>"

    # -- feeding the log ----------------------------------------------------------------------------

    def run_until_idle(self, *, max_events: int | None = None) -> int:
        """Handle events until none is left (including those the steps themselves appended).

        Returns the number of events handled. Stops early, keeping the event for the next call, when a
        step fails with a retriable error after the executor's retries (``last_error`` says which).
        """
        handled = 0
        self.last_error = None
        while max_events is None or handled < max_events:
            limit = self.batch_size if max_events is None else min(self.batch_size, max_events - handled)
            batch = self.store.read_all(after=self.position, limit=limit)
            if not batch:
                break
            done = self._handle_batch(batch)
            handled += done
            if done < len(batch):
                break
        return handled

    def step(self) -> bool:
        """Handle the next event only (for simulations that interleave the runner with other work)."""
        batch = self.store.read_all(after=self.position, limit=1)
        self.last_error = None
        return bool(batch) and self._handle_batch(batch) == 1

    def _handle_batch(self, batch: list[StoredEvent]) -> int:
        done = 0
        try:
            for event in batch:
                self._handle(event)
                self.position = event.position
                done += 1
        except EventCoreError as error:
            if not error.retriable:
                raise
            self.stats.retriable_failures += 1
            self.last_error = error
            log.info(
                "process runner %r will retry the event after position %s: %s",
                self.name,
                self.position,
                error,
            )
        finally:
            if done:
                self.checkpoints.save(self.name, self.position)
        return done

    def _handle(self, event: StoredEvent) -> None:
        self.stats.events_seen += 1
        payload = event.payload
        for manager in self.managers:
            if isinstance(payload, BOOKKEEPING) and manager.key_of(event.stream_id) is not None:
                if self._mine(event.stream_id):
                    self._bookkeeping(manager, event)
                return
        for manager in self.managers:
            if not manager.concerns(event):
                continue
            key = self._correlate(manager, event)
            if key is None:
                continue
            process = manager.stream_for(key)
            if self._mine(process):
                self._advance(manager, process, payload, str(event.event_id), str(event.event_id))

    def _bookkeeping(self, manager: ProcessManager[Any], event: StoredEvent) -> None:
        payload = event.payload
        if isinstance(payload, DEADLINE_EVENTS):
            self.deadlines.observe(event)
        elif isinstance(payload, CommandIssued):
            self._dispatch(manager, event, payload)
        elif isinstance(payload, CommandSucceeded | CommandRejected):
            ok = isinstance(payload, CommandSucceeded)
            outcome = CommandOutcome(
                payload.command_id,
                payload.tag,
                ok,
                "" if ok else payload.reason,  # type: ignore[union-attr]
                "" if ok else payload.code,  # type: ignore[union-attr]
            )
            self._advance(manager, str(event.stream_id), outcome, str(event.event_id), str(event.event_id))

    def _correlate(self, manager: ProcessManager[Any], event: StoredEvent) -> str | None:
        try:
            key = manager.correlate(event)
        except Exception as exc:
            raise _fault(manager, "correlate", event, exc) from exc
        if key is not None and (not isinstance(key, str) or not key.strip()):
            raise _fault(
                manager,
                "correlate",
                event,
                InvalidFormat(f"a process key is a non-empty string, got {key!r}"),
            )
        return key

    def _advance(
        self, manager: ProcessManager[Any], process: str, trigger: Any, key: str, causation: str
    ) -> None:
        command = AdvanceProcess(process, manager, trigger, key)
        result = self._execute(
            manager,
            command,
            Metadata(correlation_id=str(process), causation_id=causation, custom={"command": manager.name}),
        )
        if result:
            self.stats.advanced += 1
        else:
            self.stats.duplicates += 1

    def _dispatch(self, manager: ProcessManager[Any], event: StoredEvent, issued: CommandIssued) -> None:
        try:
            inner = decode_command(manager.commands, issued.command_type, issued.arguments)
        except InvalidFormat as exc:
            raise _fault(manager, "commands", event, exc) from exc
        caused_by = str(event.event_id) if issued.caused_by.startswith("deadline:") else issued.caused_by
        command = DispatchCommand(event.stream_id, manager, inner, issued.command_id, issued.tag, caused_by)
        metadata = Metadata(
            correlation_id=str(event.stream_id),
            causation_id=str(event.event_id),
            custom={"command": issued.command_type},  # the label of the commit on a timeline
        )
        if self._execute(manager, command, metadata):
            self.stats.dispatched += 1
        else:
            self.stats.duplicates += 1

    def _execute(self, manager: ProcessManager[Any], command: Any, metadata: Metadata) -> int:
        try:
            return len(self.executor.execute(command, metadata=metadata).events_written)
        except EventCoreError as error:
            if error.retriable:
                raise
            raise ProcessingFailed(
                f"process manager {manager.name!r} failed on stream {command.process!r}: {error}"
            ) from error
        except Exception as exc:  # the manager's own code failed: a bug, not something to retry
            raise ProcessingFailed(
                f"process manager {manager.name!r} failed on stream {command.process!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    # -- deadlines ------------------------------------------------------------------------------------

    def check_deadlines(self, now: datetime | None = None) -> int:
        """Fire every pending deadline due at ``now`` (default: the runner's clock); return how many fired.

        A deadline whose firing fails with a retriable error stays pending and is tried on the next call.
        Call :meth:`run_until_idle` first, so that the scheduler has seen the latest deadline events.
        """
        moment = self.clock() if now is None else now
        fired = 0
        for due in self.deadlines.due(moment):
            manager = self._manager_of(due.process)
            trigger = DeadlineReached(due.deadline_id, due.name, due.due_at, moment)
            command = AdvanceProcess(due.process, manager, trigger, deadline_key(due.deadline_id))
            try:
                written = self._execute(
                    manager,
                    command,
                    Metadata(
                        correlation_id=str(due.process),
                        causation_id=due.scheduled_by or None,
                        custom={"command": f"{manager.name} ({due.name} deadline)"},
                    ),
                )
            except EventCoreError as error:
                if not error.retriable:
                    raise
                self.deadlines.failed_attempts += 1
                self.stats.retriable_failures += 1
                self.last_error = error
                continue
            self.deadlines.resolved(due.process, due.deadline_id)
            if written:
                fired += 1
                self.stats.deadlines_fired += 1
        return fired

    def next_deadline(self) -> datetime | None:
        return self.deadlines.next_due()

    # -- running live ----------------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, poll_interval: float = 0.1) -> None:
        """Follow the log and the clock until ``stop`` is set (for a service or a subprocess)."""
        while not stop.is_set():
            busy = self.run_until_idle() + self.check_deadlines()
            if not busy:
                self.store.wait_for_events(self.position, poll_interval)

    # -- looking at processes ---------------------------------------------------------------------------

    def processes(self) -> Any:
        """Every process of the runner's managers as a DataFrame (see :func:`processes_frame`)."""
        from .frames import processes_frame

        return processes_frame(self.store, self.managers)

    def _manager_of(self, process: str) -> ProcessManager[Any]:
        for manager in self.managers:
            if manager.key_of(process) is not None:
                return manager
        raise InvalidFormat(f"no process manager owns the stream {process!r}")

    def _mine(self, stream_id: str) -> bool:
        index, count = self.partition
        return count == 1 or zlib.crc32(stream_id.encode()) % count == index

    def _log(self, after: int, until: int) -> Iterable[StoredEvent]:
        position = after
        while position < until:
            batch = self.store.read_all(after=position, limit=1000)
            if not batch:
                return
            for event in batch:
                if event.position > until:
                    return
                yield event
            position = batch[-1].position


def _check_managers(managers: Sequence[ProcessManager[Any]]) -> None:
    if not managers:
        raise InvalidFormat("a process runner needs at least one process manager")
    for manager in managers:
        if not isinstance(manager, ProcessManager):
            raise InvalidFormat(f"expected ProcessManager instances, got {type(manager).__name__}")
        manager.check()
    names = [m.name for m in managers]
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i != j and (a == b or b.startswith(f"{a}-")):
                raise InvalidFormat(
                    f"process names {a!r} and {b!r} clash: one's streams would look like the other's"
                )


def _fault(
    manager: ProcessManager[Any], what: str, event: StoredEvent, exc: BaseException
) -> ProcessingFailed:
    return ProcessingFailed(
        f"process manager {manager.name!r} failed in {what} on the event at position {event.position} "
        f"(stream {event.stream_id!r}, type {event.event_type}): {type(exc).__name__}: {exc}"
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)
