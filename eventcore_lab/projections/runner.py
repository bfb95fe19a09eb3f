"""The projection runner: catch up from a checkpoint, then follow the log live, one batch at a time.

This is the imperative shell around a projection. It owns the reading, the checkpoint and the thread;
the projection only applies events. The checkpoint is saved after the events before it were applied,
never before, so a restart continues where the last run really stopped.
"""

from __future__ import annotations

import bisect
import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..core.errors import EventCoreError, InvalidFormat, ProcessingFailed, ProjectionError, RebuildFailed
from ..core.events import StoredEvent
from ..stores.base import EventStore, FilteredReads
from ._progress import progress_bar
from .base import fresh_copy, handled_types

if TYPE_CHECKING:
    from ..snapshots import ProjectionSnapshots
from .checkpoints import CheckpointStore, MemoryCheckpoints

log = logging.getLogger("eventcore_lab.projections")


class ErrorPolicy(enum.StrEnum):
    """What the runner does when the projection raises on an event."""

    STOP = "stop"  #: raise ProcessingFailed; the checkpoint stays on the last applied event
    SKIP = "skip"  #: log, record the event in ``runner.skipped``, and go on
    RETRY = "retry"  #: try the event again (``retries`` times, with backoff), then stop


@dataclass(frozen=True)
class SkippedEvent:
    """An event the projection failed on and the runner skipped (a dead letter)."""

    position: int
    stream_id: str
    version: int
    event_type: str
    error: str


@dataclass(frozen=True)
class Lag:
    """How far a read model trails the log: positions not yet applied, and the age of the oldest one."""

    events: int
    seconds: float
    position: int
    head: int


def describe(event: StoredEvent) -> str:
    return (
        f"position {event.position} (stream {event.stream_id!r}, version {event.version}, "
        f"type {event.event_type})"
    )


def _failure(name: str, event: StoredEvent, exc: BaseException, attempts: int) -> ProcessingFailed:
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    error = ProcessingFailed(
        f"projection {name!r} failed on the event at {describe(event)}{tries}: {type(exc).__name__}: {exc}"
    )
    error.event = event  # type: ignore[attr-defined]
    error.position = event.position  # type: ignore[attr-defined]
    error.stream_id = event.stream_id  # type: ignore[attr-defined]
    error.event_type = event.event_type  # type: ignore[attr-defined]
    return error


class ProjectionRunner:
    """Feeds a store's events to one projection and keeps its checkpoint.

    ``run_until_caught_up()`` replays to the current head and returns (what a notebook wants);
    ``start()``/``stop()`` follow the log live in a background thread. Read the projection through
    ``runner.projection`` (or ``runner.query(fn)`` to read under the runner's lock while it runs live).

    A :class:`~eventcore_lab.projections.base.Projection` that keeps the default ``apply`` reads only
    the event types it handles (``event_types=`` chooses others, ``filtered=False`` reads every event);
    the store filters them, and the checkpoint still moves to the last position the store looked at,
    so it reaches the head.

    The checkpoint store defaults to memory: a durable checkpoint only makes sense for a read model that
    is durable too, otherwise a restarted process would skip the events its empty projection needs.
    """

    def __init__(
        self,
        store: EventStore,
        projection: Any,
        *,
        checkpoints: CheckpointStore | None = None,
        name: str | None = None,
        batch_size: int = 1000,
        error_policy: ErrorPolicy | str = ErrorPolicy.STOP,
        retries: int = 3,
        retry_delay: float = 0.05,
        factory: Callable[[], Any] | None = None,
        poll_interval: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
        observers: Sequence[Any] = (),
        event_types: Iterable[str | type] | None = None,
        filtered: bool = True,
        snapshots: ProjectionSnapshots | None = None,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InvalidFormat(f"batch_size must be an int >= 1, got {batch_size!r}")
        if not isinstance(retries, int) or retries < 0:
            raise InvalidFormat(f"retries must be an int >= 0, got {retries!r}")
        try:
            self.error_policy = ErrorPolicy(error_policy)
        except ValueError:
            choices = ", ".join(p.value for p in ErrorPolicy)
            raise InvalidFormat(f"unknown error_policy {error_policy!r}; choose one of {choices}") from None
        if not callable(getattr(projection, "apply", None)):
            kind = type(projection).__name__
            raise InvalidFormat(f"a projection needs an apply(event) method; {kind} has none")
        self.store = store
        self.name = name or getattr(projection, "name", "") or type(projection).__name__
        self.checkpoints: CheckpointStore = checkpoints if checkpoints is not None else MemoryCheckpoints()
        self.batch_size = batch_size
        self.retries = retries
        self.retry_delay = retry_delay
        self.poll_interval = poll_interval
        self._sleep = sleep
        #: Told after every batch how many events were applied and the lag (eventcore_lab.observability).
        self.observers = tuple(observers)
        self._factory = factory
        self._projection = projection
        #: The event types read (None: every event); by default those a :class:`Projection` handles.
        self.event_types: tuple[str | type, ...] | None = (
            handled_types(projection) if event_types is None else tuple(event_types)
        )
        if not filtered:
            self.event_types = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The exception that ended the live thread, if one did.
        self.error: BaseException | None = None
        #: Events skipped under ``error_policy="skip"``, oldest first.
        self.skipped: list[SkippedEvent] = []
        #: Events applied by this runner (skipped ones not counted).
        self.applied = 0
        #: The last position applied (or skipped); the next read starts after it.
        self.position = self.checkpoints.load(self.name)
        #: Snapshots of the projection's state (``every`` applied events); a fitting one is resumed from.
        self.snapshots = snapshots
        self._since_snapshot = 0
        if snapshots is not None:
            resumed = snapshots.restore(projection, self.name, store)
            if resumed is not None:
                self.position = resumed  # the state is the snapshot's: continue right after it

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ProjectionRunner {self.name!r} at position {self.position}, {state}>"

    # -- reading the read model --------------------------------------------------------------------

    @property
    def projection(self) -> Any:
        """The read model being served (after a rebuild: the new one)."""
        return self._projection

    def query(self, fn: Callable[[Any], Any]) -> Any:
        """``fn(projection)`` under the runner's lock, so a live runner cannot change it halfway."""
        with self._lock:
            return fn(self._projection)

    def lag(self) -> Lag:
        """Positions between the checkpoint and the head, and how long the oldest unapplied event waits.

        On stores whose positions have gaps (PostgreSQL) ``events`` counts positions, an upper bound.
        """
        head = self.store.head()
        position = self.position
        if head <= position:
            return Lag(0, 0.0, position, head)
        pending = self.store.read_all(after=position, limit=1)
        seconds = (datetime.now(UTC) - pending[0].recorded_at).total_seconds() if pending else 0.0
        return Lag(head - position if pending else 0, max(seconds, 0.0), position, head)

    def report_lag(self, events: int = 0) -> Lag:
        """Measure the lag, tell the observers (with ``events`` newly applied), and return it."""
        from ..observability._hook import notify
        from ..observability.events import ProjectionProgress

        lag = self.lag()
        notify(self.observers, ProjectionProgress(self.name, events, self.position, lag.events, lag.seconds))
        return lag

    # -- catching up -------------------------------------------------------------------------------

    def run_until_caught_up(self, *, until: int | None = None, progress: bool | None = None) -> int:
        """Apply every event up to the head as of now (or up to position ``until``); return how many.

        Raises ProcessingFailed (PR001) naming the failing event under the stop and retry policies;
        the checkpoint then holds the last event that was applied.
        """
        target = self.store.head() if until is None else until
        before = self.applied + len(self.skipped)
        with progress_bar(max(target - self.position, 0), f"replay {self.name}", progress) as bar:
            while self.position < target:
                moved = self._step(target)
                if not moved:
                    break
                bar.update(moved)
        return self.applied + len(self.skipped) - before

    def _step(self, target: int | None) -> int:
        """Read and apply one batch; return how many positions the checkpoint moved (0: none)."""
        with self._lock:
            start = self.position
            batch, scanned = self._read()
            if target is not None and scanned > target:
                positions = [e.position for e in batch]
                batch = batch[: bisect.bisect_right(positions, target)]
                scanned = target
            self._apply_batch(batch, scanned)
            return self.position - start

    def _read(self) -> tuple[list[StoredEvent], int]:
        """The next batch, and the position the store looked up to (past events filtered out)."""
        if not self.event_types or not isinstance(self.store, FilteredReads):
            batch = self.store.read_all(after=self.position, limit=self.batch_size)
            return batch, batch[-1].position if batch else self.position
        read = self.store.read_filtered(
            after=self.position, limit=self.batch_size, event_types=self.event_types
        )
        return read.events, read.position

    def _apply_batch(self, batch: list[StoredEvent], scanned: int = 0) -> None:
        apply = self._projection.apply
        skipped_before = len(self.skipped)
        count = len(batch)
        handled = 0  # events applied or skipped; batch[handled] is the next one to try
        try:
            while handled < count:
                index = handled
                try:
                    for index in range(handled, count):
                        apply(batch[index])
                    handled = count
                except Exception as exc:  # the projection's error: apply the policy to this event
                    handled = index
                    self._recover(batch[index], exc)
                    handled = index + 1
        finally:
            # reached with everything handled, or with ProcessingFailed from _recover, in which case
            # batch[handled] was not applied and the checkpoint stays before it
            self.applied += handled - (len(self.skipped) - skipped_before)
            moved = self.position
            if handled:
                self.position = batch[handled - 1].position
            if handled == count and scanned > self.position:
                self.position = scanned  # every event up to here that this projection reads is applied
            if self.position != moved:
                self._save()
            if self.snapshots is not None and handled:
                self._since_snapshot += handled
                if self._since_snapshot >= self.snapshots.every:
                    self.snapshots.save(self._projection, self.name, batch[handled - 1])
                    self._since_snapshot = 0
            if self.observers and self.position != moved:
                self.report_lag(handled)

    def _recover(self, event: StoredEvent, exc: Exception) -> None:
        """Retry, skip or stop on ``event``; return only if the runner may go on after it."""
        attempts = 1
        if self.error_policy is ErrorPolicy.RETRY:
            delay = self.retry_delay
            while attempts <= self.retries:
                self._sleep(delay)
                delay *= 2
                attempts += 1
                try:
                    self._projection.apply(event)
                    return
                except Exception as again:
                    exc = again
        if self.error_policy is ErrorPolicy.SKIP:
            log.warning("projection %r skipped the event at %s: %s", self.name, describe(event), exc)
            self.skipped.append(
                SkippedEvent(event.position, event.stream_id, event.version, event.event_type, repr(exc))
            )
            return
        raise _failure(self.name, event, exc, attempts) from exc

    def _save(self) -> None:
        try:
            self.checkpoints.save(self.name, self.position)
        except EventCoreError:
            raise
        except Exception as exc:
            raise ProjectionError(f"saving checkpoint of {self.name!r} failed: {exc}") from exc

    # -- live --------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> ProjectionRunner:
        """Follow the log in a background thread until :meth:`stop` (or an error, kept in ``error``)."""
        if self.running:
            return self
        self._stop.clear()
        self.error = None
        self._thread = threading.Thread(target=self._live, name=f"projection-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _live(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._step(None):
                    self.store.wait_for_events(self.position, self.poll_interval)
        except BaseException as exc:  # kept for the caller: a daemon thread has nowhere to raise
            self.error = exc
            log.error("projection %r stopped: %s", self.name, exc)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the live thread after its current batch; the checkpoint is saved with that batch."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise ProjectionError(f"projection {self.name!r} did not stop within {timeout} s")
        self._thread = None

    def wait_until(self, position: int, timeout: float = 5.0) -> bool:
        """Block until a live runner applied ``position`` (True) or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        while self.position < position:
            if self.error is not None or time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def __enter__(self) -> ProjectionRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- rebuild -----------------------------------------------------------------------------------

    def rebuild(self, factory: Callable[[], Any] | None = None, *, progress: bool | None = None) -> Any:
        """Replay the whole log into a new projection, then swap it in; return the new projection.

        Until the swap, ``runner.projection`` keeps serving the old read model (and a live runner keeps
        updating it). The last few events are applied to the new one under the lock, so the swap loses
        nothing. If the replay fails, the old read model stays and RebuildFailed (PR003) is raised.
        """
        fresh = fresh_copy(self._projection, factory or self._factory)
        shadow = ProjectionRunner(
            self.store,
            fresh,
            name=self.name,
            batch_size=self.batch_size,
            error_policy=self.error_policy,
            retries=self.retries,
            retry_delay=self.retry_delay,
            sleep=self._sleep,
            event_types=self.event_types,
            filtered=self.event_types is not None,
        )
        try:
            shadow.run_until_caught_up(progress=progress)
            with self._lock:
                shadow.run_until_caught_up(until=max(self.position, self.store.head()))
                self._projection = fresh
                self.position = shadow.position
                self.skipped = list(shadow.skipped)
                self._save()
        except ProcessingFailed as exc:
            raise RebuildFailed(
                f"rebuild of {self.name!r} failed; the old read model is still served: {exc.message}"
            ) from exc
        return fresh
