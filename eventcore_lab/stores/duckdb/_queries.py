"""The DuckDB store's queries: reads by query and the check of an append condition, filtered in SQL.

A query read takes the published head under ``_lock`` and reads up to it, like ``read_streams``. An
append condition is checked under ``_lock``, where the stream versions are checked: every event that
exists or will commit before this append is either at or below the published head (in the in-memory
tail or in DuckDB) or in a batch that is queued or being committed (``_in_flight``), and all are
searched (see ``_first_match``).
"""

from __future__ import annotations

from typing import Any

import duckdb

from ...core.query import Query
from ..base import QueryRead
from ..rules import check_limit, check_position, check_query
from ._batches import _TABLE_COLUMNS
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

    def read_query(self, query: Query, *, after: int = 0, limit: int | None = None) -> QueryRead:
        """Events matching ``query`` with position > ``after`` (at most ``limit``), and the head they
        were read at: one snapshot, as of the published head when the read began."""
        self._check_open()
        query, after, limit = check_query(query), check_position(after), check_limit(limit)
        with self._lock:
            head = self._head
        if after >= head or limit == 0:
            return QueryRead([], head)
        where, params = query_sql(query)
        sql = f"select {_TABLE_COLUMNS} from events where position > ? and position <= ? and {where} "
        sql += "order by position" + ("" if limit is None else f" limit {int(limit)}")
        with self._db_lock:
            self._check_open()
            rows = self._con.execute(sql, [after, head, *params]).fetchall()
        return QueryRead(self._decode(rows), head)

    def _first_match(self, query: Query, after: int) -> int | None:
        """The lowest position above ``after`` of an event matching ``query``, committed or queued.

        Caller holds ``_lock``: the published head cannot move, and every event above it is in a batch
        that is queued or being committed (``_in_flight``), searched in memory. Below the head, the
        in-memory tail answers when it reaches back to ``after`` (a decision read recently: the usual
        case), else DuckDB, through the store's own cursor for these checks (the writer keeps
        committing meanwhile: ``_db_lock`` is not needed, and must not be taken after ``_lock``).
        """
        found: int | None = None
        if after + 1 >= self._tail_start:
            for event in self._tail[after + 1 - self._tail_start :]:
                if query.matches(event.event_type, event.tags):
                    found = event.position
                    break
        elif after < self._head:
            where, params = query_sql(query)
            [(found,)] = (
                self._check_cursor()
                .execute(
                    f"select min(position) from events where position > ? and position <= ? and {where}",
                    [after, self._head, *params],
                )
                .fetchall()
            )
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
