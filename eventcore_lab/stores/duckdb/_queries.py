"""The DuckDB store's queries: reads by query and the check of an append condition, filtered in SQL.

A query read takes the published head under ``_lock`` and reads up to it, like ``read_streams``. An
append condition is checked with ``_db_lock`` and then ``_lock`` held (the documented order): the
writer cannot commit meanwhile, so every event that exists or will commit before this append is either
in DuckDB or in a batch that is queued or being committed (``_in_flight``), and both are searched.
"""

from __future__ import annotations

from typing import Any

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

        Caller holds ``_db_lock`` and then ``_lock``."""
        where, params = query_sql(query)
        found: int | None
        [(found,)] = self._con.execute(
            f"select min(position) from events where position > ? and {where}", [after, *params]
        ).fetchall()
        for batch in (*self._in_flight, *self._queue):
            rows = batch.rows
            for position, event_type, tags in zip(rows.positions, rows.types, rows.tags, strict=True):
                if position > after and query.matches(event_type, tags):
                    found = position if found is None else min(found, position)
                    break
            if batch.staged is not None:  # a Parquet import waiting in the queue: search the file
                parquet, first = batch.staged
                where, params = query_sql(query, parquet.tags_column(self._con))
                position_sql = f"{int(first)} + file_row_number"
                [(staged,)] = self._con.execute(
                    f"select min({position_sql}) from {parquet.source()} "
                    f"where {position_sql} > ? and {where}",
                    [after, *params],
                ).fetchall()
                if staged is not None:
                    found = staged if found is None else min(found, staged)
        return found
