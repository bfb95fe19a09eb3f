"""The search: every interleaving of the clients' steps, with sleep-set reduction and state caching.

State. A state is the store's log plus each client's local state. Two states are the same when their
keys are equal: the key is a hash of the log (stream, type and payload of every event) and each
client's :meth:`~Client.key`. Without reduction the log hash follows the global order; with reduction it
is taken per stream, because commits to disjoint streams in either order leave the same streams behind.

Independence. Two steps of different clients commute when neither writes a stream the other reads,
checks or writes (:class:`Footprint`, recorded from what the store was really asked). Swapping two such
adjacent steps leaves each client's local state and every stream's contents unchanged, and a client
never blocks, so neither step can disable the other.

Sleep sets (Godefroid, 1996). Each state is explored with a set of steps that need not be taken from it:
when steps t1..tn are explored from s in that order, the child reached by ti inherits, from s's sleep
set and from t1..t(i-1), every step independent of ti. Soundness: any execution from s·ti that takes an
earlier sibling tj (independent of everything before it) is equivalent, by swapping adjacent independent
steps, to one that starts s·tj·..., which the search explores under tj; a sleeping step is woken as soon
as a dependent step runs. Sleep sets prune transitions, never states: every reachable state (per-stream
equivalence classes of them) is still visited, so an invariant of the store is checked on every state
that any interleaving can reach. This holds when the invariant and the commands' folds do not depend on
the relative order of events in *different* streams (true of folds that add up per stream, like
balances); keep ``reduction=False`` when that is not so.

Caching with sleep sets. Plain caching would be unsound: a state first reached with a large sleep set
and later with a smaller one would never take the steps only the first arrival slept through. So each
cached state keeps the steps still asleep there; a later arrival takes the ones that are asleep in the
cache but awake for it, and the cache keeps the intersection (Godefroid's rule).

Shortest counterexample. Depth-first search finds *a* violation quickly; a breadth-first search without
reduction, bounded by that violation's length, then finds one of minimal length (breadth-first with
caching reaches every state first at its least depth, and the invariant is checked as states are made).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from ...core.errors import InvalidFormat
from ...core.events import StoredEvent
from ...stores.memory import MemoryStore
from ._clients import Client, Move
from ._footprint import Footprint, RecordingStore

Invariant = Callable[[Any], object]

#: Stores kept for reuse, most recently used last (a depth-first search revisits recent logs).
_STORES_KEPT = 256


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    """One explored state, linked to the state and step it was reached from."""

    log: tuple[StoredEvent, ...]
    locals: tuple[Any, ...]
    log_key: Hashable
    depth: int
    parent: Node | None = None
    client: int = -1
    move: Move | None = None

    def path(self) -> list[tuple[int, Move]]:
        """The steps from the initial state to this one, as (client index, move)."""
        steps: list[tuple[int, Move]] = []
        node: Node | None = self
        while node is not None and node.move is not None:
            steps.append((node.client, node.move))
            node = node.parent
        return steps[::-1]


@dataclass(slots=True)
class _Successor:
    client: int
    move: Move
    footprint: Footprint
    node: Node
    store: MemoryStore | None  # the store after the step, when it committed


@dataclass(slots=True)
class _Visit:
    asleep: frozenset[int]  # steps from this state not explored yet
    explored: dict[int, Footprint] = field(default_factory=dict)


@dataclass
class SearchStats:
    states: int = 0
    transitions: int = 0
    pruned: int = 0
    cache_hits: int = 0
    truncated: int = 0
    terminal: int = 0
    stopped_by: str | None = None
    interleavings: int = 0


class Search:
    """One exploration of ``clients`` from the history in ``initial`` (see the module docstring)."""

    def __init__(
        self,
        initial: MemoryStore,
        clients: Sequence[Client],
        invariant: Invariant,
        *,
        reduction: bool,
        clock: Callable[[], datetime],
        max_depth: int | None = None,
        max_states: int | None = None,
        time_budget: float | None = None,
        progress: Any = None,
    ) -> None:
        if not clients:
            raise InvalidFormat("nothing to explore: the scenario has no clients")
        self.clients = tuple(clients)
        self.invariant = invariant
        self.reduction = reduction
        self.clock = clock
        self.max_depth = max_depth
        self.max_states = max_states
        self.deadline = None if time_budget is None else time.monotonic() + time_budget
        self.progress = progress
        self.stats = SearchStats()
        self._verdicts: dict[Hashable, str | None] = {}
        self._stores: OrderedDict[int, tuple[tuple[StoredEvent, ...], MemoryStore]] = OrderedDict()
        log = tuple(initial.read_all())
        self.root = Node(log, tuple(c.start() for c in self.clients), self._extend_key(None, log), 0)
        self._root_store = initial

    # -- keys and stores ------------------------------------------------------------------------------

    def key(self, node: Node) -> Hashable:
        return (node.log_key, tuple(c.key(local) for c, local in zip(self.clients, node.locals, strict=True)))

    def _extend_key(self, previous: Hashable, events: Sequence[StoredEvent]) -> Hashable:
        if not self.reduction:
            digest = hashlib.blake2b(previous if isinstance(previous, bytes) else b"", digest_size=16)
            for event in events:
                digest.update(_event_bytes(event))
            return digest.digest()
        streams: dict[str, bytes] = dict(previous) if isinstance(previous, tuple) else {}
        for event in events:
            streams[event.stream_id] = hashlib.blake2b(
                streams.get(event.stream_id, b"") + _event_bytes(event), digest_size=16
            ).digest()
        return tuple(sorted(streams.items()))

    def _store(self, log: tuple[StoredEvent, ...]) -> MemoryStore:
        """A store holding ``log``; many states share one log (only their clients differ), so the store
        built for it is kept for the next of them, until a commit changes it."""
        kept = self._stores.get(id(log))
        if kept is not None and kept[0] is log:
            self._stores.move_to_end(id(log))
            return kept[1]
        store = MemoryStore(clock=self.clock)
        if log:
            store.import_events(log)
        self._keep(log, store)
        return store

    def _keep(self, log: tuple[StoredEvent, ...], store: MemoryStore) -> None:
        self._stores[id(log)] = (log, store)  # the log is held too, so its id cannot be reused meanwhile
        if len(self._stores) > _STORES_KEPT:
            self._stores.popitem(last=False)

    def finished(self, node: Node) -> bool:
        return all(c.finished(local) for c, local in zip(self.clients, node.locals, strict=True))

    # -- invariant ------------------------------------------------------------------------------------

    def verdict(self, node: Node, store: Any) -> str | None:
        """None when the invariant holds on ``store`` (cached per log), else what it said."""
        if node.log_key in self._verdicts:
            return self._verdicts[node.log_key]
        try:
            result = self.invariant(store)
        except AssertionError as failed:
            message: str | None = str(failed) or "the invariant's assertion failed"
        else:
            broken = result is not None and not result
            name = getattr(self.invariant, "__name__", "invariant")
            message = f"{name} returned {result!r}" if broken else None
        self._verdicts[node.log_key] = message
        return message

    def message_of(self, node: Node) -> str:
        """What the invariant said about ``node``'s log (which this search judged to be broken)."""
        return self._verdicts.get(node.log_key) or "the invariant does not hold"

    def _end_verdict(self, node: Node) -> str | None:
        if node.log_key in self._verdicts:  # already judged when the log was made
            return self._verdicts[node.log_key]
        return self.verdict(node, self._store(node.log))

    # -- steps ----------------------------------------------------------------------------------------

    def successors(self, node: Node, only: frozenset[int] | None = None) -> list[_Successor]:
        """Take each enabled client's next step (or only those in ``only``) from ``node``."""
        out: list[_Successor] = []
        store: MemoryStore | None = None
        for index, client in enumerate(self.clients):
            local = node.locals[index]
            if client.finished(local) or (only is not None and index not in only):
                continue
            if store is None:
                store = self._store(node.log)
            recording = RecordingStore(store)
            move = client.step(local, recording)
            footprint = recording.footprint
            locals_ = (*node.locals[:index], move.local, *node.locals[index + 1 :])
            committed: MemoryStore | None = None
            if footprint.writes:
                new = store.read_all(after=len(node.log))
                child = Node(
                    node.log + tuple(new), locals_, self._extend_key(node.log_key, new), node.depth + 1,
                    node, index, move,
                )  # fmt: skip
                self._stores.pop(id(node.log), None)  # this store now holds the child's log
                self._keep(child.log, store)
                committed, store = store, None  # the next client starts from the unchanged log
            else:
                child = Node(node.log, locals_, node.log_key, node.depth + 1, node, index, move)
            out.append(_Successor(index, move, footprint, child, committed))
        return out

    def enabled(self, node: Node) -> frozenset[int]:
        return frozenset(
            i for i, (c, lo) in enumerate(zip(self.clients, node.locals, strict=True)) if not c.finished(lo)
        )

    def _out_of_budget(self) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.stats.stopped_by = "time budget"
            return True
        if self.max_states is not None and self.stats.states >= self.max_states:
            self.stats.stopped_by = "state limit"
            return True
        return False

    def _new_state(self) -> None:
        self.stats.states += 1
        if self.progress is not None:
            self.progress.update(1)

    # -- depth-first, with sleep sets when reducing ---------------------------------------------------

    def depth_first(self) -> Node | None:
        """Explore everything within the bounds; return the first violating state found, if any."""
        if self.verdict(self.root, self._root_store) is not None:
            self.stats.stopped_by = "violation"
            return self.root
        visited: dict[Hashable, _Visit] = {}
        edges: dict[Hashable, list[Hashable]] = {}
        terminal: set[Hashable] = set()
        stack: list[tuple[Node, dict[int, Footprint], Hashable]] = [(self.root, {}, self.key(self.root))]
        found: Node | None = None
        pops = 0
        while stack and found is None:
            pops += 1
            if pops % 64 == 0 and self._out_of_budget():
                break
            node, sleep, key = stack.pop()
            prior = visited.get(key)
            if prior is None and self.finished(node):
                visited[key] = _Visit(frozenset())
                terminal.add(key)
                self.stats.terminal += 1
                self._new_state()
                if self._end_verdict(node) is not None:  # the invariant at the end of the interleaving
                    found = node
                    self.stats.stopped_by = "violation"
                continue
            if self.max_depth is not None and node.depth >= self.max_depth:
                self.stats.truncated += 1
                continue
            if prior is not None:
                self.stats.cache_hits += 1
                wake = prior.asleep - sleep.keys()
                if not wake:
                    continue
                todo = self.successors(node, only=wake)
                base = {**sleep, **prior.explored}
                prior.asleep = prior.asleep & frozenset(sleep)
            else:
                self._new_state()
                awake = self.enabled(node) - sleep.keys()
                todo = self.successors(node, only=awake)
                base = dict(sleep)
                prior = visited[key] = _Visit(frozenset(sleep) & self.enabled(node))
                self.stats.pruned += len(sleep)
            children: list[tuple[Node, dict[int, Footprint], Hashable]] = []
            for succ in todo:
                child_sleep = (
                    {j: fp for j, fp in base.items() if j != succ.client and fp.commutes_with(succ.footprint)}
                    if self.reduction
                    else {}
                )
                base[succ.client] = succ.footprint
                prior.explored[succ.client] = succ.footprint
                self.stats.transitions += 1
                child_key = self.key(succ.node)
                edges.setdefault(key, []).append(child_key)
                if succ.store is not None and self.verdict(succ.node, succ.store) is not None:
                    found = succ.node
                    self.stats.stopped_by = "violation"
                    break
                children.append((succ.node, child_sleep, child_key))
            stack.extend(reversed(children))
        self.stats.interleavings = _count_paths(self.key(self.root), edges, terminal)
        return found

    # -- breadth-first without reduction: the shortest violation --------------------------------------

    def breadth_first(self, bound: int) -> Node | None:
        """The violating state nearest to the start, searching at most ``bound`` steps deep."""
        if self.verdict(self.root, self._root_store) is not None:
            return self.root
        seen = {self.key(self.root)}
        queue = deque([self.root])
        while queue:
            if self.stats.states % 64 == 0 and self._out_of_budget():
                return None
            node = queue.popleft()
            self._new_state()
            if node.depth >= bound:
                continue
            for succ in self.successors(node):
                self.stats.transitions += 1
                if succ.store is not None and self.verdict(succ.node, succ.store) is not None:
                    return succ.node
                child_key = self.key(succ.node)
                if child_key not in seen:
                    seen.add(child_key)
                    queue.append(succ.node)
        return None


def _event_bytes(event: StoredEvent) -> bytes:
    return msgspec.msgpack.encode((str(event.stream_id), event.event_type, event.payload))


def _count_paths(root: Hashable, edges: dict[Hashable, list[Hashable]], terminal: set[Hashable]) -> int:
    """Complete interleavings in the explored graph: paths from the root to a finished state."""
    counts: dict[Hashable, int] = {}
    stack: list[tuple[Hashable, bool]] = [(root, False)]
    while stack:
        key, ready = stack.pop()
        if key in counts:
            continue
        children = edges.get(key, [])
        if ready:
            counts[key] = (1 if key in terminal else 0) + sum(counts[c] for c in children)
            continue
        stack.append((key, True))
        stack.extend((c, False) for c in children if c not in counts)
    return counts.get(root, 0)
