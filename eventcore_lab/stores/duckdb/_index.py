"""Filling the DuckDB store's in-memory index (tag, type or stream -> positions) from the file.

Types and tags: run on open for the whole log and by the writer for a Parquet import it committed
(whose rows never were Python objects); appends and ``import_events`` are indexed from their rows as
they are published. Streams: run when a stream the store has not cached is first read (see
``_queries._stream_positions``).
"""

from __future__ import annotations

from array import array

import duckdb
import numpy

from .._query_index import QueryIndex


def index_from_file(
    cursor: duckdb.DuckDBPyConnection,
    index: QueryIndex,
    after: int,
    until: int,
    by: tuple[str, ...] = ("event_type", "tag"),
) -> None:
    """Add the events at positions (after, until] to ``index``, by each key in ``by`` (of
    ``event_type``, ``tag`` and ``stream_id``).

    Per key, DuckDB counts the positions and returns all of them as one int64 column ordered by key
    and position; each key's run is copied into its array as bytes, without a Python int per position.
    """
    where = f"position > {int(after)} and position <= {int(until)}"
    for column, source in (
        ("event_type", f"select event_type as key, position from events where {where}"),
        ("tag", f"select unnest(tags) as key, position from events where {where}"),
        ("stream_id", f"select stream_id as key, position from events where {where}"),
    ):
        if column not in by:
            continue
        keys = cursor.execute(f"select key, count(*) from ({source}) group by key order by key").fetchall()
        if not keys:
            continue
        positions = cursor.execute(f"select position from ({source}) order by key, position").fetchnumpy()
        data = positions["position"].astype(numpy.int64, copy=False)
        start = 0
        for key, count in keys:
            run = array("q")
            run.frombytes(data[start : start + count].tobytes())
            index.add_positions(**{column: key}, positions=run)
            start += count
