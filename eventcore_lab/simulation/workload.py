"""Workloads: what many clients do, described as data so a run can be repeated from its seed.

A workload is a weighted mix of command makers, a rule for choosing the streams they touch (uniform, Zipf
hot keys, or a fixed key per client), a number of clients, think time, and how much to run. Each client
draws its own commands from its own seeded RNG, so the deterministic scheduler and the threaded runner
issue exactly the same commands.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.command import Command
from ..core.errors import InvalidFormat


class KeyChoice:
    """How a client picks stream keys. Subclasses implement :meth:`pick`."""

    keys: tuple[str, ...]

    def pick(self, rng: random.Random, client: int, count: int) -> list[str]:
        raise NotImplementedError

    def _check(self, count: int) -> None:
        if count > len(self.keys):
            raise InvalidFormat(f"cannot pick {count} distinct keys from {len(self.keys)}")


def _keys(keys: Sequence[str]) -> tuple[str, ...]:
    if isinstance(keys, str) or not keys:
        raise InvalidFormat(f"keys must be a non-empty sequence of stream ids, got {keys!r}")
    if len(set(keys)) != len(keys):
        raise InvalidFormat("keys must be distinct")
    return tuple(keys)


class Uniform(KeyChoice):
    """Every key equally likely: the low-contention baseline."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = _keys(keys)

    def pick(self, rng: random.Random, client: int, count: int) -> list[str]:
        self._check(count)
        return rng.sample(self.keys, count)

    def __repr__(self) -> str:
        return f"Uniform({len(self.keys)} keys)"


class Zipf(KeyChoice):
    """Key of rank r (1-based, in the given order) with probability proportional to 1 / r**s: a few hot
    keys take most of the traffic, as real accounts and products do."""

    def __init__(self, keys: Sequence[str], s: float = 1.1) -> None:
        self.keys = _keys(keys)
        if s <= 0:
            raise InvalidFormat(f"Zipf exponent s must be > 0, got {s}")
        self.s = s
        self._cumulative = list(itertools.accumulate(1 / r**s for r in range(1, len(self.keys) + 1)))

    def probabilities(self) -> list[float]:
        total = self._cumulative[-1]
        return [w / total for w in (1 / r**self.s for r in range(1, len(self.keys) + 1))]

    def pick(self, rng: random.Random, client: int, count: int) -> list[str]:
        self._check(count)
        chosen: list[str] = []
        total = self._cumulative[-1]
        while len(chosen) < count:
            index = bisect.bisect_right(self._cumulative, rng.random() * total)
            key = self.keys[min(index, len(self.keys) - 1)]
            if key not in chosen:
                chosen.append(key)
        return chosen

    def __repr__(self) -> str:
        return f"Zipf({len(self.keys)} keys, s={self.s})"


class FixedKeys(KeyChoice):
    """Client ``c`` owns the ``per_client`` keys starting at ``c * per_client`` (wrapping around) and only
    ever uses those. With at least ``clients * per_client`` keys no two clients share a stream, so nothing
    conflicts: the baseline for contention studies."""

    def __init__(self, keys: Sequence[str], per_client: int = 1) -> None:
        self.keys = _keys(keys)
        if per_client < 1 or per_client > len(self.keys):
            raise InvalidFormat(f"per_client must be between 1 and {len(self.keys)}, got {per_client}")
        self.per_client = per_client

    def owned(self, client: int) -> list[str]:
        n = len(self.keys)
        return [self.keys[(client * self.per_client + j) % n] for j in range(self.per_client)]

    def pick(self, rng: random.Random, client: int, count: int) -> list[str]:
        if count > self.per_client:
            raise InvalidFormat(f"cannot pick {count} distinct keys from the {self.per_client} a client owns")
        owned = self.owned(client)
        return owned if count == len(owned) else rng.sample(owned, count)

    def __repr__(self) -> str:
        return f"FixedKeys({len(self.keys)} keys, {self.per_client} per client)"


@dataclass
class Draw:
    """What a command maker gets: the client's RNG and its key choice."""

    rng: random.Random
    client: int
    choice: KeyChoice

    def key(self) -> str:
        return self.choice.pick(self.rng, self.client, 1)[0]

    def keys(self, count: int) -> list[str]:
        """``count`` distinct keys (e.g. both accounts of a transfer)."""
        return self.choice.pick(self.rng, self.client, count)


Maker = Callable[[Draw], Command[Any]]


@dataclass(frozen=True)
class Op:
    """One kind of command in a mix: a name for reports, a maker and a relative weight."""

    name: str
    make: Maker
    weight: float = 1.0


@dataclass(frozen=True)
class Workload:
    """A repeatable description of load.

    ``mix``: ops, or ``{name: (weight, maker)}``. ``think_time``: virtual (or, in the threaded runner,
    real) seconds a client waits between commands, constant or drawn uniformly from ``(low, high)``.
    ``commands`` is the total, split evenly over clients; ``duration`` instead stops each client issuing
    commands after that many seconds. ``setup`` commands run once, in order, before the clients start.
    """

    mix: Sequence[Op] | Mapping[str, tuple[float, Maker]]
    keys: KeyChoice
    clients: int = 10
    think_time: float | tuple[float, float] = 0.0
    commands: int | None = 1000
    duration: float | None = None
    seed: int = 0
    setup: Sequence[Command[Any]] = field(default=())

    def __post_init__(self) -> None:
        ops = (
            tuple(Op(name, make, weight) for name, (weight, make) in self.mix.items())
            if isinstance(self.mix, Mapping)
            else tuple(self.mix)
        )
        if not ops or not all(isinstance(op, Op) for op in ops):
            raise InvalidFormat("a workload's mix needs at least one Op (or {name: (weight, maker)})")
        if any(op.weight < 0 for op in ops) or sum(op.weight for op in ops) <= 0:
            raise InvalidFormat("op weights must be >= 0 with a positive total")
        object.__setattr__(self, "mix", ops)
        if not isinstance(self.keys, KeyChoice):
            raise InvalidFormat(f"keys must be a KeyChoice (Uniform, Zipf, FixedKeys), got {self.keys!r}")
        if not isinstance(self.clients, int) or self.clients < 1:
            raise InvalidFormat(f"clients must be a positive int, got {self.clients!r}")
        if (self.commands is None) == (self.duration is None):
            raise InvalidFormat("give exactly one of commands= (a total) or duration= (seconds)")
        if self.commands is not None and self.commands < 0:
            raise InvalidFormat(f"commands must be >= 0, got {self.commands}")
        if self.duration is not None and self.duration <= 0:
            raise InvalidFormat(f"duration must be > 0 seconds, got {self.duration}")
        low, high = self.think_range
        if not 0 <= low <= high:
            raise InvalidFormat(f"think_time must be >= 0 (or a (low, high) range), got {self.think_time!r}")

    @property
    def ops(self) -> tuple[Op, ...]:
        return self.mix  # type: ignore[return-value]  # normalized in __post_init__

    @property
    def think_range(self) -> tuple[float, float]:
        t = self.think_time
        return (float(t), float(t)) if isinstance(t, int | float) else (float(t[0]), float(t[1]))

    def quota(self, client: int) -> int | None:
        """How many commands client ``client`` issues (None: until ``duration``)."""
        if self.commands is None:
            return None
        share, extra = divmod(self.commands, self.clients)
        return share + (1 if client < extra else 0)

    def client_rng(self, client: int) -> random.Random:
        return random.Random(self.seed * 1_000_003 + client)

    def stream_for(self, client: int) -> ClientStream:
        return ClientStream(self, client)


class ClientStream:
    """One client's endless, seeded sequence of (op name, command, think time before it)."""

    def __init__(self, workload: Workload, client: int) -> None:
        self.workload = workload
        self.client = client
        self.rng = workload.client_rng(client)
        self.draw = Draw(self.rng, client, workload.keys)
        ops = workload.ops
        self._ops = ops
        self._cumulative = list(itertools.accumulate(op.weight for op in ops))
        # fixed for the workload (it is frozen): computed once, not per command
        self._think = workload.think_range
        self._total_weight = self._cumulative[-1]
        self._last_op = len(ops) - 1

    def __iter__(self) -> Iterator[tuple[str, Command[Any], float]]:
        return self

    def __next__(self) -> tuple[str, Command[Any], float]:
        rng = self.rng
        low, high = self._think
        think = low if low == high else rng.uniform(low, high)
        index = bisect.bisect_right(self._cumulative, rng.random() * self._total_weight)
        op = self._ops[min(index, self._last_op)]
        command = op.make(self.draw)
        if not isinstance(command, Command):
            raise InvalidFormat(f"op {op.name!r} made {command!r}, not a Command")
        return op.name, command, think
