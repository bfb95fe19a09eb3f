"""The deterministic simulator: many virtual clients, one thread, virtual time, a seed.

Each client's command runs as :meth:`Executor.steps`, one phase per ``next()`` (read, decide, backoff,
commit). The scheduler keeps a queue of clients ordered by virtual time; each phase costs a little virtual
time with seeded jitter, and ties are broken by the seed too. Phases of different clients interleave as
they would on a real server (a client reads, another commits, the first one's commit conflicts), but the
order is a pure function of the seed: the same seed gives the same history (event ids and ``recorded_at``
included, on the default store) and the same results frame.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
    __slots__ = ("commands", "id", "issued", "quota", "record", "steps")

    def __init__(self, workload: Workload, client: int) -> None:
        self.id = client
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
        from tqdm.auto import tqdm

        workload = self.workload
        clients = [_Client(workload, c) for c in range(workload.clients)]
        queue: list[tuple[float, float, int]] = []
        for client in clients:
            self._schedule_next_command(queue, client, 0.0)
        records: list[CommandRecord] = []
        with tqdm(
            total=workload.commands, disable=not self.progress, desc="simulating commands", unit="command"
        ) as bar:
            while queue:
                self.now, _, cid = heapq.heappop(queue)
                client = clients[cid]
                done_at = self._advance(queue, client)
                if done_at is not None:
                    assert client.record is not None
                    records.append(client.record)
                    bar.update(1)
                    client.record = client.steps = None
                    self._schedule_next_command(queue, client, done_at)
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
        client.issued += 1
        client.record = CommandRecord(
            client.id,
            client.issued - 1,
            op,
            type(command).__name__,
            tuple(command.read_streams()),
            start=start,
        )
        metadata = Metadata(correlation_id=f"c{client.id}-{client.issued - 1}", user_id=f"client-{client.id}")
        client.steps = self.executor.steps(command, metadata=metadata)
        heapq.heappush(queue, (start, self._rng.random(), client.id))

    def _advance(self, queue: list[tuple[float, float, int]], client: _Client) -> float | None:
        """Run one phase of ``client``'s command; return the end time when the command finished."""
        assert client.steps is not None and client.record is not None
        self._pending_latency = 0.0
        try:
            step = next(client.steps)
        except StopIteration as done:
            end = self.now + self._cost(self.costs.commit)
            finish_ok(client.record, done.value, end)
            return end
        except EventCoreError as error:
            end = self.now + self._cost(self.costs.commit)
            finish_error(client.record, error, end)
            return end
        if step.phase is Phase.BACKOFF:
            note_backoff(client.record, step)
            cost = self._cost(self.costs.commit) + step.delay
        elif step.phase is Phase.READ:
            cost = self._cost(self.costs.read)
        else:
            cost = self._cost(self.costs.decide)
        heapq.heappush(queue, (self.now + cost, self._rng.random(), client.id))
        return None

    def _cost(self, base: float) -> float:
        j = self.costs.jitter
        return base * (1 - j + 2 * j * self._rng.random()) + self._pending_latency


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
