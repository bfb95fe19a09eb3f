"""The DuckDB store's queries: reads by query and the check of an append condition, from an in-memory index.

The store keeps ascending positions per tag and per event type (:class:`.._query_index.QueryIndex`),
loaded on open and extended by the writer as it publishes each group, so that neither a query read
nor an append condition filters the events table in SQL. A query read takes the published head and
the matching positions under ``_lock``, like ``read_streams``. An append condition is checked under
``_lock``, where the stream versions are checked: every event that exists or will commit before this
append is either at or below the published head (in the index) or in a batch that is queued or being
committed (``_in_flight``), and all are searched (see ``_first_match``).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from typing import Any

import duckdb

from ...core.events import StoredEvent
from ...core.query import Query
from ..base import QueryRead
from ..rules import check_limit, check_position, check_query
from ._batches import _READ_COLUMNS
from ._index import index_from_file
from ._reading import _ReadingMixin


def query_sql(query: Query, tags: str = "tags") -> tuple[str, list[Any]]:
    """An SQL condition matching ``query`` (``tags`` is the SQL of the row's tag list), and its parameters."""
    if query.matches_all:
        return "true", []
    clauses, params = [], []
    for item in query.items:
        parts = []
        if item.types:
            parts.append("list_contains(?::varchar[], event_type)")
            params.append(list(item.types))
        if item.tags:
            parts.append(f"list_has_all({tags}, ?::varchar[])")
            params.append(list(item.tags))
        clauses.append(" and ".join(parts))
    return "((" + ") or (".join(clauses) + "))", params


class _QueryMixin(_ReadingMixin):
    """Reading by query, and the first event matching a condition (for the append path)."""

    # -- reading by query through the in-memory index ------------------------------------------------

    def read_query(self, query: Query, *, after: int = 0, limit: int | None = None) -> QueryRead:
        """Events matching ``query`` with position > ``after`` (at most ``limit``), and the head they
        were read at: one snapshot, as of the published head when the read began.

        The head, the matching positions (from the in-memory index) and the events still in the
        in-memory tail are taken in one locked section; only older events are read from DuckDB, by
        position, so a group committed meanwhile is not seen at all.
        """
        self._check_open()
        query, after, limit = check_query(query), check_position(after), check_limit(limit)
        with self._lock:
            head = self._head
            if after >= head or limit == 0:
                return QueryRead([], head)
            positions: Sequence[int]
            if query.matches_all:  # every position: a range, not a list of them
                positions = range(after + 1, (head if limit is None else min(head, after + limit)) + 1)
            else:
                positions = list(itertools.islice(self._index.matching(query, after, head), limit))
            split = bisect.bisect_left(positions, self._tail_start)
            tail, start = self._tail, self._tail_start
            recent = [tail[p - start] for p in positions[split:]]
        older = self._fetch_positions(positions[:split]) if split else []
        return QueryRead(older + self.registry.current(recent), head)

    def _fetch_positions(self, positions: Sequence[int]) -> list[StoredEvent]:
        """The events at ``positions`` (ascending, all at or below the published head), from DuckDB."""
        # the range lets DuckDB skip blocks; the list picks positions within it
        sql = f"select {_READ_COLUMNS} from events where position between ? and ? "
        params: list[Any] = [positions[0], positions[-1]]
        if positions[-1] - positions[0] + 1 != len(positions):  # not every position in the range
            sql += "and position in (select unnest(?::bigint[])) "
            params.append(list(positions))
        return self._read_events(sql + "order by position", params)

    def _load_index(self) -> None:
        """Index every stored event by tag and type (on open, before any append; sorted in parallel)."""
        with self._parallel() as con:
            index_from_file(con, self._index, 0, self._head)

    def _first_match(self, query: Query, after: int) -> int | None:
        """The lowest position above ``after`` of an event matching ``query``, committed or queued.

        Caller holds ``_lock``: the published head cannot move, the index holds every event up to it,
        and every event above it is in a batch that is queued or being committed (``_in_flight``),
        searched in memory (or, for a queued Parquet import, in its file).
        """
        found = self._index.first(query, after, self._head)
        if found is not None:
            return found  # everything in the queue comes later
        for batch in (*self._in_flight, *self._queue):
            rows = batch.rows
            for position, event_type, tags in zip(rows.positions, rows.types, rows.tags, strict=True):
                if position > after and query.matches(event_type, tags):
                    return position
            if batch.staged is not None:  # a Parquet import waiting in the queue: search the file
                parquet, first = batch.staged
                cursor = self._check_cursor()
                where, params = query_sql(query, parquet.tags_column(cursor))
                position_sql = f"{int(first)} + file_row_number"
                [(staged,)] = cursor.execute(
                    f"select min({position_sql}) from {parquet.source()} "
                    f"where {position_sql} > ? and {where}",
                    [after, *params],
                ).fetchall()
                if staged is not None:
                    return int(staged)
        return None

    def _check_cursor(self) -> duckdb.DuckDBPyConnection:
        """The cursor append conditions read DuckDB through (made on first use). Caller holds ``_lock``."""
        if self._condition_cursor is None:
            self._condition_cursor = self._con.cursor()
            self._condition_cursor.execute("set threads = 1")
        return self._condition_cursor
