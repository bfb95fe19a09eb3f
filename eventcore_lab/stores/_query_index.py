"""Positions by tag and by event type: how a store answers a query without scanning its log.

The memory store keeps its whole index here; the DuckDB store keeps one in memory beside the file
(its writer adds each group as it publishes it), so that a query read and an append condition cost a
few binary searches instead of an SQL scan of the tags column. The matching rule (an item matches an
event of any of its types carrying all of its tags; a query matches any of its items) is the one of
:class:`~eventcore_lab.core.query.Query`, answered from positions alone.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import operator
from array import array
from collections.abc import Iterable, Iterator, Sequence

from ..core.query import Query, QueryItem

_EMPTY = array("q")


class QueryIndex:
    """Ascending positions per tag and per event type (``array('q')``: 8 bytes a position), and per
    stream where the store has no faster way to find a stream's events (DuckDB: without it, reading a
    stream it has not cached scans the whole table)."""

    __slots__ = ("_by_stream", "_by_tag", "_by_type")

    def __init__(self) -> None:
        self._by_tag: dict[str, array[int]] = {}
        self._by_type: dict[str, array[int]] = {}
        self._by_stream: dict[str, array[int]] = {}

    def add(self, position: int, event_type: str, tags: Iterable[str]) -> None:
        """Index one event; positions must come in ascending order (the log's)."""
        found = self._by_type.get(event_type)
        if found is None:
            self._by_type[event_type] = array("q", (position,))
        else:
            found.append(position)
        for tag in tags:
            found = self._by_tag.get(tag)
            if found is None:
                self._by_tag[tag] = array("q", (position,))
            else:
                found.append(position)

    def add_many(self, positions: Sequence[int], types: Sequence[str], tags: Sequence[Sequence[str]]) -> None:
        """Index many events (columns, index for index; positions ascending, above those known).

        An import: without tags, each type's positions go in with one C-level pass each."""
        if any(tags):
            for position, event_type, event_tags in zip(positions, types, tags, strict=True):
                self.add(position, event_type, event_tags)
            return
        kinds = dict.fromkeys(types)
        for kind in kinds:
            run = positions
            if len(kinds) > 1:
                run = list(itertools.compress(positions, map(operator.eq, types, itertools.repeat(kind))))
            self.add_positions(event_type=kind, positions=run)

    def add_positions(
        self,
        *,
        event_type: str | None = None,
        tag: str | None = None,
        stream_id: str | None = None,
        positions: Iterable[int],
    ) -> None:
        """Index many events of one type, tag or stream at once (positions ascending, above those known)."""
        key: str | None
        if stream_id is not None:
            index, key = self._by_stream, stream_id
        elif tag is not None:
            index, key = self._by_tag, tag
        else:
            index, key = self._by_type, event_type
        assert key is not None
        index.setdefault(key, array("q")).extend(positions)

    def add_streams(self, positions: Iterable[int], streams: Iterable[str]) -> None:
        """Index events by stream (positions ascending, above those known)."""
        by_stream = self._by_stream
        for position, stream_id in zip(positions, streams, strict=True):
            found = by_stream.get(stream_id)
            if found is None:
                by_stream[stream_id] = array("q", (position,))
            else:
                found.append(position)

    def stream_positions(self, stream_ids: Iterable[str], head: int) -> list[int]:
        """The positions up to ``head`` of the events of ``stream_ids``, ascending."""
        runs = [_between(self._by_stream.get(sid, _EMPTY), 0, head) for sid in stream_ids]
        return list(runs[0] if len(runs) == 1 else heapq.merge(*runs))

    def matching(self, query: Query, after: int, head: int) -> Iterator[int]:
        """Positions in (after, head] of events matching ``query``, ascending, each once."""
        if query.matches_all:
            return iter(range(after + 1, head + 1))
        runs = [self._item_matching(item, after, head) for item in query.items]
        if len(runs) == 1:
            return runs[0]
        return (p for p, _ in itertools.groupby(heapq.merge(*runs)))

    def first(self, query: Query, after: int, head: int) -> int | None:
        """The lowest position in (after, head] of an event matching ``query``, if any."""
        return next(self.matching(query, after, head), None)

    def _item_matching(self, item: QueryItem, after: int, head: int) -> Iterator[int]:
        types = [self._by_type.get(t, _EMPTY) for t in item.types]
        if not item.tags:
            runs = [_between(positions, after, head) for positions in types]
            return runs[0] if len(runs) == 1 else heapq.merge(*runs)
        # walk the rarest tag's positions; check the other tags and the types by binary search
        tagged = sorted((self._by_tag.get(t, _EMPTY) for t in item.tags), key=len)
        rarest, others = tagged[0], tagged[1:]
        return (
            p
            for p in _between(rarest, after, head)
            if all(_contains(o, p) for o in others) and (not types or any(_contains(t, p) for t in types))
        )


def _between(positions: Sequence[int], after: int, head: int) -> Iterator[int]:
    """The ascending ``positions`` in (after, head]; later additions past ``head`` are not seen."""
    start, end = bisect.bisect_right(positions, after), bisect.bisect_right(positions, head)
    return iter(positions[start:end])


def _contains(positions: Sequence[int], position: int) -> bool:
    at = bisect.bisect_left(positions, position)
    return at < len(positions) and positions[at] == position
