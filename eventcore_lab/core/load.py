"""Reading a consistency boundary (streams and queries) and folding it, inside a command or outside one.

The executor and read-side code need the same three things: read some streams and some queries, merge
their events in global position order with each event once (an event may be in a stream read *and*
match a query), and remember what the read reflects (each stream's version, the query's position), so
a write decided on it can be guarded. :class:`Boundary` accumulates that; :func:`load` is the one-call
form for notebooks, tests and read models:

>>> # loaded = load(store, JoinCourse("student-1", "course-7"))   # the command's own streams/query
>>> # loaded = load(store, count_seats, initial=0, query=course_query("course-7"))
>>> # loaded.state, loaded.versions, loaded.position, loaded.condition
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from ._guessing import Guesses, GuessingReads
from .errors import InvalidArgument, UnknownEventFolded
from .events import ExpectedVersion, StoredEvent
from .ids import StreamId
from .query import AppendCondition, Query, QueryItem
from .registry import RetiredEvent, UnknownEvent

if TYPE_CHECKING:
    from ..stores.base import EventStore, StreamsRead

S = TypeVar("S")

__all__ = ["Boundary", "Fold", "Loaded", "fold_events", "load", "union"]


class Fold(Protocol[S]):
    """What :func:`load` folds with: a Command, or any object with the same two methods."""

    def initial_state(self) -> S: ...

    def apply(self, state: S, event: StoredEvent) -> S: ...


def union(queries: Iterable[Query]) -> Query:
    """One query matching what any of ``queries`` matches (``Query.all()`` if any of them is)."""
    items: dict[QueryItem, None] = {}
    for query in queries:
        if query.matches_all:
            return Query.all()
        items.update(dict.fromkeys(query.items))
    return Query(tuple(items))


class Boundary:
    """What one decision has read so far: stream versions, query items and position, and the events.

    Streams should be read before queries: an event committed between a query read and a later stream
    read would otherwise fail the append condition although the decision saw it.
    """

    __slots__ = ("_batches", "_queries", "position", "versions")

    def __init__(self) -> None:
        #: Each stream read and its version when read (0: no events).
        self.versions: dict[str, int] = {}
        #: The lowest head position a query was read at (None: no query read yet).
        self.position: int | None = None
        self._queries: list[Query] = []
        self._batches: list[list[StoredEvent]] = []

    def add_streams(self, found: StreamsRead) -> None:
        """Take in a read of streams (from ``store.read_streams`` or a snapshot's tail)."""
        self.versions.update(found.versions)
        if found.events:
            self._batches.append(found.events)

    def read_streams(
        self, store: EventStore, stream_ids: Iterable[str], guesses: Guesses | None = None
    ) -> None:
        ids = [sid for sid in stream_ids if sid not in self.versions]
        if not ids:
            return
        if guesses is None:
            self.add_streams(store.read_streams(ids))
        else:  # a store that may guess (see _guessing): remember what it guessed
            found, guessed = cast(GuessingReads, store).read_streams_guessing(ids)
            guesses.streams.update(guessed)
            self.add_streams(found)

    def read_query(self, store: EventStore, query: Query) -> None:
        """Read every event matching ``query``; the append condition then guards it from this position."""
        from ..stores.base import Queries  # the store layer imports core, not the other way round

        if not isinstance(query, Query):
            raise InvalidArgument(f"a command's query must be a Query, got {query!r}")
        if not isinstance(store, Queries):
            raise InvalidArgument(
                f"{type(store).__name__} cannot read by query (it has no read_query/append condition); "
                "use a built-in store or declare streams instead"
            )
        found = store.read_query(query)
        self._queries.append(query)
        self.position = found.position if self.position is None else min(self.position, found.position)
        if found.events:
            self._batches.append(found.events)

    def knows(self, item: str | Query) -> bool:
        """Whether ``item`` (a stream id or a query) was read already."""
        if isinstance(item, Query):
            return item in self._queries
        return item in self.versions

    @property
    def query(self) -> Query | None:
        """The union of the queries read (None: none were)."""
        return union(self._queries) if self._queries else None

    def condition(self) -> AppendCondition | None:
        """The append condition that guards a decision made on this read (None without queries)."""
        query = self.query
        if query is None:
            return None
        return AppendCondition(query, after=self.position)

    def events(self) -> Iterator[StoredEvent]:
        """Every event read, in position order, each once."""
        batches = self._batches
        if len(batches) <= 1 and not self._queries:  # one read: in order, each once; no generator needed
            return iter(batches[0] if batches else ())
        return self._merged()

    def _merged(self) -> Iterator[StoredEvent]:
        batches = self._batches
        last = 0
        for event in heapq.merge(*batches, key=_position):
            if event.position != last:
                last = event.position
                yield event

    @property
    def folded(self) -> int:
        """How many events were read (with a query, an event in a stream read too counts twice)."""
        return sum(len(b) for b in self._batches)

    @property
    def last_position(self) -> int:
        return max((b[-1].position for b in self._batches), default=0)

    def streams_seen(self) -> tuple[str, ...]:
        """The streams read, then the streams the query's events came from, in order of first use."""
        seen = dict.fromkeys(self.versions)
        for batch in self._batches:
            seen.update(dict.fromkeys(e.stream_id for e in batch))
        return tuple(seen)


def fold_events(
    fold: Fold[S], state: S, events: Iterable[StoredEvent], *, accepts_unknown: bool = False
) -> S:
    """Fold ``events`` into ``state``; retired events are dropped, unknown ones refused unless accepted."""
    apply = fold.apply
    for event in events:
        payload_type = type(event.payload)
        if payload_type is RetiredEvent:
            continue  # a retired event's type is gone from the code: folds drop it
        if payload_type is UnknownEvent and not accepts_unknown:
            raise UnknownEventFolded(
                f"{type(fold).__name__} would fold event {event.event_id} of stream "
                f"{event.stream_id!r} (version {event.version}), whose type {event.event_type!r} "
                "is not registered; import the module that defines it, or set "
                "accepts_unknown_events = True on the command to fold UnknownEvent payloads"
            )
        state = apply(state, event)
    return state


@dataclass(frozen=True)
class Loaded(Generic[S]):
    """Folded state and exactly what it reflects: each stream's version and the query's position."""

    state: S
    versions: dict[str, int] = field(default_factory=dict)
    #: The head position the query was read at, else the position of the last event folded (0: none).
    position: int = 0
    query: Query | None = None
    #: How many events were folded.
    events: int = 0

    @property
    def expected(self) -> dict[str, ExpectedVersion]:
        """Stream expectations for an append decided on this state."""
        return {sid: ExpectedVersion.exact(v) for sid, v in self.versions.items()}

    @property
    def condition(self) -> AppendCondition | None:
        """The append condition for a write decided on this state (None when no query was read)."""
        return None if self.query is None else AppendCondition(self.query, after=self.position)


class _FunctionFold(Generic[S]):
    def __init__(self, step: Callable[[S, StoredEvent], S], initial: S) -> None:
        self._step, self._initial = step, initial

    def initial_state(self) -> S:
        return self._initial

    def apply(self, state: S, event: StoredEvent) -> S:
        return self._step(state, event)


def load(
    store: EventStore,
    fold: Fold[S] | Callable[[S, StoredEvent], S],
    *,
    streams: Iterable[str] | str = (),
    query: Query | None = None,
    initial: Any = None,
) -> Loaded[S]:
    """Read ``streams`` and ``query`` from ``store`` and fold their events (position order, each once).

    ``fold`` is a Command (or any object with ``initial_state`` and ``apply``) or a plain function
    ``(state, event) -> state`` starting from ``initial``. Given a Command and neither ``streams`` nor
    ``query``, its own declared streams and query are read: the state it would decide on (before any
    resolver). The result says what it reflects, so read-side code can show it and tests can append
    under ``loaded.expected`` and ``loaded.condition``.
    """
    folder: Fold[S] = (
        _FunctionFold(fold, initial) if callable(fold) and not hasattr(fold, "apply") else fold  # type: ignore[assignment]
    )
    ids = [streams] if isinstance(streams, str) else list(streams)
    if not ids and query is None and hasattr(fold, "read_streams"):
        ids = list(fold.read_streams())
        declared = getattr(fold, "query", None)
        query = declared() if callable(declared) else None
    boundary = Boundary()
    boundary.read_streams(store, [StreamId(sid) for sid in ids])
    if query is not None:
        boundary.read_query(store, query)
    accepts = bool(getattr(fold, "accepts_unknown_events", False))
    events = list(boundary.events())
    state = fold_events(folder, folder.initial_state(), events, accepts_unknown=accepts)
    position = boundary.position if boundary.position is not None else boundary.last_position
    return Loaded(state, dict(boundary.versions), position, boundary.query, len(events))


def _position(event: StoredEvent) -> int:
    return event.position
