"""What one step touched in the store: the ground truth for deciding which steps commute.

The explorer never guesses a step's streams from its command's declaration (discovered streams, retries
and no-op commits would make a guess wrong); it runs the step against a :class:`RecordingStore` and
keeps what the store was actually asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...core.events import EventToWrite, ExpectedVersion, StoredEvent
from ...core.query import AppendCondition, Query
from ...stores.base import QueryRead, StreamsRead
from ...stores.filters import FilteredRead, given_options


@dataclass(frozen=True, slots=True)
class Footprint:
    """Streams a step read (or checked at commit) and streams it wrote; ``everything`` when it read the
    whole log (``read_all``, ``head``), which depends on every write."""

    reads: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()
    everything: bool = False

    def commutes_with(self, other: Footprint) -> bool:
        """Two steps of different clients commute when neither writes what the other reads or writes."""
        if (self.writes and other.everything) or (other.writes and self.everything):
            return False
        return not (self.writes & (other.reads | other.writes)) and not (
            other.writes & (self.reads | self.writes)
        )


class RecordingStore:
    """Forwards to a real store and notes every stream the caller read, checked or wrote.

    Only successful appends count as writes: a commit refused with a conflict changed nothing, so it
    reads (checks) its streams and writes none.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._reads: set[str] = set()
        self._writes: set[str] = set()
        self._everything = False

    @property
    def footprint(self) -> Footprint:
        return Footprint(frozenset(self._reads), frozenset(self._writes), self._everything)

    def read_streams(self, stream_ids: Iterable[str]) -> StreamsRead:
        ids = list(stream_ids)
        self._reads.update(str(s) for s in ids)
        result: StreamsRead = self.inner.read_streams(ids)
        return result

    def read_stream(
        self,
        stream_id: str,
        *,
        after_version: int = 0,
        event_types: Iterable[str | type] | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        self._reads.add(str(stream_id))
        result: list[StoredEvent] = self.inner.read_stream(
            stream_id,
            after_version=after_version,
            **given_options(event_types=event_types, backwards=backwards, limit=limit),
        )
        return result

    def stream_version(self, stream_id: str) -> int:
        self._reads.add(str(stream_id))
        return int(self.inner.stream_version(stream_id))

    def read_all(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
        backwards: bool = False,
    ) -> list[StoredEvent]:
        self._everything = True
        result: list[StoredEvent] = self.inner.read_all(
            after=after,
            limit=limit,
            **given_options(event_types=event_types, categories=categories, backwards=backwards),
        )
        return result

    def read_filtered(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
    ) -> FilteredRead:
        self._everything = True
        result: FilteredRead = self.inner.read_filtered(
            after=after, limit=limit, event_types=event_types, categories=categories
        )
        return result

    def head(self) -> int:
        self._everything = True
        return int(self.inner.head())

    def read_query(self, query: Query, *, after: int = 0, limit: int | None = None) -> QueryRead:
        self._everything = True  # a query may match an event of any stream
        result: QueryRead = self.inner.read_query(query, after=after, limit=limit)
        return result

    def append(
        self,
        events: Sequence[EventToWrite],
        expected: Mapping[str, ExpectedVersion] | None = None,
        *,
        condition: AppendCondition | None = None,
    ) -> list[StoredEvent]:
        self._reads.update(str(s) for s in (expected or {}))
        if condition is not None:
            self._everything = True
            stored: list[StoredEvent] = self.inner.append(events, expected, condition=condition)
            self._writes.update(e.stream_id for e in stored)
            return stored
        stored = self.inner.append(events, expected)
        self._writes.update(e.stream_id for e in stored)
        return stored
