"""Hardware baselines: what the database itself does with no event-sourcing code on top.

- PostgreSQL: a one-row INSERT, each its own transaction (autocommit), over one psycopg connection;
  this is the floor for one durable append per command. Bulk: COPY of as many event-shaped rows (ids,
  stream, version, type, JSON payload and metadata; primary key on position) in one transaction.
- DuckDB: a one-row INSERT transaction into a file, and an Arrow table of the same event-shaped rows
  inserted in one statement.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from .harness import Sample, time_loop, time_once


def pg_insert(dsn: str, schema: str, count: int, warmup: int) -> Sample:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{schema}".floor (id bigserial primary key, stream text, data jsonb)')
        statement = f'INSERT INTO "{schema}".floor (stream, data) VALUES (%s, %s)'
        payload = '{"amount": 1}'
        return time_loop(lambda i: conn.execute(statement, (f"s-{i}", payload)), count, warmup=warmup)


def _event_rows(count: int) -> dict[str, list[Any]]:
    """Columns shaped like a stored event (ids, stream, version, type, JSON payload and metadata)."""
    metadata = (
        f'{{"correlation_id": "{uuid.uuid4()}", "causation_id": null, "user_id": null, "custom": {{}}}}'
    )
    return {
        "position": list(range(1, count + 1)),
        "event_id": [str(uuid.uuid4()) for _ in range(count)],
        "stream_id": [f"s-{i % 1000}" for i in range(count)],
        "version": [i // 1000 + 1 for i in range(count)],
        "event_type": ["BenchCredited"] * count,
        "payload": ['{"amount": 1}'] * count,
        "metadata": [metadata] * count,
    }


_EVENT_COLUMNS = "position, event_id, stream_id, version, event_type, payload, metadata"


def pg_copy(dsn: str, schema: str, count: int) -> Sample:
    import psycopg

    columns = _event_rows(count)
    rows = list(zip(*columns.values(), strict=True))
    with psycopg.connect(dsn) as conn:
        conn.execute(
            f'CREATE TABLE "{schema}".floor_bulk (position bigint primary key, event_id uuid, '
            "stream_id text, version bigint, event_type text, payload jsonb, metadata jsonb)"
        )
        conn.commit()

        def op() -> int:
            statement = f'COPY "{schema}".floor_bulk ({_EVENT_COLUMNS}) FROM STDIN'
            with conn.cursor() as cur, cur.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            return count

        return time_once(op)


def duckdb_insert(directory: Path, count: int, warmup: int) -> Sample:
    import duckdb

    path = directory / f"floor-{uuid.uuid4().hex[:8]}.duckdb"
    conn = duckdb.connect(str(path))
    try:
        conn.execute("CREATE TABLE floor (id bigint, stream varchar, data varchar)")
        payload = '{"amount": 1}'
        return time_loop(
            lambda i: conn.execute("INSERT INTO floor VALUES (?, ?, ?)", (i, f"s-{i}", payload)),
            count,
            warmup=warmup,
        )
    finally:
        conn.close()
        _remove(path)


def duckdb_arrow(directory: Path, count: int) -> Sample:
    import duckdb
    import pyarrow as pa

    path = directory / f"floor-bulk-{uuid.uuid4().hex[:8]}.duckdb"
    table = pa.table(_event_rows(count))
    conn = duckdb.connect(str(path))
    try:
        conn.execute(
            "CREATE TABLE floor (position bigint primary key, event_id uuid, stream_id varchar, "
            "version bigint, event_type varchar, payload json, metadata json)"
        )

        def op() -> int:
            conn.register("incoming", table)
            conn.execute(f"INSERT INTO floor SELECT {_EVENT_COLUMNS} FROM incoming")
            conn.unregister("incoming")
            return count

        return time_once(op)
    finally:
        conn.close()
        _remove(path)


def _remove(path: Path) -> None:
    for candidate in (path, Path(f"{path}.wal")):
        candidate.unlink(missing_ok=True)


def pg_server_facts(dsn: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        facts = {}
        for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers"):
            row = conn.execute(f"SHOW {name}").fetchone()
            facts[name] = row[0] if row else None
        return facts
