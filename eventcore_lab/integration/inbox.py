"""Inboxes: apply integration events from a broker to a store exactly once, in per-stream order.

Delivery is at least once (a relay republishes after a crash, a consumer re-reads after a restart), so
each inbox keeps, per source stream, an inbox stream whose events record the handled messages
(:class:`MessageHandled`: message id, source stream and version). The record is appended **in the same
atomic append** as the effect, guarded by the inbox stream's expected version: either both are stored or
neither is, and two consumers racing on one message cannot both apply it. A message whose source
version is not newer than the last one handled is a copy and is skipped.

The consumer's cursor (the broker sequence of the last message read) is a checkpoint in the same store,
saved after the append; if a crash loses it, the messages read again are recognised as copies.

- :class:`EventInbox` applies a batch of messages with one append, through a pure ``handler`` that
  returns the events to write (to mirror another service's events, or feed local projections).
- :class:`CommandInbox` turns each message into a command of this service and runs it with the
  executor; the inbox stream becomes part of the command's consistency boundary.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.command import Command, CommandContext, emit
from ..core.errors import EventCoreError, InvalidFormat, VersionConflict
from ..core.events import EventToWrite, ExpectedVersion, Metadata, StoredEvent
from ..core.executor import Executor
from ..core.ids import StreamId
from ..core.registry import Event
from ..projections.checkpoints import CheckpointStore, checkpoints_for
from .breaker import CircuitBreaker
from .broker import Delivery, MessageSource
from .errors import CircuitOpen, IntegrationError
from .messages import IntegrationMessage

Handler = Callable[[IntegrationMessage], Sequence[EventToWrite]]

_MAX_STREAM_ID = 255


class MessageHandled(Event):
    """An inbox's record that one integration message was handled (``outcome``: applied or rejected)."""

    registration = "on_first_use"

    event_type = "InboxMessageHandled"
    message_id: str
    service_id: str
    stream_id: str
    version: int
    outcome: str = "applied"
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class InboxResult:
    applied: int
    duplicates: int
    rejected: int
    position: int


def inbox_stream(inbox: str, message: IntegrationMessage) -> str:
    """The inbox stream recording ``inbox``'s handled messages of one source stream."""
    sid = f"inbox-{inbox}-{message.service_id}-{message.stream_id}"
    if len(sid) <= _MAX_STREAM_ID:
        return sid
    digest = hashlib.sha256(f"{message.service_id}\0{message.stream_id}".encode()).hexdigest()
    return f"inbox-{inbox}-{message.service_id[:60]}-{digest}"


def _record(
    message: IntegrationMessage, outcome: str = "applied", reason: str | None = None
) -> MessageHandled:
    return MessageHandled(
        message_id=message.message_id,
        service_id=message.service_id,
        stream_id=message.stream_id,
        version=message.version,
        outcome=outcome,
        reason=reason,
    )


def _metadata(message: IntegrationMessage) -> Metadata:
    """Events caused by a message share its correlation id and name it as their cause."""
    if message.correlation_id:
        return Metadata(correlation_id=message.correlation_id, causation_id=message.message_id)
    return Metadata(causation_id=message.message_id)


def _check_name(name: str) -> None:
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 64
        or not name.replace("-", "").replace("_", "").isalnum()
    ):
        raise InvalidFormat(f"an inbox name is 1-64 letters, digits, '_' or '-', got {name!r}")


class _Cursor:
    """The broker sequence an inbox has read up to, kept as a checkpoint of its store.

    Saved at most every ``interval`` seconds (and on :meth:`flush`): a cursor that lags only makes a
    restarted inbox read some handled messages again, which it recognises and skips, while saving it
    after every small batch would double the store transactions of a busy consumer.
    """

    def __init__(self, store: Any, name: str, checkpoints: CheckpointStore | None, interval: float) -> None:
        self.checkpoints = checkpoints if checkpoints is not None else checkpoints_for(store)
        self.key = f"inbox_{name.replace('-', '_')}"
        self.position = self.saved = self.checkpoints.load(self.key)
        self.interval = interval
        self._saved_at = -math.inf

    def advance(self, position: int) -> None:
        if position > self.position:
            self.position = position
            if time.monotonic() - self._saved_at >= self.interval:
                self.flush()

    def flush(self) -> None:
        if self.position > self.saved:
            self.checkpoints.save(self.key, self.position)
            self.saved = self.position
            self._saved_at = time.monotonic()


class EventInbox:
    """Applies messages to ``store`` through ``handler``, one atomic append per batch.

    ``handler(message)`` is pure: it returns the events to write (any streams; an empty list to only
    record the message). If it raises a non-retriable library error the message is recorded as
    rejected, with the reason, and nothing else is written for it.
    """

    def __init__(
        self,
        store: Any,
        name: str,
        handler: Handler,
        *,
        checkpoints: CheckpointStore | None = None,
        cursor_interval: float = 0.0,
    ) -> None:
        _check_name(name)
        self.store = store
        self.name = name
        self.handler = handler
        if MessageHandled not in store.registry:
            store.registry.register(MessageHandled, MessageHandled.event_type)
        self._cursor = _Cursor(store, name, checkpoints, cursor_interval)
        # inbox stream -> (its version in the store, the last source version handled)
        self._known: dict[str, tuple[int, int]] = {}

    @property
    def position(self) -> int:
        return self._cursor.position

    def flush(self) -> None:
        """Save the cursor now (a consumer that stops calls it)."""
        self._cursor.flush()

    def _state(self, sid: str) -> tuple[int, int]:
        known = self._known.get(sid)
        if known is not None:
            return known
        version = self.store.stream_version(sid)
        last = 0
        if version:
            tail = self.store.read_stream(sid, after_version=version - 1)
            last = tail[-1].payload.version
        self._known[sid] = (version, last)
        return version, last

    def handle(self, deliveries: Sequence[Delivery]) -> InboxResult:
        """Apply the new messages among ``deliveries`` (in order); copies are skipped."""
        pending = [d for d in deliveries if d.sequence > self._cursor.position]
        if not pending:
            return InboxResult(0, 0, 0, self._cursor.position)
        for _ in range(10):
            writes, expected, seen, counts = self._plan(pending)
            try:
                if writes:
                    self.store.append(writes, expected)
            except VersionConflict as conflict:
                for sid in conflict.streams:  # another consumer wrote: learn its progress and plan again
                    self._known.pop(sid, None)
                continue
            except EventCoreError:
                if len(pending) == 1:
                    raise
                return self._one_by_one(pending)
            self._known.update(seen)
            self._cursor.advance(pending[-1].sequence)
            return InboxResult(*counts, self._cursor.position)
        raise VersionConflict({sid: ("the inbox's own view", -1) for sid in expected})

    def _plan(
        self, pending: Sequence[Delivery]
    ) -> tuple[
        list[EventToWrite], dict[str, ExpectedVersion], dict[str, tuple[int, int]], tuple[int, int, int]
    ]:
        writes: list[EventToWrite] = []
        expected: dict[str, ExpectedVersion] = {}
        seen: dict[str, tuple[int, int]] = {}
        applied = duplicates = rejected = 0
        for delivery in pending:
            message = delivery.message
            sid = inbox_stream(self.name, message)
            version, last = seen.get(sid) or self._state(sid)
            if message.version <= last:
                duplicates += 1
                continue
            metadata = _metadata(message)
            try:
                effects = [
                    w if w.metadata else EventToWrite(w.stream_id, w.event, metadata)
                    for w in self.handler(message)
                ]
                record = _record(message)
                applied += 1
            except EventCoreError as exc:
                if exc.retriable:
                    raise
                effects, record = [], _record(message, "rejected", str(exc))
                rejected += 1
            expected.setdefault(sid, ExpectedVersion.exact(version))
            writes.extend(effects)
            writes.append(EventToWrite(sid, record, metadata))
            seen[sid] = (version + 1, message.version)
        return writes, expected, seen, (applied, duplicates, rejected)

    def _one_by_one(self, pending: Sequence[Delivery]) -> InboxResult:
        """A batch refused by the store: find the message at fault by applying each alone."""
        applied = duplicates = rejected = 0
        for delivery in pending:
            try:
                result = self.handle([delivery])
            except EventCoreError as exc:
                if exc.retriable:
                    raise
                result = self._reject(delivery, exc)
            applied += result.applied
            duplicates += result.duplicates
            rejected += result.rejected
        return InboxResult(applied, duplicates, rejected, self._cursor.position)

    def _reject(self, delivery: Delivery, error: EventCoreError) -> InboxResult:
        message = delivery.message
        sid = inbox_stream(self.name, message)
        version, _ = self._state(sid)
        self.store.append(
            [EventToWrite(sid, _record(message, "rejected", str(error)), _metadata(message))],
            {sid: ExpectedVersion.exact(version)},
        )
        self._known[sid] = (version + 1, message.version)
        self._cursor.advance(delivery.sequence)
        return InboxResult(0, 0, 1, self._cursor.position)


class _InboxCommand(Command[tuple[int, Any]]):
    """Runs ``inner`` and records ``message`` in ``inbox`` in the same append, unless already recorded."""

    inbox: str
    inner: Any
    message: Any

    def read_streams(self) -> tuple[StreamId, ...]:
        inner = self.inner.read_streams() if self.inner is not None else ()
        return tuple(dict.fromkeys((StreamId(self.inbox), *inner)))

    def initial_state(self) -> tuple[int, Any]:
        return (0, self.inner.initial_state() if self.inner is not None else None)

    def apply(self, state: tuple[int, Any], event: StoredEvent) -> tuple[int, Any]:
        last, inner_state = state
        if event.stream_id == self.inbox:
            return (event.payload.version, inner_state)
        return (last, self.inner.apply(inner_state, event) if self.inner is not None else None)

    def handle(self, state: tuple[int, Any], ctx: CommandContext) -> list[EventToWrite]:
        last, inner_state = state
        if self.message.version <= last:
            return []
        writes = list(self.inner.handle(inner_state, ctx)) if self.inner is not None else []
        return [*writes, emit(self.inbox, _record(self.message))]


class _RecordRejection(Command[int]):
    inbox: str
    message: Any
    reason: str

    def read_streams(self) -> tuple[StreamId, ...]:
        return (StreamId(self.inbox),)

    def initial_state(self) -> int:
        return 0

    def apply(self, state: int, event: StoredEvent) -> int:
        return int(event.payload.version)

    def handle(self, state: int, ctx: CommandContext) -> list[EventToWrite]:
        if self.message.version <= state:
            return []
        return [emit(self.inbox, _record(self.message, "rejected", self.reason))]


class CommandInbox:
    """Turns each message into a command of this service (``to_command``; None to only record it)
    and runs it through ``executor``. The command's own rules still apply: a command refused with a
    non-retriable error (ValidationFailed, BusinessRuleViolation) is recorded as rejected."""

    def __init__(
        self,
        executor: Executor,
        name: str,
        to_command: Callable[[IntegrationMessage], Command[Any] | None],
        *,
        checkpoints: CheckpointStore | None = None,
        cursor_interval: float = 0.0,
    ) -> None:
        _check_name(name)
        self.executor = executor
        self.name = name
        self.to_command = to_command
        store = executor.store
        if MessageHandled not in store.registry:
            store.registry.register(MessageHandled, MessageHandled.event_type)
        self._cursor = _Cursor(store, name, checkpoints, cursor_interval)

    @property
    def position(self) -> int:
        return self._cursor.position

    def flush(self) -> None:
        """Save the cursor now (a consumer that stops calls it)."""
        self._cursor.flush()

    def handle(self, deliveries: Sequence[Delivery]) -> InboxResult:
        applied = duplicates = rejected = 0
        done = self._cursor.position
        try:
            for delivery in deliveries:
                if delivery.sequence <= done:
                    continue
                message = delivery.message
                sid = inbox_stream(self.name, message)
                command = _InboxCommand(sid, self.to_command(message), message)
                metadata = _metadata(message)
                try:
                    result = self.executor.execute(command, metadata=metadata)
                    if result.events_written:
                        applied += 1
                    else:
                        duplicates += 1
                except EventCoreError as exc:
                    if exc.retriable:
                        raise
                    reason = str(exc)
                    written = self.executor.execute(_RecordRejection(sid, message, reason), metadata=metadata)
                    rejected += 1 if written.events_written else 0
                    duplicates += 0 if written.events_written else 1
                done = delivery.sequence
        finally:
            # Once per batch: a cursor that lags after a crash only makes the inbox skip a few copies.
            self._cursor.advance(done)
        return InboxResult(applied, duplicates, rejected, self._cursor.position)


class InboxConsumer:
    """Feeds an inbox from a broker target: reads from the inbox's cursor, applies, repeats.

    Broker trouble goes through a circuit breaker, so an unreachable broker is probed now and then
    rather than in a tight loop; the inbox's place is its store's checkpoint, never lost.
    """

    def __init__(
        self,
        open_source: Callable[[int], MessageSource],
        inbox: EventInbox | CommandInbox,
        *,
        batch_size: int = 500,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.open_source = open_source
        self.inbox = inbox
        self.batch_size = batch_size
        self.breaker = breaker or CircuitBreaker("inbox-broker", failure_threshold=3, retry_timeout=1.0)
        self.applied = self.duplicates = self.rejected = 0
        self._source: MessageSource | None = None
        self._stop = threading.Event()

    def step(self, *, wait: float = 0.5) -> InboxResult | IntegrationError:
        """Read and apply one batch; the broker error instead when the broker failed."""
        if self._source is None:
            self._source = self.open_source(self.inbox.position)
        try:
            deliveries = self.breaker.call(self._source.fetch, self.batch_size, wait)
        except CircuitOpen as exc:
            return exc
        except IntegrationError as exc:
            return exc
        result = self.inbox.handle(deliveries)
        self.applied += result.applied
        self.duplicates += result.duplicates
        self.rejected += result.rejected
        return result

    def run(self, *, wait: float = 0.5, until: Callable[[], bool] | None = None) -> None:
        self._stop.clear()
        while not self._stop.is_set() and not (until is not None and until()):
            outcome = self.step(wait=wait)
            if isinstance(outcome, IntegrationError):
                self._stop.wait(max(self.breaker.retry_in(), 0.05))

    def start(self, *, wait: float = 0.5) -> threading.Thread:
        thread = threading.Thread(target=self.run, kwargs={"wait": wait}, name="inbox-consumer", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.stop()
        self.inbox.flush()
        if self._source is not None:
            self._source.close()
            self._source = None
