"""Reading the log back: ``read_all(after=, limit=1000)`` page after page, as the timeline slider's folds
and every projection catch-up read it, against the bare driver fetching the same rows as tuples and
against ``eventsourcing`` mapping its notifications back to domain events.

The bare fetch builds no objects beyond the driver's own rows, so ``ours / baseline`` is the share of a
read the database itself takes; the rest is building StoredEvents (ids, times, metadata, payloads).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .harness import Sample, time_once

PAGE = 1000


def read_pages(store: Any, page: int = PAGE) -> Sample:
    """Every event of ``store`` as StoredEvents, ``page`` at a time."""

    def op() -> int:
        seen, after = 0, 0
        while events := store.read_all(after=after, limit=page):
            seen += len(events)
            after = events[-1].position
        return seen

    return time_once(op)


def _fetch_pages(fetch: Any, page: int) -> Sample:
    def op() -> int:
        seen, after = 0, 0
        while rows := fetch(after, page):
            seen += len(rows)
            after = rows[-1][0]
        return seen

    return time_once(op)


_COLUMNS = (
    "position, event_id, stream_id, version, event_type, payload, metadata, recorded_at, schema_version, tags"
)


def duckdb_table(parquet: Path, database: Path) -> None:
    """A bare DuckDB file with the DuckDB store's ``events`` table, filled from a Parquet export."""
    import duckdb

    with duckdb.connect(str(database)) as con:
        con.execute(
            "create table events (position bigint primary key, event_id uuid not null, stream_id varchar "
            "not null, version bigint not null, event_type varchar not null, payload json not null, "
            "metadata json not null, recorded_at timestamptz not null, schema_version integer not null, "
            "tags varchar[] not null)"
        )
        con.execute(f"insert into events select {_COLUMNS} from read_parquet('{parquet}') order by position")


def duckdb_fetch_pages(database: Path, page: int = PAGE) -> Sample:
    """The rows of a :func:`duckdb_table` as the driver's tuples (its UUIDs and datetimes), ``page`` at
    a time."""
    import duckdb

    query = f"select {_COLUMNS} from events where position > ? order by position limit ?"
    with duckdb.connect(str(database), read_only=True) as con:
        return _fetch_pages(lambda after, limit: con.execute(query, [after, limit]).fetchall(), page)


def pg_fetch_pages(dsn: str, schema: str, page: int = PAGE) -> Sample:
    """A PostgreSQL store's rows as psycopg's tuples (UUIDs, datetimes, JSON as text), ``page`` at a time."""
    import psycopg

    columns = _COLUMNS.replace("payload", "payload::text").replace("metadata", "metadata::text")
    query = f'select {columns} from "{schema}".events where position > %s order by position limit %s'
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        return _fetch_pages(lambda after, limit: conn.execute(query, (after, limit)).fetchall(), page)


def peer_read_pages(app: Any, page: int = PAGE) -> Sample:
    """``eventsourcing``: notifications in pages, each mapped back to a domain event."""
    recorder, to_domain = app.recorder, app.mapper.to_domain_event

    def op() -> int:
        seen, start = 0, 1
        while notifications := recorder.select_notifications(start, page):
            for notification in notifications:
                to_domain(notification)
            seen += len(notifications)
            start = notifications[-1].id + 1
        return seen

    return time_once(op)
