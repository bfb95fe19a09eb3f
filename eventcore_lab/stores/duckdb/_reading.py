"""The DuckDB store's read path: streams from the cache or from DuckDB, always as one snapshot.

A read takes the head, the versions and the cached streams in one locked section and reads the rest from
DuckDB up to that head, so a group committed meanwhile is seen in no stream rather than in some.
``read_all`` serves tailing readers from the in-memory tail of the log when it can.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ...core.events import StoredEvent
from ...core.ids import StreamId
from .._decoding import events_from_arrow
from ..base import StreamsRead
from ..filters import FilteredRead, LogFilter, scan, scan_in_pages, select_sql, select_stream
from ..rules import (
    check_backwards,
    check_limit,
    check_log_filter,
    check_position,
)
from ._base import _DuckDBBase
from ._batches import _READ_COLUMNS
from ._index import index_from_file


def _by_position(event: StoredEvent) -> int:
    return event.position


class _ReadingMixin(_DuckDBBase):
    """Reading streams and the log."""

    def read_stream(
        self,
        stream_id: str,
        *,
        after_version: int = 0,
        event_types: Iterable[str | type] | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        self._check_open()
        sid = StreamId(stream_id)
        after_version = check_position(after_version, "after_version")
        where = check_log_filter(event_types, None, self.registry)
        backwards, limit = check_backwards(backwards), check_limit(limit)
        if (where is not None or limit is not None) and self.registry.evolution is None:
            # filtered or paged: SQL reads just those rows, not the whole stream through the cache
            return self._read_stream_sql(sid, after_version, where, backwards, limit)
        events = self.registry.current(list(self._read([sid])[sid][after_version:]))
        return select_stream(events, where, backwards, limit)

    def read_streams(self, stream_ids: Iterable[str]) -> StreamsRead:
        self._check_open()
        ids = list(dict.fromkeys(StreamId(s) for s in stream_ids))
        found = self._read(ids)
        lists = [found[sid] for sid in ids if found[sid]]
        if len(lists) == 1:
            merged = list(lists[0])
        else:
            merged = sorted((e for events in lists for e in events), key=_by_position)
        return StreamsRead(self.registry.current(merged), {sid: len(found[sid]) for sid in ids})

    def _read(self, ids: Sequence[str]) -> dict[str, tuple[StoredEvent, ...]]:
        """Whole streams, all as of one position: the published head when the read began.

        Cached streams and known versions are taken in one locked section, together with the head;
        the others are read from DuckDB up to that head, so a group committed meanwhile is seen in no
        stream rather than in some (a transfer's credit without its debit would be a state that never
        existed). DuckDB is read without holding ``self._lock``, so appenders keep validating.
        """
        with self._lock:
            head = self._head
            known = [sid for sid in ids if self._versions.get(sid, 0)]
            found, missing, _, epoch = self._cache.get(known)
        for sid in ids:
            found.setdefault(sid, ())
        if missing:
            if self._read_hook is not None:
                self._read_hook(list(missing))
            fetched = self._fetch_streams(missing, head)
            with self._lock:  # keep what is still current: nothing was appended to it since ``head``
                self._cache.fill(
                    {
                        sid: events
                        for sid, events in fetched.items()
                        if len(events) == self._versions.get(sid, 0)
                    },
                    epoch,
                )
            found.update(fetched)
        return found

    def _fetch_streams(self, ids: Sequence[str], head: int) -> dict[str, tuple[StoredEvent, ...]]:
        """Read whole streams from DuckDB, as of position ``head``: by their positions, which the index
        keeps, so DuckDB looks them up by primary key instead of scanning every row for the stream ids."""
        positions = self._stream_positions(ids, head)
        if not positions:
            return {sid: () for sid in ids}
        rows = self._read_events(
            f"select {_READ_COLUMNS} from events where position between ? and ? "
            "and position in (select unnest(?::bigint[])) order by position",
            [positions[0], positions[-1], positions],
        )
        result: dict[str, list[StoredEvent]] = {sid: [] for sid in ids}
        for event in rows:
            result[event.stream_id].append(event)
        return {sid: tuple(events) for sid, events in result.items()}

    def _read_events(self, query: str, params: list[Any]) -> list[StoredEvent]:
        """The events a SELECT of :data:`_READ_COLUMNS` finds, fetched as Arrow columns (a Python tuple
        per row costs more than the rest of the read) and decoded a column at a time."""
        with self._db_lock:
            self._check_open()
            table = self._con.sql(query, params=params).to_arrow_table()
        return events_from_arrow(table, self.registry)

    def _stream_positions(self, ids: Sequence[str], head: int) -> list[int]:
        """The positions up to ``head`` of the events of streams ``ids``, ascending.

        The index learns streams lazily: opening a file or importing does not pay for it (a pass over
        the log), only the first read of a stream not cached does, once; after that, each append is
        indexed as it is published. Caller holds no lock.
        """
        with self._lock:
            if self._streams_indexed < head:
                cursor = self._con.cursor()  # not ``_db_lock``: it is never taken after ``_lock``
                try:
                    index_from_file(cursor, self._index, self._streams_indexed, self._head, by=("stream_id",))
                finally:
                    cursor.close()
                self._streams_indexed = self._head
            return self._index.stream_positions(ids, head)

    def read_all(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
        backwards: bool = False,
    ) -> list[StoredEvent]:
        self._check_open()
        after, limit = check_position(after), check_limit(limit)
        where = check_log_filter(event_types, categories, self.registry)
        if check_backwards(backwards):
            return self._read_backwards(after, limit, where)
        if where is not None:
            return self._filtered(after, limit, where).events
        with self._lock:
            head = self._head
            if after >= head or limit == 0:
                return []
            if after + 1 >= self._tail_start:
                start = after + 1 - self._tail_start
                return self.registry.current(self._tail[start : None if limit is None else start + limit])
        query = f"select {_READ_COLUMNS} from events where position > ? and position <= ? order by position"
        params: list[Any] = [after, head]
        if limit is not None:
            query += " limit ?"
            params.append(limit)
        return self._read_events(query, params)

    # -- filtered reads: SQL on the log (the in-memory tail for tailing readers) -----------------------

    def read_filtered(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        event_types: Iterable[str | type] | None = None,
        categories: Iterable[str] | None = None,
    ) -> FilteredRead:
        self._check_open()
        after, limit = check_position(after), check_limit(limit)
        return self._filtered(after, limit, check_log_filter(event_types, categories, self.registry))

    def _filtered(self, after: int, limit: int | None, where: LogFilter | None) -> FilteredRead:
        tail: list[StoredEvent] | None = None
        with self._lock:
            head = self._head
            if after >= head or limit == 0:
                return FilteredRead([], after)
            if after + 1 >= self._tail_start:
                # a copy, taken under the lock (the writer trims the tail); with a limit, a window of it,
                # so a reader paging through a long tail does not copy all of it for every page
                end = head if limit is None else min(head, after + max(limit * 16, 8192))
                tail = self._tail[after + 1 - self._tail_start : end + 1 - self._tail_start]
                head = end
        if tail is not None:
            current = None if self.registry.evolution is None else self.registry.current
            return scan(tail, 0, len(tail), where, after=after, head=head, limit=limit, current=current)
        if where is not None and where.event_types is not None and self.registry.evolution is not None:
            return scan_in_pages(  # stored type names may not be the names read: filter after decoding
                lambda wide, start, page: self._filtered_sql(wide, start, head, page),
                where,
                after=after,
                limit=limit,
            )
        return self._filtered_sql(where, after, head, limit)

    def _filtered_sql(
        self, where: LogFilter | None, after: int, head: int, limit: int | None
    ) -> FilteredRead:
        events = self._select(where, "position > ? and position <= ?", [after, head], "position", limit)
        if limit is not None and len(events) == limit:
            return FilteredRead(events, events[-1].position)
        return FilteredRead(events, head)

    def _read_backwards(self, after: int, limit: int | None, where: LogFilter | None) -> list[StoredEvent]:
        with self._lock:
            head = self._head
        if where is not None and where.event_types is not None and self.registry.evolution is not None:
            events = self._select(
                LogFilter(categories=where.categories),
                "position > ? and position <= ?",
                [after, head],
                "position desc",
                None,
            )
            return select_stream(events, where, False, limit)
        return self._select(where, "position > ? and position <= ?", [after, head], "position desc", limit)

    def _read_stream_sql(
        self, sid: str, after_version: int, where: LogFilter | None, backwards: bool, limit: int | None
    ) -> list[StoredEvent]:
        with self._lock:
            head = self._head
        order = "version desc" if backwards else "version"
        return self._select(
            where, "stream_id = ? and version > ? and position <= ?", [sid, after_version, head], order, limit
        )

    def _select(
        self, where: LogFilter | None, condition: str, params: list[Any], order: str, limit: int | None
    ) -> list[StoredEvent]:
        """Events matching ``condition`` and ``where``, decoded; ``where`` is matched on stored names."""
        query, params = select_sql(
            _READ_COLUMNS,
            "events",
            condition,
            params,
            where,
            contains="list_contains(?, {})",
            order=order,
            limit=limit,
            placeholder="?",
        )
        return self._read_events(query, params)

    def stream_version(self, stream_id: str) -> int:
        self._check_open()
        sid = StreamId(stream_id)
        with self._lock:
            return self._versions.get(sid, 0)

    def stream_ids(self) -> list[str]:
        """Every stream that has events, in order of first event."""
        self._check_open()
        with self._lock:
            return list(self._versions)

    def head(self) -> int:
        self._check_open()
        with self._lock:
            return self._head

    def wait_for_events(self, after: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._head > after or self._closed, timeout) and (
                self._head > after
            )
