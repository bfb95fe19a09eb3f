"""The deterministic simulator: many virtual clients, one thread, virtual time, a seed.

Each client's command runs as :meth:`Executor.steps`, one phase per ``next()`` (read, decide, backoff,
commit). The scheduler keeps a queue of clients ordered by virtual time; each phase costs a little virtual
time with seeded jitter, and ties are broken by the seed too. Phases of different clients interleave as
they would on a real server (a client reads, another commits, the first one's commit conflicts), but the
order is a pure function of the seed: the same seed gives the same history (event ids and ``recorded_at``
included, on the default store) and the same results frame.
"""

from __future__ import annotations

import gc
import heapq
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .._gc import gc_paused
from ..core.errors import EventCoreError, InvalidFormat
from ..core.events import Metadata
from ..core.executor import Executor, Phase, Steps
from ..core.ids import RepeatableIds
from ..core.retry import RetryConfig
from ..stores.chaos import ChaosStore
from ..stores.memory import MemoryStore
from ._outcomes import finish_error, finish_ok, note_backoff
from .results import CommandRecord, SimulationResult, records_frame
from .workload import ClientStream, Workload

#: Virtual time zero, as seen by commands through ``ctx.now``.
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PhaseCosts:
    """Virtual seconds each phase takes; each is scaled by a seeded factor in [1 - jitter, 1 + jitter]."""

    read: float = 0.002
    decide: float = 0.0005
    commit: float = 0.002
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if min(self.read, self.decide, self.commit) < 0 or not 0 <= self.jitter < 1:
            raise InvalidFormat("phase costs must be >= 0 seconds and jitter in [0, 1)")


class _Client:
    __slots__ = ("commands", "id", "issued", "quota", "record", "steps", "user")

    def __init__(self, workload: Workload, client: int) -> None:
        self.id = client
        self.user = f"client-{client}"
        self.commands: ClientStream = workload.stream_for(client)
        self.quota = workload.quota(client)
        self.issued = 0
        self.steps: Steps | None = None
        self.record: CommandRecord | None = None


class Simulation:
    """One deterministic run of ``workload`` on ``store``.

    The default store is a fresh MemoryStore on the virtual clock with
    :class:`~eventcore_lab.core.ids.RepeatableIds` seeded by the workload, so the same seed stores the same
    events bit for bit, ``event_id`` and ``recorded_at`` included. A store passed in keeps its own clock
    and ids.
    """

    def __init__(
        self,
        workload: Workload,
        store: Any = None,
        *,
        retry: RetryConfig | None = None,
        costs: PhaseCosts | None = None,
        progress: bool = False,
    ) -> None:
        self.workload = workload
        self.now = 0.0
        self.store = (
            store
            if store is not None
            else MemoryStore(clock=self._clock, new_id=RepeatableIds(self._clock, workload.seed))
        )
        self.costs = costs or PhaseCosts()
        self.progress = progress
        self._pending_latency = 0.0
        self._rng = random.Random(workload.seed)
        self.executor = Executor(
            self.store,
            retry=retry if retry is not None else RetryConfig(),
            timeout=None,
            clock=self._clock,
            rng=random.Random(workload.seed + 7919),
            sleep=self._virtual_sleep,
        )

    def _clock(self) -> datetime:
        """The virtual time as a datetime: ``ctx.now`` for commands, ``recorded_at`` for the default store."""
        return EPOCH + timedelta(seconds=self.now)

    def _virtual_sleep(self, seconds: float) -> None:
        """Store latency (e.g. a ChaosStore's) lengthens the current phase instead of blocking."""
        self._pending_latency += seconds

    def run(self) -> SimulationResult:
        chaos = self.store if isinstance(self.store, ChaosStore) else None
        real_sleep = chaos.sleep if chaos else None
        if chaos:
            chaos.sleep = self._virtual_sleep
        try:
            for command in self.workload.setup:
                self.executor.execute(command, metadata=Metadata(correlation_id="setup"))
            records = self._run_clients()
        finally:
            if chaos and real_sleep is not None:
                chaos.sleep = real_sleep
        end = max((r.end for r in records), default=0.0)
        return SimulationResult(records_frame(records), "simulated", end, self.store)

    def _run_clients(self) -> list[CommandRecord]:
        """The event loop: pop the client due first, run one phase of its command, push it back.

        One loop with its names bound locally, since it runs once per phase of every command; the
        seeded draws happen in a fixed order (a phase's cost, then the queue's tie-breaker), which is
        what makes a run repeatable. The garbage collector does not take part in that order.
        """
        workload = self.workload
        clients = [_Client(workload, c) for c in range(workload.clients)]
        queue: list[tuple[float, float, int]] = []
        records: list[CommandRecord] = []
        for client in clients:
            self._schedule_next_command(queue, client, 0.0)
        bar = _progress_bar(workload.commands) if self.progress else None
        costs = self.costs
        read, decide, commit = costs.read, costs.decide, costs.commit
        # a phase's cost is base * (1 - j + 2 * j * draw) + latency, as these two constants
        low, span = 1 - costs.jitter, 2 * costs.jitter
        draw = self._rng.random
        pop, push = heapq.heappop, heapq.heappush
        backoff, read_phase = Phase.BACKOFF, Phase.READ
        try:
            with gc_paused():
                while queue:
                    now, _, cid = pop(queue)
                    self.now = now
                    client = clients[cid]
                    record = client.record
                    assert client.steps is not None and record is not None
                    self._pending_latency = 0.0
                    try:
                        step = next(client.steps)
                    except StopIteration as done:
                        end = now + (commit * (low + span * draw()) + self._pending_latency)
                        finish_ok(record, done.value, end)
                    except EventCoreError as error:
                        end = now + (commit * (low + span * draw()) + self._pending_latency)
                        finish_error(record, error, end)
                    else:
                        phase = step.phase
                        if phase is backoff:
                            note_backoff(record, step)
                            cost = commit * (low + span * draw()) + self._pending_latency + step.delay
                        elif phase is read_phase:
                            cost = read * (low + span * draw()) + self._pending_latency
                        else:
                            cost = decide * (low + span * draw()) + self._pending_latency
                        push(queue, (now + cost, draw(), cid))
                        continue
                    records.append(record)
                    if len(records) % _YOUNG_COLLECTION_EVERY == 0:
                        _collect(len(records))
                    if bar is not None:
                        bar.update(1)
                    client.record = client.steps = None
                    self._schedule_next_command(queue, client, end)
        finally:
            if bar is not None:
                bar.close()
        return records

    def _schedule_next_command(
        self, queue: list[tuple[float, float, int]], client: _Client, at: float
    ) -> None:
        if client.quota is not None and client.issued >= client.quota:
            return
        op, command, think = next(client.commands)
        start = at + think
        if self.workload.duration is not None and start >= self.workload.duration:
            return
        index = client.issued
        client.issued = index + 1
        client.record = CommandRecord(
            client.id, index, op, type(command).__name__, tuple(command.read_streams()), start=start
        )
        metadata = Metadata(correlation_id=f"c{client.id}-{index}", user_id=client.user)
        client.steps = self.executor.steps(command, metadata=metadata)
        heapq.heappush(queue, (start, self._rng.random(), client.id))


#: The cyclic collector is paused while clients run: with fifty commands in flight their state outlived
#: the young generations, and the automatic collections that followed rescanned the whole heap (a tenth
#: of a run, profiled). Instead the young generations are collected every this many commands, and
#: everything every ``_FULL_COLLECTION_EVERY``.
_YOUNG_COLLECTION_EVERY = 1000
_FULL_COLLECTION_EVERY = 100_000


def _collect(done: int) -> None:
    """Collect what a paused collector leaves: the cycles of a command's errors (exception, traceback,
    frame) are young, so collecting the young generations is cheap and enough; the old one, which
    holds the whole store, is collected rarely."""
    gc.collect(2 if done % _FULL_COLLECTION_EVERY == 0 else 1)


def _progress_bar(total: int | None) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="simulating commands", unit="command")


def simulate(
    workload: Workload,
    store: Any = None,
    *,
    retry: RetryConfig | None = None,
    costs: PhaseCosts | None = None,
    progress: bool = False,
) -> SimulationResult:
    """Run ``workload`` deterministically (see :class:`Simulation`)."""
    return Simulation(workload, store, retry=retry, costs=costs, progress=progress).run()
