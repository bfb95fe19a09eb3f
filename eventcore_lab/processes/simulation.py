"""Processes in the deterministic simulator: virtual time, competing runners, a chaos store, a seed.

External events (commands of customers, carriers, people) arrive at virtual times; several runners feed
the same log to the same process managers, one event at a time in an order drawn from the seed, through
a :class:`~eventcore_lab.stores.chaos.ChaosStore` that fails and conflicts appends; when nothing is left
to do the clock jumps to the next external event or deadline. The same seed gives the same history, so a
failing seed can be replayed, and thousands of seeds run in seconds. The question it answers: does every
process end, or wait on a deadline, whatever the interleaving?
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..core.command import Command
from ..core.errors import EventCoreError
from ..core.executor import Executor
from ..core.ids import RepeatableIds
from ..core.retry import RetryConfig
from ..projections.checkpoints import MemoryCheckpoints
from ..stores.chaos import ChaosStats, ChaosStore
from ..stores.memory import MemoryStore
from .events import CommandRejected, CommandSucceeded
from .frames import processes_frame
from .manager import ProcessManager
from .runner import ProcessRunner

#: Virtual time zero of process simulations (the same instant as the command simulator's ``EPOCH``).
SIM_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class External:
    """A command from outside the processes, run ``at`` after the start of the simulation."""

    at: timedelta
    command: Command[Any]


@dataclass
class ProcessSimulationResult:
    """What a simulated run left behind: the log (``store``), its processes, and what happened on the way."""

    store: MemoryStore
    managers: Sequence[ProcessManager[Any]]
    end: datetime
    steps: int
    externals_refused: int
    chaos: ChaosStats
    settled: bool  #: False when the run hit ``max_steps`` or the horizon with work left

    _frame: Any = field(default=None, repr=False)

    @property
    def processes(self) -> Any:
        """One row per process (see :func:`~eventcore_lab.processes.processes_frame`)."""
        if self._frame is None:
            self._frame = processes_frame(self.store, self.managers)
        return self._frame

    def stuck(self) -> list[str]:
        """Processes that have neither ended nor a pending deadline: nothing will ever move them."""
        frame = self.processes
        return frame[~frame["terminal"].astype(bool) & (frame["deadlines_pending"] == 0)]["stream"].tolist()

    def duplicate_outcomes(self) -> list[tuple[str, str]]:
        """Issued commands that ran more than once (there must be none)."""
        counts = Counter(
            (e.stream_id, e.payload.command_id)
            for e in self.store.read_all()
            if isinstance(e.payload, CommandSucceeded | CommandRejected)
        )
        return [key for key, n in counts.items() if n > 1]


def simulate_processes(
    managers: Sequence[ProcessManager[Any]],
    *,
    setup: Sequence[Command[Any]] = (),
    externals: Sequence[External] = (),
    seed: int = 0,
    runners: int = 2,
    failure_probability: float = 0.1,
    conflict_probability: float = 0.1,
    horizon: timedelta = timedelta(days=365),
    max_steps: int = 200_000,
) -> ProcessSimulationResult:
    """Run ``managers`` against ``externals`` deterministically (see the module docstring).

    ``setup`` commands run first, without faults. Runners and external commands go through the chaos
    store; an external command refused by its rules is counted and dropped, one that fails for a
    transient reason is tried again a virtual second later.
    """
    now = [SIM_EPOCH]

    def clock() -> datetime:
        return now[0]

    rng = random.Random(seed)
    store = MemoryStore(clock=clock, new_id=RepeatableIds(clock, seed))
    chaos = ChaosStore(
        store,
        failure_probability=failure_probability,
        conflict_probability=conflict_probability,
        latency=None,
        seed=seed + 1,
    )
    plain = Executor(store, clock=clock, sleep=_no_sleep, rng=random.Random(seed + 2))
    for command in setup:
        plain.execute(command)
    outside = Executor(
        chaos, retry=RetryConfig(max_attempts=3), clock=clock, sleep=_no_sleep, rng=random.Random(seed + 3)
    )
    pool = [
        ProcessRunner(
            store,
            managers,
            name=f"simulated-runner-{i}",
            checkpoints=MemoryCheckpoints(),
            clock=clock,
            executor=Executor(
                chaos,
                retry=RetryConfig(max_attempts=3),
                clock=clock,
                sleep=_no_sleep,
                rng=random.Random(seed + 10 + i),
            ),
        )
        for i in range(runners)
    ]
    queue = sorted(((SIM_EPOCH + e.at, i, e.command) for i, e in enumerate(externals)), key=lambda x: x[:2])
    refused = steps = 0
    settled = False
    while steps < max_steps:
        steps += 1
        head = store.head()
        choices: list[int] = [i for i, r in enumerate(pool) if r.position < head]
        if queue and queue[0][0] <= now[0]:
            choices.append(-1)
        if choices:
            pick = rng.choice(choices)
            if pick >= 0:
                pool[pick].step()
                continue
            _, order, command = queue.pop(0)
            try:
                outside.execute(command)
            except EventCoreError as error:
                if error.retriable:
                    queue.insert(0, (now[0] + timedelta(seconds=1), order, command))
                    queue.sort(key=lambda x: x[:2])
                else:
                    refused += 1
            continue
        upcoming = [t for t in (r.next_deadline() for r in pool) if t is not None]
        if queue:
            upcoming.append(queue[0][0])
        if not upcoming:
            settled = True
            break
        moment = max(now[0], min(upcoming))
        if moment - SIM_EPOCH > horizon:
            break
        now[0] = moment
        for index in rng.sample(range(len(pool)), len(pool)):
            pool[index].check_deadlines()
    return ProcessSimulationResult(store, list(managers), now[0], steps, refused, chaos.stats, settled)


def _no_sleep(seconds: float) -> None:
    """Backoffs cost no real time in a simulation."""
