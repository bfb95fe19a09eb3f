"""Filtered reads of the log: which events a reader wants, and how far a filtered read has looked.

A reader that wants a few event types (a projection) or a few stream categories asks the store for
those only; durable stores filter in SQL, on indexes. Because the events it gets are sparse, it also
needs to know how far the store looked: :class:`FilteredRead` says so, and a runner saves that position
as its checkpoint, so the checkpoint reaches the head even when the last events were not for it.

A stream's category is the part of its id before the first ``-`` (``account`` for ``account-42``).
Event types are matched on the type name a reader sees (after any upcaster renamed it).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec

from ..core.events import StoredEvent


def category_of(stream_id: str) -> str:
    """A stream's category: the part of its id before the first ``-`` (the whole id without one)."""
    return stream_id.partition("-")[0]


class LogFilter(msgspec.Struct, frozen=True):
    """Checked read filters (built by :func:`eventcore_lab.stores.rules.check_log_filter`).

    ``None`` in a field means no restriction on it; an event matches when it passes both.
    """

    event_types: frozenset[str] | None = None
    categories: frozenset[str] | None = None

    def matches(self, event: StoredEvent) -> bool:
        return (self.event_types is None or event.event_type in self.event_types) and (
            self.categories is None or category_of(event.stream_id) in self.categories
        )

    def select(self, events: Iterable[StoredEvent]) -> list[StoredEvent]:
        """The matching events of ``events``, in their order."""
        return [event for event in events if self.matches(event)]

    def sql_types(self) -> list[str] | None:
        """The type names to filter on in SQL, sorted (None: any type)."""
        return None if self.event_types is None else sorted(self.event_types)

    def sql_categories(self) -> list[str] | None:
        """The categories to filter on in SQL, sorted (None: any category)."""
        return None if self.categories is None else sorted(self.categories)


def select_sql(
    columns: str,
    table: str,
    condition: str,
    params: list[Any],
    where: LogFilter | None,
    *,
    contains: str,
    order: str,
    limit: int | None,
    placeholder: str,
) -> tuple[str, list[Any]]:
    """One SELECT of events under ``condition`` and ``where`` (matched on stored names), for a SQL store:
    ``contains`` says how its dialect tests membership in a list parameter, e.g. ``"{} = ANY(%s)"``."""
    query = f"SELECT {columns} FROM {table} WHERE {condition}"
    values = list(params)
    if where is not None and where.event_types is not None:
        query += " AND " + contains.format("event_type")
        values.append(where.sql_types())
    if where is not None and where.categories is not None:
        query += " AND " + contains.format("split_part(stream_id, '-', 1)")
        values.append(where.sql_categories())
    query += f" ORDER BY {order}"
    if limit is not None:
        query += f" LIMIT {placeholder}"
        values.append(limit)
    return query, values


class FilteredRead(msgspec.Struct, frozen=True):
    """The events a filtered read found, and the position it looked up to.

    Every matching event with a position in ``(after, position]`` is in ``events``, so a reader
    continues with ``after=position``; ``position`` is the last event's when ``limit`` cut the read
    short, and otherwise the last position the store could read without skipping an event.
    """

    events: list[StoredEvent]
    position: int


def given_options(**options: object) -> dict[str, Any]:
    """The read options a caller gave, defaults (None; False for ``backwards``) left out: a wrapper
    forwards them so that an inner store written against the plain signature still serves plain reads."""
    return {
        name: value
        for name, value in options.items()
        if value is not (False if name == "backwards" else None)
    }


def select_stream(
    events: list[StoredEvent], flt: LogFilter | None, backwards: bool, limit: int | None
) -> list[StoredEvent]:
    """A stream read's options applied in memory: filter, then direction, then ``limit``."""
    if flt is not None:
        events = flt.select(events)
    if backwards:
        events = events[::-1]
    return events if limit is None else events[:limit]


def scan_in_pages(
    read_page: Callable[[LogFilter, int, int], FilteredRead],
    flt: LogFilter,
    *,
    after: int,
    limit: int | None,
    page: int = 2000,
) -> FilteredRead:
    """A filtered read built on pages filtered by category only: ``read_page(filter, after, limit)``.

    Used when the types stored are not the types read (an upcaster may rename a type, so SQL cannot
    filter on the stored name): pages are read with the category filter and the type filter is
    applied to the decoded events.
    """
    found: list[StoredEvent] = []
    position = after
    wide = LogFilter(categories=flt.categories)
    while True:
        read = read_page(wide, position, page)
        for event in read.events:
            if flt.matches(event):
                found.append(event)
                if limit is not None and len(found) == limit:
                    return FilteredRead(found, event.position)
        if read.position <= position or len(read.events) < page:
            return FilteredRead(found, max(read.position, position))
        position = read.position


def scan(
    log: Sequence[StoredEvent],
    start: int,
    stop: int,
    where: LogFilter | None,
    *,
    after: int,
    head: int,
    limit: int | None,
    current: Callable[[list[StoredEvent]], list[StoredEvent]] | None = None,
) -> FilteredRead:
    """A filtered read over events in memory: ``log[start:stop]`` are every event in ``(after, head]``,
    in position order; ``current`` brings their payloads (and type names) up to date. Filters a chunk
    at a time with one comprehension, as a replay scans many events per match."""
    found: list[StoredEvent] = []
    if limit == 0:
        return FilteredRead(found, after)
    keep = _chunk_filter(where)
    for begin in range(start, stop, _CHUNK):
        chunk = list(log[begin : min(begin + _CHUNK, stop)])
        if current is not None:
            chunk = current(chunk)
        found += chunk if keep is None else keep(chunk)
        if limit is not None and len(found) >= limit:
            del found[limit:]
            return FilteredRead(found, found[-1].position)
    return FilteredRead(found, max(after, head))


_CHUNK = 4096


_type_of = operator.attrgetter("event_type")
_stream_of = operator.attrgetter("stream_id")
_split_category = operator.methodcaller("partition", "-")
_first = operator.itemgetter(0)


def _chunk_filter(where: LogFilter | None) -> Callable[[list[StoredEvent]], list[StoredEvent]] | None:
    """The matching events of a chunk, tested in C (map and compress): a scan costs little per event."""
    if where is None:
        return None
    types, categories = where.event_types, where.categories

    def keep(chunk: list[StoredEvent]) -> list[StoredEvent]:
        if types is not None:
            chunk = list(itertools.compress(chunk, map(types.__contains__, map(_type_of, chunk))))
        if categories is not None:
            found = map(_first, map(_split_category, map(_stream_of, chunk)))
            chunk = list(itertools.compress(chunk, map(categories.__contains__, found)))
        return chunk

    return keep
