"""Filling the DuckDB store's in-memory query index (tag -> positions, type -> positions) from the file.

Run on open for the whole log and by the writer for a Parquet import it committed (whose rows never
were Python objects); appends and ``import_events`` are indexed from their rows as they are published.
"""

from __future__ import annotations

import duckdb

from .._query_index import QueryIndex


def index_from_file(cursor: duckdb.DuckDBPyConnection, index: QueryIndex, after: int, until: int) -> None:
    """Add the events at positions (after, until] to ``index``: two grouped SELECTs, no row objects."""
    where = "position > ? and position <= ?"
    for event_type, positions in cursor.execute(
        f"select event_type, list(position order by position) from events where {where} group by event_type",
        [after, until],
    ).fetchall():
        index.add_positions(event_type=event_type, positions=positions)
    for tag, positions in cursor.execute(
        "select tag, list(position order by position) from "
        f"(select position, unnest(tags) as tag from events where {where}) group by tag",
        [after, until],
    ).fetchall():
        index.add_positions(tag=tag, positions=positions)
