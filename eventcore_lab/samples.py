"""Sample histories for the tutorials and notebooks: deterministic generators and a loader.

Two domains are simulated by running real commands through the executor against an in-memory store:
``banking`` (accounts, deposits, withdrawals, transfers; about 100,000 events in the shipped file) and
``tasks`` (the task-management domain of the tutorials). Everything that could vary between runs is
fixed: a seeded ``random.Random`` picks the operations, a simulated clock gives ``ctx.now`` and
``recorded_at``, correlation ids are counters, and event ids come from
:class:`~eventcore_lab.core.ids.RepeatableIds` (UUIDv7 values built from the simulated time and a sequence
number). The same seed and size therefore give byte-identical files.

>>> from eventcore_lab.samples import load_sample
>>> store = load_sample("tasks")                     # doctest: +SKIP
>>> store = load_sample("banking", limit=10_000)     # the first 10,000 events only  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .core.errors import CommandError, InvalidFormat
from .core.events import StoredEvent
from .core.executor import Executor
from .core.ids import RepeatableIds
from .core.retry import RetryConfig
from .examples import banking, tasks
from .stores.bulk import read_events, write_events
from .stores.memory import MemoryStore

#: The seed used for the shipped sample files.
SEED = 20240101
#: Simulated time of the first command of every sample.
START = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
#: Sample name -> (file name, number of events in the shipped file).
SAMPLES: dict[str, tuple[str, int]] = {
    "banking": ("banking.parquet", 100_000),
    "tasks": ("tasks.parquet", 20_000),
}
#: Environment variable naming another directory that holds the sample files.
SAMPLES_DIR_ENV = "EVENTCORE_SAMPLES_DIR"


class UnknownSample(InvalidFormat):
    """A sample name that is not one of :data:`SAMPLES`."""


class SampleFileMissing(InvalidFormat):
    """The sample's file is not where the loader looked (regenerate it with ``data/make_samples.py``)."""


# -- loading ---------------------------------------------------------------------------------------------


def samples_dir() -> Path:
    """Where sample files live: ``$EVENTCORE_SAMPLES_DIR``, else the repository's ``data/`` directory."""
    configured = os.environ.get(SAMPLES_DIR_ENV)
    return Path(configured) if configured else Path(__file__).resolve().parent.parent / "data"


def sample_path(name: str, directory: str | Path | None = None) -> Path:
    """The file of sample ``name``; raises UnknownSample for a name not in :data:`SAMPLES`."""
    if name not in SAMPLES:
        raise UnknownSample(f"unknown sample {name!r}; available: {', '.join(sorted(SAMPLES))}")
    return Path(directory or samples_dir()) / SAMPLES[name][0]


def read_sample(
    name: str, *, limit: int | None = None, directory: str | Path | None = None, progress: bool | None = False
) -> Iterator[StoredEvent]:
    """The events of sample ``name`` in log order, at most ``limit`` of them."""
    if limit is not None and limit < 0:
        raise InvalidFormat(f"limit must be >= 0, got {limit}")
    path = sample_path(name, directory)
    if not path.exists():
        raise SampleFileMissing(
            f"sample file {path} does not exist; run `python data/make_samples.py` or set {SAMPLES_DIR_ENV}"
        )
    return itertools.islice(read_events(path, progress=progress), limit)


def load_sample(
    name: str,
    store: Any = None,
    *,
    limit: int | None = None,
    directory: str | Path | None = None,
    progress: bool | None = False,
) -> Any:
    """Import sample ``name`` (its first ``limit`` events) into ``store`` (a new MemoryStore by default).

    Any store works, since every store implements ``import_events``; it should be empty, because imported
    versions must follow each stream's current version. Returns the store.
    """
    target = MemoryStore() if store is None else store
    target.import_events(read_sample(name, limit=limit, directory=directory, progress=progress))
    return target


# -- generating ------------------------------------------------------------------------------------------


class SimulatedClock:
    """A clock that moves forward only when told to, so decisions get repeatable times."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def __call__(self) -> datetime:
        return self.now


class _Recorder:
    """Runs commands at simulated times and keeps their events; the store shares the simulated clock."""

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.rng = random.Random(seed)
        self.clock = SimulatedClock()
        self.store = MemoryStore(clock=self.clock, new_id=RepeatableIds(self.clock))
        self.executor = Executor(
            self.store,
            retry=RetryConfig.none(),
            timeout=None,
            clock=self.clock,
            rng=random.Random(seed + 1),
            sleep=lambda _seconds: None,
        )
        self.events: list[StoredEvent] = []
        self.commands = 0
        self.rejected = 0

    def run(self, command: Any, mean_gap: float = 60.0) -> bool:
        """Run ``command`` after a random pause; False (and nothing kept) if the command was refused."""
        self.clock.advance(round(self.rng.expovariate(1 / mean_gap), 3))
        self.commands += 1
        try:
            result = self.executor.execute(command, correlation_id=f"{self.name}-{self.commands:07d}")
        except CommandError:
            self.rejected += 1
            return False
        self.events += result.events_written
        return True


def generate_banking(events: int = SAMPLES["banking"][1], *, seed: int = SEED) -> list[StoredEvent]:
    """A banking history of exactly ``events`` events: accounts opened, then deposits, withdrawals and
    transfers (some refused for insufficient funds, which writes nothing), with a few hot accounts."""
    if events < 1:
        raise InvalidFormat(f"a sample needs at least 1 event, got {events}")
    rec = _Recorder("banking", seed)
    rng = rec.rng
    accounts = [banking.account_stream(n) for n in range(1, max(2, min(events // 50, 5_000)) + 1)]
    hot = accounts[: max(1, len(accounts) // 100)]
    for account in accounts:
        if len(rec.events) >= events:
            break
        owner = f"customer {account.removeprefix('account-')}"
        rec.run(banking.OpenAccount(account, owner=owner, initial_balance=rng.randint(0, 500) * 100), 5.0)

    def pick() -> str:
        return rng.choice(hot) if rng.random() < 0.1 else rng.choice(accounts)

    while len(rec.events) < events:
        roll = rng.random()
        amount = rng.randint(1, 400) * 25
        if roll < 0.35 or events - len(rec.events) == 1:
            rec.run(banking.Deposit(pick(), amount, reference=f"dep-{rec.commands}"))
        elif roll < 0.6:
            rec.run(banking.Withdraw(pick(), amount, reference=f"wd-{rec.commands}"))
        else:
            source, target = pick(), pick()
            if source != target:
                rec.run(banking.TransferMoney(source, target, amount, reference=f"tr-{rec.commands}"))
    return rec.events


_FIRST_NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")
_WORDS = ("login", "report", "invoice", "search", "export", "cache", "billing", "profile", "backup")
_VERBS = ("Fix", "Review", "Write", "Update", "Design", "Test", "Document", "Migrate", "Speed up", "Clean up")


def generate_tasks(events: int = SAMPLES["tasks"][1], *, seed: int = SEED) -> list[StoredEvent]:
    """A task-management history of at least ``events`` events (the last command may overshoot by a few):
    tasks created, assigned and reassigned, started, commented on, re-prioritised and completed."""
    if events < 1:
        raise InvalidFormat(f"a sample needs at least 1 event, got {events}")
    rec = _Recorder("tasks", seed)
    rng = rec.rng
    people = [f"{name}{n}" if n else name for n in range(6) for name in _FIRST_NAMES]
    people = people[: max(3, min(len(people), events // 300))]
    created: list[str] = []
    open_tasks: list[str] = []
    assignee: dict[str, str] = {}
    started: set[str] = set()

    def create() -> None:
        number = len(created) + 1
        task_id = f"{number:05d}"
        title = f"{rng.choice(_VERBS)} {rng.choice(_WORDS)} #{number}"
        priority = rng.choices(list(tasks.Priority), weights=(2, 5, 3, 1))[0]
        command = tasks.CreateTask.new(task_id, title, f"Raised by {rng.choice(people)}", rng.choice(people))
        if rec.run(dataclasses.replace(command, priority=priority)):
            created.append(task_id)
            open_tasks.append(task_id)

    while len(rec.events) < events:
        roll = rng.random()
        if roll < 0.22 or len(open_tasks) < 5:
            create()
            continue
        task_id = rng.choice(open_tasks)
        stream = tasks.task_stream(task_id)
        if roll < 0.45:
            person = rng.choice(people)
            if rec.run(tasks.AssignTask.new(task_id, person, assigned_by=rng.choice(people))):
                assignee[task_id] = person
        elif roll < 0.55:
            if task_id not in started and rec.run(tasks.StartTask(stream, started_by=rng.choice(people))):
                started.add(task_id)
        elif roll < 0.75:
            rec.run(tasks.AddComment(stream, author=rng.choice(people), comment=f"update {rec.commands}"))
        elif roll < 0.8:
            priority = rng.choice(list(tasks.Priority))
            rec.run(tasks.ChangePriority(stream, priority, changed_by=rng.choice(people)))
        else:
            finisher = assignee.get(task_id) or rng.choice(people)
            if rec.run(tasks.CompleteTask.new(task_id, completed_by=finisher)):
                open_tasks.remove(task_id)
    return rec.events


GENERATORS: dict[str, Callable[..., list[StoredEvent]]] = {
    "banking": generate_banking,
    "tasks": generate_tasks,
}


def generate(name: str, events: int | None = None, *, seed: int = SEED) -> list[StoredEvent]:
    """The history of sample ``name`` with about ``events`` events (default: the shipped size)."""
    if name not in GENERATORS:
        raise UnknownSample(f"unknown sample {name!r}; available: {', '.join(sorted(GENERATORS))}")
    return GENERATORS[name](SAMPLES[name][1] if events is None else events, seed=seed)


def write_sample(
    name: str,
    directory: str | Path | None = None,
    *,
    events: int | None = None,
    seed: int = SEED,
    progress: bool | None = None,
) -> Path:
    """Generate sample ``name`` and write it to its file in ``directory``; returns the path."""
    path = sample_path(name, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_events(generate(name, events, seed=seed), path, progress=progress)
    return path
