"""A micro-batching front for the executor: many small commands from many threads, one commit.

Each command still runs the executor's whole cycle (read, fold, decide, optimistic check); only its
append is handed to a :class:`GroupCommit`, which joins the appends that arrive within ``max_wait``
seconds (at most ``max_batch`` of them) into one ``store.append``: one transaction, one round trip,
one fsync. Appends in a group touch disjoint streams (read or written), so that no member's decision
can be invalidated by another member; an append that overlaps waits for the next group. The combined
append is all-or-nothing like any append; if it meets a version conflict (another process wrote one of
the streams meanwhile), each member is appended on its own, so each gets its own result or conflict
and the executor retries the ones that conflicted, as it would without batching.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidArgument, VersionConflict
from .events import EventToWrite, ExpectedVersion, StoredEvent
from .executor import ExecutionResult, Executor


@dataclass
class _Member:
    events: list[EventToWrite]
    expected: dict[str, ExpectedVersion]
    streams: frozenset[str]
    done: threading.Event = field(default_factory=threading.Event)
    result: list[StoredEvent] | None = None
    error: BaseException | None = None


class GroupCommit:
    """A store front whose ``append`` joins concurrent appends into one (everything else passes through).

    The first thread to arrive leads: it waits up to ``max_wait`` seconds for others (or until
    ``max_batch`` appends wait, or as many as ``peers()`` says are on their way), then appends them all
    at once and hands each its events.
    """

    def __init__(
        self,
        store: Any,
        *,
        max_batch: int = 64,
        max_wait: float = 0.002,
        peers: Callable[[], int] | None = None,
    ) -> None:
        if not isinstance(max_batch, int) or isinstance(max_batch, bool) or max_batch < 1:
            raise InvalidArgument(f"max_batch must be an int >= 1, got {max_batch!r}")
        if not isinstance(max_wait, int | float) or isinstance(max_wait, bool) or max_wait < 0:
            raise InvalidArgument(f"max_wait must be a number of seconds >= 0, got {max_wait!r}")
        self.inner = store
        self.max_batch = max_batch
        self.max_wait = float(max_wait)
        self._peers = peers
        self._lock = threading.Condition(threading.Lock())
        self._waiting: list[_Member] = []
        self._leading = False
        #: combined appends made, appends they carried, and groups that fell back to one append each
        self.commits = 0
        self.appends = 0
        self.fallbacks = 0

    def append(
        self, events: Sequence[EventToWrite], expected: Mapping[str, ExpectedVersion] | None = None
    ) -> list[StoredEvent]:
        writes = list(events)
        checks = dict(expected or {})
        if not writes:
            return list(self.inner.append(writes, checks))
        member = _Member(writes, checks, frozenset(checks) | {str(w.stream_id) for w in writes})
        with self._lock:
            self._waiting.append(member)
            self._lock.notify_all()
            lead = not self._leading
            if lead:
                self._leading = True
        if lead:
            self._lead()
        member.done.wait()
        if member.error is not None:
            raise member.error
        assert member.result is not None
        return member.result

    def _lead(self) -> None:
        """Commit groups until nobody waits; the leader's own append is in the first group."""
        try:
            while True:
                with self._lock:
                    if not self._waiting:  # whoever arrives next leads its own group
                        self._leading = False
                        return
                    deadline = time.monotonic() + self.max_wait
                    while len(self._waiting) < self._enough():
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._lock.wait(left)
                    group = _disjoint(self._waiting, self.max_batch)
                    if not group:
                        self._leading = False
                        return
                    taken = {id(m) for m in group}
                    self._waiting = [m for m in self._waiting if id(m) not in taken]
                self._commit(group)
        except BaseException:
            with self._lock:
                self._leading = False
            raise

    def _enough(self) -> int:
        """How many waiting appends make a group worth committing without waiting longer."""
        if self._peers is None:
            return self.max_batch
        return max(1, min(self.max_batch, self._peers()))

    def _commit(self, group: list[_Member]) -> None:
        if len(group) == 1:
            self._alone(group[0])
            return
        events = [w for m in group for w in m.events]
        expected: dict[str, ExpectedVersion] = {}
        for member in group:
            expected.update(member.expected)
        try:
            stored = list(self.inner.append(events, expected))
        except VersionConflict:
            self.fallbacks += 1
            for member in group:  # find out whose decision is stale: each on its own
                self._alone(member)
            return
        except BaseException as exc:  # nothing was written (appends are all-or-nothing): tell everyone
            for member in group:
                member.error = exc
                member.done.set()
            return
        self.commits += 1
        self.appends += len(group)
        start = 0
        for member in group:
            member.result = stored[start : start + len(member.events)]
            start += len(member.events)
            member.done.set()

    def _alone(self, member: _Member) -> None:
        try:
            member.result = list(self.inner.append(member.events, member.expected))
            self.commits += 1
            self.appends += 1
        except BaseException as exc:
            member.error = exc
        member.done.set()

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def _disjoint(waiting: list[_Member], limit: int) -> list[_Member]:
    """The first waiting appends, in arrival order, whose streams do not overlap (at most ``limit``)."""
    group: list[_Member] = []
    used: set[str] = set()
    for member in waiting:
        if len(group) == limit:
            break
        if used.isdisjoint(member.streams):
            group.append(member)
            used |= member.streams
    return group


class BatchingExecutor:
    """An :class:`Executor` whose appends go through a :class:`GroupCommit`: call ``execute`` from many
    threads and concurrent commands share commits. A group waits for the commands running at the time
    (at most ``max_wait`` seconds), so a lone caller is not slowed down. Options other than
    ``max_batch`` and ``max_wait`` are the executor's."""

    def __init__(self, store: Any, *, max_batch: int = 64, max_wait: float = 0.002, **options: Any) -> None:
        self._active = 0
        self._count = threading.Lock()
        self.group = GroupCommit(store, max_batch=max_batch, max_wait=max_wait, peers=self._running)
        self.executor = Executor(self.group, **options)

    def _running(self) -> int:
        return self._active

    def execute(self, command: Any, **options: Any) -> ExecutionResult:
        """Run ``command`` as :meth:`Executor.execute` does (safe to call from many threads at once)."""
        with self._count:
            self._active += 1
        try:
            return self.executor.execute(command, **options)
        finally:
            with self._count:
                self._active -= 1


__all__ = ["BatchingExecutor", "GroupCommit"]
